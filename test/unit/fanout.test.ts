import t from 'tap';
import { FanOut, RETRY_MS } from '../../src/actors/fanout.js';
import type { UserDeliver } from '../../src/messages/entity-messages.js';
import { fakeClock } from '../helpers/fake-clock.js';

const deliver = (seq: number): UserDeliver => ({ t: 'deliver', conv: 'd.a.b', seq, from: 'a', dev: 'd1', kind: 'text', packed: new Uint8Array([seq]) });

// The node's own window, on a fake clock: a redelivery 5 s after the fan-out started, backing off (×2) to 15 s.
t.test('unconfirmed recipients get redeliveries, backing off to 15 s, until they confirm', async (t) => {
  const clock = fakeClock(t);
  const sent: string[] = [];
  const f = new FanOut((user, d) => sent.push(`${user}:${d.seq}${d.redelivery ? ':re' : ''}`));
  const redeliveries = () => sent.filter((s) => s.endsWith(':re')).length;
  f.start(deliver(1), ['a', 'b']);
  t.strictSame(sent, ['a:1', 'b:1'], 'every recipient is sent the message at once');
  f.confirm('a', [1]);
  clock.tick(RETRY_MS - 1);
  t.equal(redeliveries(), 0, 'no redelivery before 5 s');
  clock.tick(1);
  t.strictSame(sent.slice(2), ['b:1:re'], 'at 5 s the unconfirmed recipient gets a redelivery; the confirmed one does not');
  clock.tick(9_999);
  t.equal(redeliveries(), 1, 'the next redelivery waits twice as long');
  clock.tick(1); // 15 s: 5 + 10
  t.equal(redeliveries(), 2, 'at 15 s the second');
  for (const at of [30_000, 45_000, 60_000, 75_000]) {
    clock.tick(at - 1 - Date.now());
    const before = redeliveries();
    clock.tick(1);
    t.equal(redeliveries(), before + 1, `then at ${at / 1000} s`);
  }
  f.confirm('b', [1]);
  t.ok(f.idle, 'nothing is left once the last recipient confirms');
  clock.tick(1000);
  t.equal(clock.countTimers(), 0, 'its timer stopped once nothing was left');
  t.equal(redeliveries(), 6, 'and nothing was redelivered after the confirmation');
});

t.test('the mark: nothing at or below it is pending', async (t) => {
  const clock = fakeClock(t);
  const f = new FanOut(() => undefined);
  t.equal(f.mark(7), 7, 'idle: everything released is fanned out');
  for (const seq of [8, 9, 10]) f.start(deliver(seq), ['b', 'c']);
  t.equal(f.mark(10), 7, 'below the lowest pending seq');
  f.confirm('b', [8, 9, 10]);
  t.equal(f.mark(10), 7, 'one recipient of two is not enough');
  f.confirm('c', [9]);
  t.equal(f.mark(10), 7, 'a later seq confirmed does not move it past an earlier one');
  f.confirm('c', [8]);
  t.equal(f.mark(10), 9);
  f.start({ ...deliver(4), redelivery: true }, ['b']); // a resend found in the store, far below
  t.equal(f.mark(10), 3, 'a redelivery below holds it back too');
  f.confirm('b', [4]);
  f.confirm('c', [10]);
  t.equal(f.mark(12), 12, 'all confirmed: up to what was released');
  f.stop();
  t.equal(clock.countTimers(), 0);
});

t.test('the window follows the constructor', async (t) => {
  const clock = fakeClock(t);
  const sent: number[] = [];
  const f = new FanOut(() => sent.push(Date.now()), 400);
  f.start(deliver(1), ['b']);
  clock.tick(400);
  t.strictSame(sent, [0, 400], 'a redelivery at 400 ms');
  clock.tick(800);
  t.strictSame(sent, [0, 400, 1200], 'the next 800 ms after the first');
  f.stop();
  t.equal(clock.countTimers(), 0);
});
