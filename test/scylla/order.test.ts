import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { concurrentSends, crashMidBurst, crashWithDeliveryUnconfirmed, resendWhileStoring } from '../helpers/order-check.js';
import type { Client } from 'cassandra-driver';

/**
 * Ordered delivery on the Scylla store (a real CQL server), which completes concurrent writes out of order:
 * 400 concurrent sends into one conversation reach every device in strictly increasing seq, each ticked one
 * exactly once; and a conversation crashed with writes in flight (a network round trip each) ticks and fans
 * out nothing of its dead incarnation. The same on LMDB: test/features/order.test.ts.
 */

const keyspace = testKeyspace('parley_order');
let f: Fixture;
let admin: Client;
t.before(async () => {
  admin = await cqlAdmin();
  // Appends take 100 ms more: a crash mid-burst then always finds writes in flight (test/features/order.test.ts).
  f = await Fixture.start({ ...scyllaNodeEnv(keyspace), PARLEY_FAULTS: '1', PARLEY_FAULT_APPEND_DELAY_MS: '100' });
});
t.teardown(async () => {
  await f?.destroy();
  if (admin) {
    await dropKeyspace(admin, keyspace);
    await admin.shutdown();
  }
});

t.test('400 concurrent sends from four senders into one group: each device gets them in seq order, once', (t) => concurrentSends(t, f));
t.test('a conversation crashed with writes in flight: nothing of the dead incarnation ticks or fans out', (t) => crashMidBurst(t, f));
t.test('a conversation crashed with a delivery unconfirmed: the next activation re-drives it', (t) => crashWithDeliveryUnconfirmed(t, f));
t.test('a cid resent while its first send is being stored: one seq, one tick and one dup, delivered once', (t) => resendWhileStoring(t, f));
