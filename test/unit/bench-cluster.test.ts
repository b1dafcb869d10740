import t from 'tap';
import { Ring, shardOf } from '../../src/cluster/placement.js';
import { directConversationId, newId } from '../../src/protocol/ids.js';
import { cpuPerMessageByRole, sumSamples, type ProcSample } from '../../bench/lib/proc.js';
import { placeAcrossNodes, ringShares, type ClusterNodeRef } from '../../bench/scenarios/cluster-placement.js';
import { withoutIdle } from '../../bench/scenarios/cluster.js';
import { pairs } from '../../bench/scenarios/relay.js';
import type { LoadPoint } from '../../bench/report/types.js';

const accounts = (n: number) => Array.from({ length: n }, () => ({ user: newId(), token: 't' }));
const nodes = (n: number): ClusterNodeRef[] => Array.from({ length: n }, (_, i) => ({ name: `node${i + 1}x`, url: `http://127.0.0.1:${9001 + i}` }));
const sample = (cpuUs: number, rssBytes = 0): ProcSample => ({ cpuUs, rssBytes, rssAnonBytes: rssBytes, rssFileBytes: 0, threads: 1, at: 0 });

t.test('three nodes: every pair is split, and neither user sits on the node owning their conversation', async (t) => {
  const acc = accounts(400);
  const { vus, streams } = pairs('parley', acc.length, acc);
  const ns = nodes(3);
  const ring = new Ring(ns.map((n) => n.name));
  const placed = placeAcrossNodes(vus, streams, ns, 256);
  const nodeOfUrl = new Map(ns.map((n) => [n.url, n.name]));
  t.equal(placed.vus.length, 400);
  for (let i = 0; i < 400; i += 2) {
    const a = placed.vus[i]!, b = placed.vus[i + 1]!;
    const conv = ring.owner(shardOf('conv', directConversationId(a.user!, b.user!), 256));
    const na = nodeOfUrl.get(a.url!), nb = nodeOfUrl.get(b.url!);
    t.not(na, nb, `pair ${i / 2}: users on different nodes`);
    t.not(na, conv, `pair ${i / 2}: sender not on the conversation's node`);
    t.not(nb, conv, `pair ${i / 2}: recipient not on the conversation's node`);
  }
  t.strictSame({ pairs: placed.crossing.pairs, split: placed.crossing.split_pairs, third: placed.crossing.conv_on_third_node }, { pairs: 200, split: 200, third: 200 });
  // By construction the hops to and from the conversation always cross; the user entity's fall where the ring puts them.
  t.equal(placed.crossing.hop_crosses.send, 1);
  t.equal(placed.crossing.hop_crosses.sent, 1);
  t.equal(placed.crossing.hop_crosses.receipt, 1);
  t.ok(placed.crossing.hop_crosses.deliver > 0.4 && placed.crossing.hop_crosses.deliver < 0.9, `deliver crosses in ~2/3 of messages (${placed.crossing.hop_crosses.deliver})`);
  t.ok(placed.crossing.crossing_hops_per_msg >= 3 && placed.crossing.crossing_hops_per_msg <= 7);
  // Sockets spread over all three nodes, none with less than a fifth.
  const counts = Object.values(placed.crossing.sockets_by_node);
  t.equal(counts.reduce((a, b) => a + b, 0), 400);
  t.ok(Math.min(...counts) > 80, `balanced: ${JSON.stringify(placed.crossing.sockets_by_node)}`);
});

t.test('two nodes: every pair is split, the conversation on one of its users\' nodes', async (t) => {
  const acc = accounts(100);
  const { vus, streams } = pairs('parley', acc.length, acc);
  const placed = placeAcrossNodes(vus, streams, nodes(2), 64);
  t.equal(placed.crossing.split_pairs, 50);
  t.equal(placed.crossing.conv_on_third_node, 0);
  t.equal(placed.crossing.hop_crosses.send + placed.crossing.hop_crosses.receipt, 1, 'half the messages are sent from the conversation\'s node');
});

t.test('the hop counts follow the placement exactly on a small case', async (t) => {
  const acc = accounts(2);
  const { vus, streams } = pairs('parley', 2, acc);
  const ns = nodes(3);
  const placed = placeAcrossNodes(vus, streams, ns, 16);
  const ring = new Ring(ns.map((n) => n.name));
  const own = (type: string, id: string) => ring.owner(shardOf(type, id, 16));
  const conv = own('conv', directConversationId(acc[0]!.user, acc[1]!.user));
  const node = (i: number) => ns.find((n) => n.url === placed.vus[i]!.url)!.name;
  // Two streams (a→b, b→a): "deliver" crosses for each recipient whose user entity is not on the conversation's node.
  const expected = [[0, 1], [1, 0]].filter(([, r]) => own('user', acc[r!]!.user) !== conv).length / 2;
  t.equal(placed.crossing.hop_crosses.deliver, expected);
  const push = [[0, 1], [1, 0]].filter(([, r]) => own('user', acc[r!]!.user) !== node(r!)).length / 2;
  t.equal(placed.crossing.hop_crosses.push, push);
  t.equal(placed.crossing.hop_crosses.ack, push, 'an ack goes back the way its delivery came');
});

t.test('ringShares is the lease table a settled cluster shows', async (t) => {
  const members = ['c', 'a', 'b'];
  const shares = ringShares(members, 256);
  t.strictSame(Object.keys(shares), ['a', 'b', 'c']);
  t.equal(Object.values(shares).reduce((a, b) => a + b, 0), 256);
  const ring = new Ring(members);
  t.equal(shares.a, ring.owned('a', 256).length);
});

t.test('CPU of several processes adds up, and splits by role', async (t) => {
  const s = sumSamples([sample(100, 10), sample(250, 20), sample(50, 5)]);
  t.equal(s.cpuUs, 400);
  t.equal(s.rssBytes, 35);
  t.equal(s.threads, 3);
  t.equal(sumSamples([]).cpuUs, 0);
  const before = { parley: sumSamples([sample(1_000), sample(2_000)]), nats: sample(500) };
  const after = { parley: sumSamples([sample(31_000), sample(12_000)]), nats: sample(10_500) };
  t.strictSame(cpuPerMessageByRole(before, after, 1000), { parley: 40, nats: 10 });
  t.ok(Number.isNaN(cpuPerMessageByRole(before, after, 0).parley), 'no messages: no figure');
  t.ok(Number.isNaN(cpuPerMessageByRole({}, after, 10).nats), 'a role not sampled before: no figure');
});

t.test('withoutIdle takes the idle share of the run out of a point\'s CPU per message', async (t) => {
  const p = { server_cpu_us_per_msg: 300, server_cpu_cores: 0.6 } as LoadPoint;
  t.equal(withoutIdle(p, 0.3), 150, 'half the cores were idle cost');
  t.equal(withoutIdle(p, 0), 300);
  t.equal(withoutIdle(p, 1), 0, 'never negative');
  t.equal(withoutIdle({ ...p, server_cpu_cores: 0 }, 0.1), null);
});
