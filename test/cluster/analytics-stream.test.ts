import t from 'tap';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { device, type TestDevice } from '../helpers/clients.js';
import { clusterStatus, testCluster } from '../helpers/cluster.js';
import { ADMIN_KEY, http } from '../helpers/fixture.js';
import { ANALYTICS_STREAM, type StreamEvent } from '../../src/analytics/stream.js';
import type { AnalyticsReport } from '../../src/analytics/report.js';

/** Issue #16 §4: with NATS, analytics events (envelope only) go to the JetStream stream parley_analytics. */

const c = testCluster(t, 'parley_cluster_analytics', { nodes: 2, env: { PARLEY_ANALYTICS_FLUSH_MS: '200' } });

const on = async (t: { teardown(fn: () => unknown): void }, i: number): Promise<TestDevice> => {
  const d = await device(c.nodes[i]!.url);
  t.teardown(() => d.close());
  return d;
};

t.test('events reach the stream as JSON arrays of envelopes: pseudonymous users, no bodies; each node\'s rows merge', async (t) => {
  const alice = await on(t, 0);
  const bob = await on(t, 1);
  const secret = 'the secret analytics body';
  const sent = await alice.client.text({ to: bob.user }, secret);
  await bob.waitMessage((m) => m.seq === sent.seq && m.conv === sent.conv);
  const names = await Promise.all(c.nodes.map(async (n) => (await clusterStatus(n.url)).node));

  const nc = await connect({ servers: c.nats.urls });
  t.teardown(() => nc.close());
  const info = await (await jetstreamManager(nc)).streams.info(ANALYTICS_STREAM);
  t.strictSame(info.config.subjects, ['parley.analytics.>']);
  t.equal(info.config.storage, StorageType.File);
  t.equal(info.config.num_replicas, 3, 'replicated like the control buckets (PARLEY_NATS_REPLICAS)');
  t.equal(info.config.max_age, 7 * 86_400 * 1e9, 'kept 7 days');

  const consumer = await jetstream(nc).consumers.get(ANALYTICS_STREAM);
  const events: StreamEvent[] = [];
  const raw: string[] = [];
  const until = Date.now() + 10_000;
  const have = () => events.some((e) => e.type === 'message') && events.filter((e) => e.type === 'active').length >= 2 && events.filter((e) => e.type === 'signup').length >= 2;
  while (!have() && Date.now() < until) {
    const got = await consumer.fetch({ max_messages: 100, expires: 1_000 });
    for await (const m of got) {
      t.match(m.subject, /^parley\.analytics\.n[0-9a-zA-Z]+$/, 'a node\'s own subject');
      raw.push(m.string());
      events.push(...(m.json() as StreamEvent[]));
    }
  }
  t.ok(have(), `sign-ups, active users and the message arrived: ${JSON.stringify(events)}`);
  const msg = events.find((e) => e.type === 'message')!;
  t.match(msg, { v: 1, type: 'message', kind: 'text', group: false });
  t.ok(names.includes(msg.node), 'the node that stored it');
  t.ok(Math.abs(msg.t - Date.now()) < 60_000, 'when');
  for (const e of events.filter((x) => x.user !== undefined)) t.match(e.user, /^[0-9a-f]{32}$/, `${e.type}: a pseudonym`);
  const signups = new Set(events.filter((e) => e.type === 'signup').map((e) => e.user));
  const active = new Set(events.filter((e) => e.type === 'active').map((e) => e.user));
  t.ok([...active].every((u) => signups.has(u)), 'a user\'s pseudonym is the same in each event (HMAC under a key from the shared secret)');
  const all = raw.join('\n');
  t.notOk(all.includes(secret), 'no body');
  t.notOk(all.includes(alice.user) || all.includes(bob.user) || all.includes(alice.phone) || all.includes(alice.session.token), 'no user id, phone or token');

  // Each node writes its own row (every 200 ms here); any node's report merges them.
  const day = new Date().toISOString().slice(0, 10);
  const merged = () => http(c.nodes[1]!.url, `/v1/admin/analytics?from=${day}&to=${day}`, { headers: { 'x-admin-key': ADMIN_KEY } }).then((r) => (r.json as AnalyticsReport).days[0]!);
  let d = await merged();
  for (const end = Date.now() + 5_000; !(d.dau === 2 && d.signups === 2 && d.messages.direct === 1) && Date.now() < end;) d = await merged();
  t.match(d, { dau: 2, signups: 2, messages: { direct: 1, group: 0 } }, 'merged across both nodes');
});
