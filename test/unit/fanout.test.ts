import t from 'tap';
import { FanOut, SLOW_MS, type Outcome } from '../../src/actors/fanout.js';
import type { UserDeliver } from '../../src/messages/entity-messages.js';
import { fakeClock } from '../helpers/fake-clock.js';

const deliver = (seq: number): UserDeliver => ({ t: 'deliver', conv: 'd.a.b', seq, from: 'a', dev: 'd1', kind: 'text', packed: new Uint8Array([seq]) });

// The node's own windows, on a fake clock: a redelivery 5 s after the fan-out started, backing off (×2) to a
// minute; a waiter hears "slow" 7 s after it began waiting, once.
t.test('a fan-out ticks once every recipient confirms; before that, a waiter hears "slow" once, and retries back off', async (t) => {
  const clock = fakeClock(t);
  const sent: string[] = [];
  const f = new FanOut((user, d) => sent.push(`${user}:${d.seq}${d.redelivery ? ':re' : ''}`));
  const heard: Outcome[] = [];
  const redeliveries = () => sent.filter((s) => s.endsWith(':re')).length;
  f.start(deliver(1), ['a', 'b'], (o) => heard.push(o));
  t.strictSame(sent, ['a:1', 'b:1'], 'every recipient is sent the message at once');
  f.confirm('a', [1]);
  t.strictSame(heard, [], 'one confirmation of two is not done');

  clock.tick(4999);
  t.equal(redeliveries(), 0, 'no redelivery before 5 s');
  clock.tick(1); // 5 s
  t.strictSame(sent.slice(2), ['b:1:re'], 'at 5 s the unconfirmed recipient gets a redelivery; the confirmed one does not');
  clock.tick(SLOW_MS - 5000 - 1);
  t.strictSame(heard, [], 'not slow before 7 s');
  clock.tick(1); // 7 s
  t.strictSame(heard, ['slow'], 'the waiter hears "slow" at 7 s');

  const late: Outcome[] = [];
  clock.tick(1000); // 8 s
  t.ok(f.whenDone(1, (o) => late.push(o)), 'a resend waits on the same fan-out');
  clock.tick(14_999 - 8000);
  t.equal(redeliveries(), 1, 'the next redelivery waits twice as long');
  clock.tick(1); // 15 s: 5 + 10
  t.equal(redeliveries(), 2, 'at 15 s the second');
  t.strictSame(late, ['slow'], 'the resend hears "slow" 7 s after it began to wait');
  for (const at of [35_000, 75_000, 135_000, 195_000]) {
    clock.tick(at - 1 - Date.now());
    const before = redeliveries();
    clock.tick(1);
    t.equal(redeliveries(), before + 1, `then at ${at / 1000} s`);
  }
  t.strictSame(heard, ['slow'], 'each waiter heard "slow" once');

  f.confirm('b', [1]);
  t.strictSame(heard, ['slow', 'done'], 'then it is done');
  t.strictSame(late, ['slow', 'done'], 'and the resend is answered too');
  t.ok(f.idle, 'nothing is left');
  t.notOk(f.whenDone(1, () => undefined), 'a finished fan-out has nobody to wait on');
  clock.tick(1000);
  t.equal(clock.countTimers(), 0, 'its timer stopped once nothing was left');
  t.equal(redeliveries(), 6, 'and nothing was redelivered after the confirmation');
});

t.test('the windows follow the constructor, seen by a timer ticking at the shorter one', async (t) => {
  const clock = fakeClock(t);
  const sent: number[] = [];
  const heard: Outcome[] = [];
  const f = new FanOut(() => sent.push(Date.now()), 400, 500);
  f.start(deliver(1), ['b'], (o) => heard.push(o));
  clock.tick(400);
  t.strictSame([sent, heard], [[0, 400], []], 'a redelivery at 400 ms');
  clock.tick(400);
  t.strictSame(heard, ['slow'], '"slow", due at 500 ms, is heard on the tick at 800');
  clock.tick(400);
  t.strictSame(sent, [0, 400, 1200], 'the next redelivery 800 ms after the first');
  f.stop();
  t.equal(clock.countTimers(), 0);
});

t.test('abandoning answers every waiter, and an empty fan-out is done at once', async (t) => {
  const clock = fakeClock(t);
  const f = new FanOut(() => undefined);
  const heard: Outcome[] = [];
  f.start(deliver(1), [], (o) => heard.push(o));
  f.start(deliver(2), ['b'], (o) => heard.push(o));
  f.whenDone(2, (o) => heard.push(o));
  f.abandon();
  t.strictSame(heard, ['done', 'abandoned', 'abandoned']);
  t.ok(f.idle);
  t.equal(clock.countTimers(), 0, 'no timer is left');
  clock.tick(60_000);
  t.strictSame(heard, ['done', 'abandoned', 'abandoned'], 'and nobody hears "slow" afterwards');
});
