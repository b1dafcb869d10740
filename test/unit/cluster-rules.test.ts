import t from 'tap';
import { Liveness } from '../../src/cluster/membership.js';
import { acquireAttempt, lapsed, type AcquireContext, type LeaseValue } from '../../src/cluster/shard-leases.js';
import type { Seen } from '../../src/cluster/kv-view.js';

const member = (node: string) => ({ node, wsUrl: `ws://${node}`, startedAt: 0 });

t.test('the failure detector: gone after downAfterMs unseen (by our own clock), back when seen again, gone at once on leave', async (t) => {
  const l = new Liveness(2_500);
  t.ok(l.saw(member('a'), 0), 'a is new');
  t.ok(l.saw(member('b'), 100), 'b is new');
  t.notOk(l.saw(member('a'), 500), 'a seen again is no change');
  t.strictSame(l.sweep(2_600), [], 'b unseen for exactly 2500 is not gone yet');
  t.strictSame(l.sweep(2_601), ['b'], 'b unseen for more than 2500 is gone');
  t.strictSame(l.sweep(2_700), [], 'reported once');
  t.strictSame(l.live().map((m) => m.node), ['a']);
  t.ok(l.saw(member('b'), 2_800), 'b came back');
  t.strictSame(l.live().map((m) => m.node), ['a', 'b']);
  t.ok(l.left('a'), 'a left');
  t.strictSame(l.live().map((m) => m.node), ['b'], 'gone at once');
  t.notOk(l.left('a'), 'leaving twice changes nothing');
  // The sweep is as of our own freshest heartbeat seen back, not the wall: a stalled watch declares nobody gone.
  t.strictSame(l.sweep(2_800 - 1), [], 'a time before the last sighting declares nothing');
});

const seen = (value: LeaseValue | undefined, revision: number, seenAt: number): Seen<LeaseValue> => ({ key: 's.1', value, revision, seenAt });
const ctx = (o: Partial<AcquireContext> = {}): AcquireContext => ({ self: 'me', now: 10_000, leaseMs: 4_000, mine: undefined, isLive: () => false, ...o });

t.test('the acquisition rule', async (t) => {
  t.strictSame(acquireAttempt(undefined, ctx()), { revision: 0, epoch: 1 }, 'absent: create with epoch 1');
  t.strictSame(acquireAttempt(seen({ node: '', epoch: 7 }, 40, 9_999), ctx()), { revision: 40, epoch: 8 }, 'released: at once, next epoch');
  t.strictSame(acquireAttempt(seen({ node: 'me', epoch: 7 }, 40, 9_999), ctx({ mine: 7 })), { revision: 40, epoch: 8 }, 'our own write (answer lost, or lapsed): at once');
  t.equal(acquireAttempt(seen({ node: 'me', epoch: 7 }, 40, 9_999), ctx({ mine: 6 })), undefined, 'our name, an earlier process: waits');
  t.strictSame(acquireAttempt(seen({ node: 'me', epoch: 7 }, 40, 6_000), ctx({ mine: 6 })), { revision: 40, epoch: 8 }, '… leaseMs unchanged');
  t.equal(acquireAttempt(seen({ node: 'x', epoch: 3 }, 40, 6_001), ctx()), undefined, 'a gone holder, unchanged for less than leaseMs: waits');
  t.strictSame(acquireAttempt(seen({ node: 'x', epoch: 3 }, 40, 6_000), ctx()), { revision: 40, epoch: 4 }, 'a gone holder, unchanged for leaseMs: taken with its revision');
  t.equal(acquireAttempt(seen({ node: 'x', epoch: 3 }, 40, 0), ctx({ isLive: (n) => n === 'x' })), undefined, 'a live holder is never taken, however old its key');
});

t.test('a held lease lapses leaseMs - marginMs after its last acked renewal was sent', async (t) => {
  const timing = { leaseMs: 4_000, marginMs: 500 };
  t.notOk(lapsed(1_000, 4_499, timing));
  t.ok(lapsed(1_000, 4_500, timing));
});
