import t from 'tap';
import { device, type TestDevice } from '../helpers/clients.js';
import { clusterStatus, testCluster } from '../helpers/cluster.js';
import { ADMIN_KEY } from '../helpers/fixture.js';
import { fullHistory } from '../helpers/ownership.js';
import type { ReceiptFrame, ServerFrame } from '../../src/protocol/frames.js';

/**
 * Issue #13 §4, §9: three Parley nodes on three NATS servers and one keyspace. Every chat feature behaves the
 * same whichever node each user is connected to and whichever node owns the conversation: messages, order,
 * receipts, typing, presence, groups and history.
 */

const c = testCluster(t, 'parley_cluster_chat');

const on = async (t: { teardown(fn: () => unknown): void }, i: number, opts: Parameters<typeof device>[1] = {}): Promise<TestDevice> => {
  const d = await device(c.nodes[i]!.url, opts);
  t.teardown(() => d.close());
  return d;
};
const isReceipt = (x: ServerFrame): x is ReceiptFrame => x.t === 'receipt';

t.test('the cluster: three members, every shard owned once, spread over the nodes', async (t) => {
  const all = await c.settled(3);
  const names = all.map((s) => s.node).sort();
  for (const s of all) {
    t.same(s.members, names, `${s.node} sees every member`);
    t.equal(s.shards.unowned, 0);
  }
  const byNode = all[0]!.shards.byNode;
  t.same(Object.keys(byNode).sort(), names, 'every node owns shards');
  t.equal(Object.values(byNode).reduce((a, b) => a + b, 0), all[0]!.shards.total, 'each shard once');
  for (const s of all) t.equal(s.shards.owned, byNode[s.node], `${s.node} owns what the others say it owns`);
  t.same(Object.keys(all[0]!.urls).sort(), names, 'with each member\'s address');
  t.equal(all[0]!.urls[all[1]!.node], c.nodes[1]!.url, 'where its admin routes answer');
  const one = await clusterStatus(c.nodes[1]!.url);
  t.equal(one.shards.serving, one.shards.owned, 'and serves every shard it owns');
});

t.test('1:1 across nodes: sent, delivered, read, typing and presence, and one seq order both ways', async (t) => {
  const alice = await on(t, 0);
  const bob = await on(t, 1, { autoAck: false });
  const sent = await alice.client.text({ to: bob.user }, 'hello from node 0');
  const got = await bob.waitMessage((m) => m.seq === sent.seq, 'the message on node 1', 10_000);
  t.match(got, { conv: sent.conv, from: alice.user, body: { text: 'hello from node 0' } });
  bob.client.flushAck();
  await alice.waitFrame((x) => isReceipt(x) && x.status === 'delivered' && x.upTo >= sent.seq, 'delivered', 10_000);
  bob.client.read(sent.conv, sent.seq);
  await alice.waitFrame((x) => isReceipt(x) && x.status === 'read' && x.upTo >= sent.seq, 'read', 10_000);
  bob.client.typing(sent.conv, true);
  await alice.waitFrame((x) => x.t === 'typing' && x.user === bob.user, 'typing, through the user topic', 10_000);
  const reply = await bob.client.text({ to: alice.user }, 'hi from node 1');
  t.ok(reply.seq > sent.seq, 'one seq order for both directions');
  await alice.waitMessage((m) => m.seq === reply.seq, 'the reply on node 0', 10_000);

  await bob.client.addContacts([alice.user]); // who may see bob's presence: his contacts
  alice.client.subscribePresence([bob.user]);
  const presence = await alice.waitFrame((x) => x.t === 'presence' && x.user === bob.user, 'bob\'s presence', 10_000);
  t.match(presence, { online: true }, 'bob is online, wherever his entity and his socket are');
  await bob.close();
  await alice.waitFrame((x) => x.t === 'presence' && x.user === bob.user && !x.online, 'bob offline', 10_000);
});

t.test('a burst across nodes arrives once and in order, and the history on a third node agrees', async (t) => {
  const alice = await on(t, 0);
  const bob = await on(t, 1);
  const N = 300;
  const ticks = await Promise.all(Array.from({ length: N }, (_, i) => alice.client.text({ to: bob.user }, `burst ${i}`)));
  const conv = ticks[0]!.conv;
  const seqs = ticks.map((x) => x.seq);
  t.same(seqs, [...seqs].sort((a, b) => a - b), 'ticked in the order sent');
  t.equal(new Set(seqs).size, N, 'no two share a seq');
  await bob.waitFor(() => (bob.messages.filter((m) => m.conv === conv).length >= N ? true : undefined), 20_000, 'every message');
  const got = bob.messages.filter((m) => m.conv === conv);
  t.same(got.map((m) => m.seq), seqs, 'delivered once each, in seq order');
  const reader = await on(t, 2, { session: bob.session, phone: bob.phone });
  const history = await fullHistory(reader, conv);
  t.same(history.map((m) => m.seq), seqs, 'history read through node 2');
});

t.test('a group with members on every node: messages, membership changes and read-by-all', async (t) => {
  const [alice, bob, carol] = [await on(t, 0), await on(t, 1), await on(t, 2)];
  const g = await alice.client.createGroup('three nodes', [bob.user, carol.user]);
  const sent = await alice.client.text({ conv: g.conv }, 'hello everyone');
  for (const d of [bob, carol]) await d.waitMessage((m) => m.conv === g.conv && m.seq === sent.seq, 'the group message', 10_000);
  for (const d of [bob, carol]) d.client.read(g.conv, sent.seq);
  await alice.waitFrame((x) => isReceipt(x) && x.conv === g.conv && x.status === 'read_all' && x.upTo >= sent.seq, 'read by all', 10_000);
  await alice.client.removeMembers(g.id, [carol.user]);
  const after = await bob.client.text({ conv: g.conv }, 'without carol');
  await alice.waitMessage((m) => m.seq === after.seq, 'to alice', 10_000);
  const marker = await alice.client.text({ to: carol.user }, 'marker');
  await carol.waitMessage((m) => m.seq === marker.seq && m.conv === marker.conv, 'the marker', 10_000);
  t.notOk(carol.messages.some((m) => m.conv === g.conv && m.seq === after.seq), 'a removed member gets nothing after her removal');
});

t.test('/metrics times the links\' round trips over NATS and the asks, by where their entity was', async (t) => {
  const alice = await on(t, 0);
  // Profiles of 30 users who do not exist: each an ask to a user entity, on whichever node owns its shard.
  await Promise.all(Array.from({ length: 30 }, (_, i) => alice.client.getProfile(`nobody${i}`).catch(() => undefined)));
  const text = await (await fetch(`${c.nodes[0]!.url}/metrics`, { headers: { 'x-admin-key': ADMIN_KEY } })).text();
  const count = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  t.ok(count(/^parley_cluster_link_ack_seconds_count (\d+)/m) > 0, 'link frames acked and timed');
  t.ok(count(/^parley_cluster_ask_seconds_count\{where="remote"\} (\d+)/m) > 0, 'asks to entities on other nodes');
  t.ok(count(/^parley_cluster_ask_seconds_count\{where="local"\} (\d+)/m) > 0, 'and to entities here');
});

t.test('no node logged an error', async (t) => {
  t.same(c.errorLogs(), []);
});
