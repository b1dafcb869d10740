import t from 'tap';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Ring } from '../../src/cluster/placement.js';
import { MEMBERS_BUCKET, SHARDS_BUCKET } from '../../src/cluster/nats.js';
import { startNatsCluster, type NatsCluster } from '../helpers/nats.js';
import { Recorder, startControlNode, until, type ControlNode } from '../helpers/cluster-nodes.js';

const SHARDS = 32;
const NAMES = ['a', 'b', 'c'];
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

let nats: NatsCluster;
let admin: NatsConnection;
const rec = new Recorder();
const nodes: ControlNode[] = [];
const gone: string[] = [];

t.before(async () => {
  nats = await startNatsCluster(3);
  admin = await connect({ servers: nats.urls });
  for (const n of NAMES) nodes.push(await startControlNode(n, nats.urls, { shards: SHARDS, recorder: rec }));
  for (const n of nodes) n.membership.onChange((_, g) => gone.push(...g.map((x) => `${n.name} saw ${x} gone`)));
});
t.teardown(async () => {
  for (const n of nodes) await n.die();
  await admin.close();
  await nats.stop();
});

const settled = (): boolean => {
  const ring = new Ring(NAMES);
  return nodes.every((n) => n.leases.leases().map((l) => l.shard).join() === ring.owned(n.name, SHARDS).join());
};

/** The server (by name) leading each control bucket's stream. */
async function leaders(): Promise<{ shards: string; members: string }> {
  // Retried: after a restart the JetStream meta group may still be electing (4–9 s).
  for (let i = 0; ; i++) {
    try {
      const jsm = await jetstreamManager(admin, { timeout: 2_000 });
      const of = async (bucket: string) => (await jsm.streams.info(`KV_${bucket}`)).cluster?.leader ?? '';
      const l = { shards: await of(SHARDS_BUCKET), members: await of(MEMBERS_BUCKET) };
      if (l.shards && l.members) return l;
    } catch (e) {
      if (i > 15) throw e;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Every shard's key revision now (read through the admin connection). */
async function revisions(): Promise<number[]> {
  const kv = await new Kvm(admin).open(SHARDS_BUCKET);
  return Promise.all(range(SHARDS).map(async (s) => (await kv.get(`s.${s}`))?.revision ?? 0));
}

t.test('one NATS server of three killed (leading neither bucket): every lease keeps renewing, nothing is lost', async (t) => {
  await until(settled, 15_000, 'the three nodes to hold the ring split');
  const lead = await leaders();
  const victim = nats.servers.find((s) => s.name !== lead.shards && s.name !== lead.members)!;
  t.ok(victim, `killing ${victim.name} (shards led by ${lead.shards}, members by ${lead.members})`);
  const t0 = performance.now();
  const before = await revisions();
  await victim.kill();
  // A round trip, not a sleep: wait until every shard has been renewed three more times after the kill,
  // then look for anything lost.
  const admin2 = await connect({ servers: nats.urls.filter((u) => u !== victim.url) });
  await admin.close();
  admin = admin2;
  // A revision is the bucket's sequence: a key rewritten shows a new one. Count each key's new revisions.
  let renewedThrice = false;
  const seen = before.map((r) => new Set([r]));
  const t1 = performance.now();
  while (performance.now() - t1 < 15_000) {
    (await revisions()).forEach((r, s) => seen[s]!.add(r));
    if (seen.every((x) => x.size >= 4)) { renewedThrice = true; break; }
    await new Promise((r) => setTimeout(r, 100));
  }
  const took = performance.now() - t1;
  t.ok(renewedThrice, `every shard renewed at least three times after the kill (${took.toFixed(0)} ms)`);
  t.strictSame(rec.since(t0, 'lost'), [], 'no shard was lost');
  t.strictSame(rec.since(t0, 'acquired'), [], 'no shard changed hands');
  t.strictSame(gone, [], 'no member was declared gone');
  t.ok(nodes.every((n) => !n.membership.isolated()), 'no node thinks it is isolated');
  await victim.restart();
});

t.test('the server leading the lease bucket killed: shards may pause for the election, come back to their owners, never two at once', async (t) => {
  await until(settled, 15_000, 'the split, after the restart');
  const lead = await leaders();
  const victim = nats.servers.find((s) => s.name === lead.shards)!;
  const owners = range(SHARDS).map((s) => nodes[0]!.leases.owner(s)?.node);
  const t0 = performance.now();
  await victim.kill();
  const admin2 = await connect({ servers: nats.urls.filter((u) => u !== victim.url) });
  await admin.close();
  admin = admin2;
  // Wait for the election to show: a renewal of every shard after the kill, then the split.
  const before = await revisions().catch(() => range(SHARDS).map(() => 0));
  await until(() => settled(), 30_000, 'the split after the election');
  const t1 = performance.now();
  for (;;) {
    const now = await revisions().catch(() => before);
    if (now.every((r, s) => r > before[s]!)) break;
    if (performance.now() - t1 > 30_000) { t.fail('no renewal after the election'); break; }
    await new Promise((r) => setTimeout(r, 100));
  }
  await until(() => settled(), 30_000, 'the split after the election');
  const lost = rec.since(t0, 'lost');
  const back = rec.since(t0, 'acquired');
  t.pass(`${lost.length} shards lapsed during the election; back ${back.length ? (Math.max(...back.map((e) => e.t)) - t0).toFixed(0) : 0} ms after the kill`);
  t.ok(back.every((e) => e.node === owners[e.shard]), 'every shard came back to the node that held it');
  t.strictSame(range(SHARDS).map((s) => nodes[0]!.leases.owner(s)?.node), owners, 'the table names the same owners');
  t.strictSame(rec.overlaps(), [], 'never two owners of one shard');
  await victim.restart();
});
