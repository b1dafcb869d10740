import t from 'tap';
import type { Client } from 'cassandra-driver';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, dropKeyspace, eventually, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';

/**
 * Issue #15 §7 on the Scylla store: `<N>d` writes message rows (and their bucket index) with a TTL, so the
 * database expires them (N in ms by the test knob, rounded up to seconds); `transient` deletes what every
 * recipient device has, as on LMDB.
 */

let admin: Client;
const keyspaces: string[] = [];
t.before(async () => { admin = await cqlAdmin(); });
t.teardown(async () => {
  for (const ks of keyspaces) await dropKeyspace(admin, ks).catch(() => undefined);
  await admin?.shutdown();
});
const start = async (env: Record<string, string>) => {
  const ks = testKeyspace('parley_retention');
  keyspaces.push(ks);
  return { f: await Fixture.start({ ...scyllaNodeEnv(ks), ...env }), ks };
};

t.test('N days: message rows carry the TTL, and the database expires them', async (t) => {
  const { f, ks } = await start({ PARLEY_RETENTION: '1d', PARLEY_RETENTION_MS: '2000' });
  t.teardown(() => f.destroy());
  const alice = await f.device(t);
  const bob = await f.device(t);
  const sent = await alice.client.text({ to: bob.user }, 'expires by TTL');
  const rs = await admin.execute(`SELECT TTL(kind) AS ttl FROM ${ks}.messages WHERE conv = ? ALLOW FILTERING`, [sent.conv], { prepare: true });
  const ttl = Number(rs.first()?.get('ttl'));
  t.ok(ttl > 0 && ttl <= 2, `the row expires within the retention (TTL ${ttl} s)`);
  const left = await eventually(() => alice.client.history(sent.conv), (h) => h.length === 0, 10_000);
  t.same(left, [], 'gone from history once expired');
});

t.test('transient: deleted once every recipient device has it', async (t) => {
  const { f } = await start({ PARLEY_RETENTION: 'transient' });
  t.teardown(() => f.destroy());
  const alice = await f.device(t);
  const bob = await f.device(t, { connect: false });
  const sent = await alice.client.text({ to: bob.user }, 'for bob, once');
  const left = await eventually(() => alice.client.history(sent.conv), (h) => h.length === 0, 10_000);
  t.same(left, [], 'deleted from the log once it is in bob\'s inbox');
  await bob.client.connect();
  t.match(await bob.waitMessage((m) => m.seq === sent.seq, 'from his inbox', 10_000), { body: { text: 'for bob, once' } });
});
