import t from 'tap';
import type { Client } from 'cassandra-driver';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { SHARED_SECRET } from '../features/ownership-cases.js';
import { chatThroughFailover } from '../helpers/failover.js';

/**
 * Issue #13 point 8: the SDK given two node URLs carries on through the second when the first is killed
 * (SIGKILL). Both nodes are on one keyspace of a real Cassandra 5 (ownership is fenced in the store, and a
 * conversation activated on the survivor re-drives its log above the fan-out mark), so every message alice
 * had ticked reaches bob once, in order, and bob resumes from his pointer.
 */
const keyspace = testKeyspace('parley_failover');
let a: Fixture;
let b: Fixture;
let admin: Client;
t.before(async () => {
  admin = await cqlAdmin();
  const env = { ...scyllaNodeEnv(keyspace), PARLEY_SECRET: SHARED_SECRET };
  a = await Fixture.start(env);
  b = await Fixture.start(env);
});
t.teardown(async () => {
  await a?.destroy();
  await b?.destroy();
  await dropKeyspace(admin, keyspace);
  await admin?.shutdown();
});

t.test('the first node is killed: both clients carry on through the second', async (t) => {
  const urls = [a.url, b.url];
  const alice = await a.device(t, { urls, reconnect: true });
  const bob = await a.device(t, { urls, reconnect: true });
  t.same([alice.client.url, bob.client.url], [a.url, a.url], 'both on the first node');
  await chatThroughFailover(t, alice, bob, () => a.node.kill());
  t.same([alice.client.url, bob.client.url], [b.url, b.url], 'both on the second node now');
  t.ok(bob.closes.length >= 1 && bob.closes.every((c) => c.code === 1006), 'bob saw his socket drop (1006), no error frame');
});
