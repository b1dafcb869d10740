import t from 'tap';
import { FanOut, type Outcome } from '../../src/actors/fanout.js';
import type { UserDeliver } from '../../src/actors/messages.js';
import { sleep } from '../helpers/clients.js';

const deliver = (seq: number): UserDeliver => ({ t: 'deliver', conv: 'd.a.b', seq, from: 'a', dev: 'd1', kind: 'text', packed: new Uint8Array([seq]) });

// Retries at 400 ms (then 800 later) and a slow notice at 500 ms, both seen by the 400 ms timer: at 400 a
// redelivery, at 800 the notice, at 1200 the next redelivery. The check at 1000 is 200 ms from either.
t.test('a fan-out ticks once every recipient confirms; before that, a waiter hears "slow" once, and retries go out', async (t) => {
  const sent: string[] = [];
  const f = new FanOut((user, d) => sent.push(`${user}:${d.seq}${d.redelivery ? ':re' : ''}`), 400, 500);
  const heard: Outcome[] = [];
  f.start(deliver(1), ['a', 'b'], (o) => heard.push(o));
  t.strictSame(sent, ['a:1', 'b:1'], 'every recipient is sent the message at once');
  f.confirm('a', [1]);
  t.strictSame(heard, [], 'one confirmation of two is not done');
  await sleep(1000);
  t.strictSame(heard, ['slow'], 'the waiter hears "slow" once past the limit, and only once');
  t.strictSame(sent.slice(2), ['b:1:re'], 'the unconfirmed recipient gets a redelivery; the confirmed one does not');
  const late: Outcome[] = [];
  t.ok(f.whenDone(1, (o) => late.push(o)), 'a resend waits on the same fan-out');
  f.confirm('b', [1]);
  t.strictSame(heard, ['slow', 'done'], 'then it is done');
  t.strictSame(late, ['done'], 'and the resend is answered too');
  t.ok(f.idle, 'nothing is left');
  t.notOk(f.whenDone(1, () => undefined), 'a finished fan-out has nobody to wait on');
  f.stop();
});

t.test('abandoning answers every waiter, and an empty fan-out is done at once', async (t) => {
  const f = new FanOut(() => undefined, 5000, 5000);
  const heard: Outcome[] = [];
  f.start(deliver(1), [], (o) => heard.push(o));
  f.start(deliver(2), ['b'], (o) => heard.push(o));
  f.whenDone(2, (o) => heard.push(o));
  f.abandon();
  t.strictSame(heard, ['done', 'abandoned', 'abandoned']);
  t.ok(f.idle);
});
