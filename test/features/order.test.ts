import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { concurrentSends, crashMidBurst, crashWithDeliveryUnconfirmed, resendWhileStoring } from '../helpers/order-check.js';

/**
 * Ordered delivery on the LMDB store: many concurrent senders into one conversation, and a conversation
 * entity crashed while its writes are in flight. Every device gets each ticked message once, in seq order;
 * a completion of the crashed incarnation ticks nothing and fans out nothing (test/helpers/order-check.ts).
 * The same on the Scylla store: test/scylla/order.test.ts.
 */

let f: Fixture;
// Appends take 100 ms (a slow remote store): senders send five at a time, so while the burst lasts some writes
// are always in flight, and the crash armed mid-way finds them there.
t.before(async () => { f = await Fixture.start({ PARLEY_FAULTS: '1', PARLEY_FAULT_APPEND_DELAY_MS: '100' }); });
t.teardown(() => f.destroy());

t.test('400 concurrent sends from four senders into one group: each device gets them in seq order, once', (t) => concurrentSends(t, f));
t.test('a conversation crashed with writes in flight: nothing of the dead incarnation ticks or fans out', (t) => crashMidBurst(t, f));
t.test('a conversation crashed with a delivery unconfirmed: the next activation re-drives it', (t) => crashWithDeliveryUnconfirmed(t, f));
t.test('a cid resent while its first send is being stored: one seq, one tick and one dup, delivered once', (t) => resendWhileStoring(t, f));
