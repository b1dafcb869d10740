import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, cqlContact, cqlDataCenter, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { ScyllaStore } from '../../src/store/scylla/scylla-store.js';
import { bucketOf, minRegisterTimestamp } from '../../src/store/scylla/buckets.js';
import { directConversationId } from '../../src/protocol/ids.js';
import { pack } from '../../src/protocol/codec.js';

/**
 * On Scylla an append writes the message, then its client id (two partitions, no transaction). An owner
 * killed between the two leaves a message in the log that the client-id index doesn't know; its sender
 * was never ticked and sends it again (same cid). The next owner re-drives the message from the log, so
 * storing the resend anew would deliver it twice and keep it twice in history (seen in the cluster's
 * failover test). Here the torn append's two writes (the bucket index, the message; in CQL as the store
 * writes them) are made before the conversation first activates on the node.
 */
t.test('a resend of a message whose owner died between its log write and its client id is answered with the stored seq', async (t) => {
  const ks = testKeyspace('parley_torn_append');
  const f = await Fixture.start(scyllaNodeEnv(ks));
  const store = await ScyllaStore.open({ contactPoints: [cqlContact()], localDataCenter: cqlDataCenter(), keyspace: ks });
  const admin = await cqlAdmin();
  t.teardown(async () => {
    await store.close();
    await f.destroy();
    await dropKeyspace(admin, ks);
    await admin.shutdown();
  });
  const alice = await f.device(t);
  const bob = await f.device(t);
  const conv = directConversationId(alice.user, bob.user);

  // The dead owner's append: the message landed at seq 1, its client id did not.
  const ts = Date.now();
  const bucket = bucketOf(ts);
  await admin.execute(`UPDATE ${ks}.conv_buckets USING TIMESTAMP ? SET first_seq = 1 WHERE conv = ? AND bucket = ?`, [minRegisterTimestamp(1), conv, bucket], { prepare: true });
  await admin.execute(`INSERT INTO ${ks}.messages (conv, bucket, seq, sender, dev, cid, kind, ts, body) VALUES (?, ?, 1, ?, ?, 'torn', 'text', ?, ?)`,
    [conv, bucket, alice.user, alice.session.device, ts, Buffer.from(pack({ text: 'written once' }))], { prepare: true });
  t.equal((await store.getMessage(conv, 1))?.cid, 'torn', 'the message is in the log');
  t.equal(await store.seqForClientId(conv, alice.user, 'torn'), undefined, 'the index does not know it');

  const resent = await alice.client.send({ to: bob.user }, 'text', { text: 'written once' }, { cid: 'torn' });
  t.equal(resent.seq, 1, 'the resend is ticked with the seq it was stored under');
  t.equal(resent.dup, true, 'as a duplicate');
  const next = await alice.client.send({ to: bob.user }, 'text', { text: 'after' });
  t.equal(next.seq, 2, 'the next message takes the next seq');

  await bob.waitMessage((m) => m.seq === next.seq, 'the next message');
  t.strictSame(bob.messages.map((m) => [m.cid, m.seq]), [['torn', 1], [next.cid, 2]], 'bob got the torn message once, then the next');
  const history = await alice.client.history(conv, { after: 0, limit: 10 });
  t.strictSame(history.map((m) => [m.cid, m.seq]), [['torn', 1], [next.cid, 2]], 'history holds it once');
  t.same(f.errorLogs(), [], 'the node logged no errors');
});
