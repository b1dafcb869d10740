import t from 'tap';
import FakeTimers from '@sinonjs/fake-timers';
import { FanOut } from '../../src/actors/fanout.js';
import type { UserDeliver } from '../../src/messages/entity-messages.js';

const deliver = (seq: number): UserDeliver => ({ t: 'deliver', conv: 'd.a.b', seq, from: 'a', dev: 'd1', kind: 'text', packed: new Uint8Array([seq]) });

t.test('with a wake, the timer only asks for a turn; retries happen when the entity calls retry()', async (t) => {
  const clock = FakeTimers.install({ toFake: ['setInterval', 'clearInterval', 'Date'] });
  t.teardown(() => clock.uninstall());
  const sent: string[] = [];
  let wakes = 0;
  const f = new FanOut((u, d) => sent.push(`${u}:${d.seq}${d.redelivery ? ':re' : ''}`), 5000, () => wakes++);
  f.start(deliver(1), ['b']);
  clock.tick(6000);
  t.ok(wakes >= 5, 'the timer woke the entity');
  t.strictSame(sent, ['b:1'], 'but redelivered nothing by itself');
  f.retry(); // the entity's turn
  t.strictSame(sent, ['b:1', 'b:1:re'], 'the retry runs in the turn');
  f.confirm('b', [1]);
  f.retry();
  t.equal(clock.countTimers(), 0, 'nothing pending: the timer stopped');
});

t.test('abandoned (the entity crashed or was passivated): no timer left, nothing starts again', async (t) => {
  const clock = FakeTimers.install({ toFake: ['setInterval', 'clearInterval', 'Date'] });
  t.teardown(() => clock.uninstall());
  let wakes = 0;
  const sent: number[] = [];
  const f = new FanOut((_u, d) => sent.push(d.seq), 5000, () => wakes++);
  f.start(deliver(1), ['b']);
  f.abandon();
  t.equal(f.mark(1), 0, 'what was pending is still not claimed by the mark: the successor re-drives it');
  t.equal(clock.countTimers(), 0, 'its timer is gone with it');
  f.start(deliver(2), ['b']);
  t.strictSame(sent, [1], 'a fan-out started on a disposed entity sends nothing');
  clock.tick(60_000);
  t.equal(wakes, 0, 'nobody is woken');
  f.retry();
  t.strictSame(sent, [1], 'a wake already queued retries nothing');
});

t.test('a second start for a seq already fanning out is one fan-out', async (t) => {
  const sent: string[] = [];
  const f = new FanOut((u, d) => sent.push(`${u}:${d.seq}`), 5000, () => undefined);
  f.start(deliver(3), ['b']);
  f.start({ ...deliver(3), redelivery: true }, ['b', 'c']);
  t.strictSame(sent, ['b:3'], 'sent once');
  f.confirm('b', [3]);
  t.ok(f.idle);
  f.stop();
});
