import t from 'tap';
import { twoNodesOnOneKeyspace } from '../helpers/cql.js';
import { SHARED_SECRET } from '../features/ownership-cases.js';
import { chatThroughFailover } from '../helpers/failover.js';

/**
 * Issue #13 point 8: the SDK given two node URLs carries on through the second when the first is killed
 * (SIGKILL). Both nodes are on one keyspace of a real Cassandra 5 (ownership is fenced in the store, and a
 * conversation activated on the survivor re-drives its log above the fan-out mark), so every message alice
 * had ticked reaches bob once, in order, and bob resumes from his pointer.
 */
const two = twoNodesOnOneKeyspace(t, 'parley_failover', SHARED_SECRET);

t.test('the first node is killed: both clients carry on through the second', async (t) => {
  const urls = [two.a.url, two.b.url];
  const alice = await two.a.device(t, { urls, reconnect: true });
  const bob = await two.a.device(t, { urls, reconnect: true });
  t.same([alice.client.url, bob.client.url], [two.a.url, two.a.url], 'both on the first node');
  await chatThroughFailover(t, alice, bob, () => two.a.node.kill());
  t.same([alice.client.url, bob.client.url], [two.b.url, two.b.url], 'both on the second node now');
  t.ok(bob.closes.length >= 1 && bob.closes.every((c) => c.code === 1006), 'bob saw his socket drop (1006), no error frame');
});
