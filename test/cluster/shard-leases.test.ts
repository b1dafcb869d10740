import t from 'tap';
import { Ring } from '../../src/cluster/placement.js';
import { FreezableProxy } from '../helpers/cql.js';
import { startNatsCluster, type NatsCluster } from '../helpers/nats.js';
import { Recorder, startControlNode, until, type ControlNode } from '../helpers/cluster-nodes.js';

const SHARDS = 64;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

let nats: NatsCluster;
const rec = new Recorder();
const nodes = new Map<string, ControlNode>();

t.before(async () => { nats = await startNatsCluster(3); });
t.teardown(async () => {
  for (const n of nodes.values()) await n.die();
  await nats.stop();
});

async function start(name: string, opts: { drainMs?: number; urls?: string[]; only?: boolean } = {}): Promise<ControlNode> {
  const n = await startControlNode(name, opts.urls ?? nats.urls, { shards: SHARDS, recorder: rec, drainMs: opts.drainMs ?? 0, only: opts.only ?? false });
  nodes.set(name, n);
  return n;
}

/** Every running node holds exactly what the ring over `names` gives it, and every node's table agrees. */
function settled(names: string[]): boolean {
  const ring = new Ring(names);
  for (const name of names) {
    const n = nodes.get(name)!;
    const held = n.leases.leases().map((l) => l.shard);
    if (held.join() !== ring.owned(name, SHARDS).join()) return false;
  }
  for (const name of names) {
    const table = nodes.get(name)!.leases;
    for (const s of range(SHARDS)) if (table.owner(s)?.node !== ring.owner(s)) return false;
  }
  return true;
}

const holderOf = (s: number, names: string[]): string[] => names.filter((n) => nodes.get(n)!.leases.holds(s));

t.test('three nodes own every shard exactly once, split as the ring says', async (t) => {
  await Promise.all(['a', 'b', 'c'].map((n) => start(n, { drainMs: 150 })));
  const took = await until(() => settled(['a', 'b', 'c']), 15_000, 'a, b and c to hold the ring split');
  t.pass(`settled ${took.toFixed(0)} ms after the three started`);
  for (const s of range(SHARDS)) t.equal(holderOf(s, ['a', 'b', 'c']).length, 1, `shard ${s} has one holder`);
  const epochs = nodes.get('a')!.leases;
  t.ok(range(SHARDS).every((s) => (epochs.owner(s)?.epoch ?? 0) >= 1), 'every lease carries an epoch');
});

t.test('a joining node gets only the shards the ring moves to it, each drained by its old owner first', async (t) => {
  const before = new Ring(['a', 'b', 'c']);
  const after = new Ring(['a', 'b', 'c', 'd']);
  const moving = range(SHARDS).filter((s) => after.owner(s) === 'd');
  const staying = range(SHARDS).filter((s) => after.owner(s) !== 'd');
  const epochsBefore = staying.map((s) => nodes.get('a')!.leases.owner(s)?.epoch);
  const t0 = performance.now();
  await start('d');
  await until(() => settled(['a', 'b', 'c', 'd']), 10_000, 'd to hold its ring share');
  const acquired = rec.since(t0, 'acquired');
  t.strictSame(acquired.map((e) => e.shard).sort((x, y) => x - y), moving, 'only the shards the ring moves were acquired');
  t.ok(acquired.every((e) => e.node === 'd'), 'all by the newcomer');
  t.strictSame(rec.since(t0, 'lost'), [], 'nothing was lost');
  for (const e of acquired) {
    const ended = rec.since(t0, 'release-end').find((r) => r.shard === e.shard);
    t.ok(ended && ended.node === before.owner(e.shard) && ended.t <= e.t, `shard ${e.shard}: ${before.owner(e.shard)} drained it before d acquired it`);
  }
  t.strictSame(staying.map((s) => nodes.get('d')!.leases.owner(s)?.epoch), epochsBefore, 'the other shards kept their holder and epoch');
});

t.test('a node stopped gracefully hands its shards to the others, draining each before the key changes hands', async (t) => {
  const after = new Ring(['a', 'b', 'c']);
  const moving = nodes.get('d')!.leases.leases().map((l) => l.shard);
  t.ok(moving.length > 0, `d holds ${moving.length} shards`);
  const t0 = performance.now();
  await nodes.get('d')!.stop();
  nodes.delete('d');
  const took = await until(() => settled(['a', 'b', 'c']), 10_000, 'the others to take d\'s shards');
  t.ok(took < 2_000, `taken over ${took.toFixed(0)} ms after d's stop finished (no lease wait)`);
  const acquired = rec.since(t0, 'acquired');
  t.strictSame(acquired.map((e) => e.shard).sort((x, y) => x - y), moving, 'exactly d\'s shards moved');
  for (const e of acquired) {
    t.equal(e.node, after.owner(e.shard), `shard ${e.shard} went where the ring says`);
    const drained = rec.since(t0, 'release-end', 'd').find((r) => r.shard === e.shard);
    t.ok(drained && drained.t <= e.t, `shard ${e.shard}: d's drain ended before ${e.node} acquired it`);
  }
  t.strictSame(rec.since(t0, 'lost'), [], 'nothing was lost');
});

t.test('a node cut off from NATS stops serving every shard before anyone else takes one, and the others take over within 5 s', async (t) => {
  const proxy = await FreezableProxy.start(`127.0.0.1:${nats.servers[0]!.port}`);
  t.teardown(() => proxy.close());
  const e = await start('e', { urls: [`nats://${proxy.contact}`], only: true });
  await until(() => settled(['a', 'b', 'c', 'e']), 10_000, 'e to hold its ring share');
  const cutShards = e.leases.leases().map((l) => l.shard);
  t.ok(cutShards.length > 0, `e holds ${cutShards.length} shards`);
  const t0 = performance.now();
  proxy.freeze();
  await until(() => settled(['a', 'b', 'c']), 8_000, 'a, b and c to take e\'s shards');
  const lost = rec.since(t0, 'lost', 'e');
  const acquired = rec.since(t0, 'acquired');
  t.strictSame(lost.map((x) => x.shard).sort((x, y) => x - y), cutShards, 'e reported every shard lost');
  t.strictSame(acquired.map((x) => x.shard).sort((x, y) => x - y), cutShards, 'exactly e\'s shards were taken');
  const lastLost = Math.max(...lost.map((x) => x.t));
  const firstTaken = Math.min(...acquired.map((x) => x.t));
  const lastTaken = Math.max(...acquired.map((x) => x.t));
  t.ok(lastLost < firstTaken, `e stopped serving its last shard (${(lastLost - t0).toFixed(0)} ms after the cut) before the first takeover (${(firstTaken - t0).toFixed(0)} ms)`);
  t.ok(lastTaken - t0 < 5_000, `every shard taken over ${(lastTaken - t0).toFixed(0)} ms after the cut (< 5 s)`);
  t.ok(e.membership.isolated(), 'e knows it is isolated');

  // The cut heals: e's stale writes are refused, it rejoins and gets its ring share back.
  const t1 = performance.now();
  proxy.thaw();
  await until(() => settled(['a', 'b', 'c', 'e']), 20_000, 'e to rejoin and hold its ring share again');
  t.strictSame(rec.since(t1, 'acquired', 'e').map((x) => x.shard).sort((x, y) => x - y), cutShards, 'e got back the same shards');
  for (const x of rec.since(t1, 'acquired', 'e')) {
    const before = rec.events.filter((y) => y.kind === 'acquired' && y.shard === x.shard && y.t < x.t).at(-1);
    t.ok(before && before.kind === 'acquired' && x.kind === 'acquired' && x.epoch > before.epoch, `shard ${x.shard}: a higher epoch than the last holder's`);
  }
});

t.test('a node configured with another shard count is refused, and nobody counts it', async (t) => {
  await t.rejects(startControlNode('z', nats.urls, { shards: SHARDS * 2, recorder: rec }), { name: 'ShardCountMismatch', ours: SHARDS * 2, theirs: SHARDS });
  t.ok(settled(['a', 'b', 'c', 'e']), 'the split is unchanged');
});

t.test('never two owners: no two serving intervals of one shard overlap, over every run above', async (t) => {
  t.strictSame(rec.overlaps(), []);
  t.ok(rec.intervals().length > SHARDS, `${rec.intervals().length} intervals checked`);
});
