import { monoMs, sleep } from '../lib/clock.js';
import { sumSamples } from '../lib/proc.js';
import type { Check, LoadPoint, ScenarioResult, TargetResult } from '../report/types.js';
import { startParleyCluster, startScyllaNode, type ScyllaTarget } from '../targets/cluster.js';
import type { BenchContext } from '../targets/targets.js';
import {
  connectAll, connectFigures, emptyTarget, headline, machineInfo, memoryFigures, memorySample, partition, ratio, round, runPoint, setupPool,
  ScenarioUnavailable, withSessions, type Scenario, type ScenarioOptions, type Session,
} from './common.js';
import { placeAcrossNodes } from './cluster-placement.js';
import { cqlAdmin } from '../../test/helpers/cql.js';
import { pairs } from './relay.js';

/**
 * The 1:1 relay over a cluster against one node, in the same run, on the same store (a keyspace each on
 * the CQL server): `nodes` Parley nodes and `natsServers` nats-servers, every user connected to the node
 * `placeAcrossNodes` picks, so that the two users of a pair are on different nodes and their conversation
 * is owned by a third. Server CPU is every Parley process and every nats-server of the target. The load
 * points alternate between the two targets (one node at a rate, then the cluster at it), so noise from
 * the shared machine hits both alike.
 */
export const cluster: Scenario = {
  name: 'cluster',
  title: 'relay over a 3-node cluster',
  async run(ctx, o) {
    const started = new Date().toISOString();
    const nodes = o.nodes ?? 3;
    const natsServers = o.natsServers ?? 3;
    if (ctx.url) throw new Error('cluster starts its own nodes: --url does not apply');
    if (nodes < 2) throw new Error('--nodes must be 2 or more');
    if (![1, 3].includes(natsServers)) throw new Error('--nats-servers must be 1 or 3');
    await requireCql();
    const clients = o.clients ?? 1000;
    // On the CQL store a node spends several times the CPU per message it does on LMDB (the driver): 500 and 1,000/s
    // leave room on 2 cores shared with the cluster, the load generator and the CQL server.
    const rates = [...new Set(o.rates ?? [500, 1000])].sort((a, b) => a - b);
    const headRate = rates.includes(o.headlineRate) ? o.headlineRate : rates[0]!;
    const durationS = o.durationS ?? 5;
    const workers = o.workers ?? 2;
    const warmupS = o.warmupS ?? 3;
    const config = { clients, rates, headline_rate: headRate, durationS, workers, warmupS, frameBytes: o.frameBytes, nodes, nats_servers: natsServers, store: 'scylla (CQL server shared with the machine; not counted)' };
    const targets: ScyllaTarget[] = [];
    const results = [
      emptyTarget('parley', 'Parley, 1 node', clients),
      emptyTarget('parley', `Parley, ${nodes} nodes + ${natsServers} NATS`, clients),
    ];
    try {
      await withSessions(ctx, ['parley', 'parley'], 'cluster', workers, async (_k, i) => {
        const t = i === 0 ? await startScyllaNode(ctx, clients) : await startParleyCluster(ctx, { nodes, natsServers, users: clients });
        targets[i] = t;
        return t.server;
      }, async (ss) => {
        for (const [i, s] of ss.entries()) {
          const t = targets[i]!, r = results[i]!;
          const p = pairs('parley', clients, t.accounts);
          let vus = p.vus;
          if (i === 1) {
            const placed = placeAcrossNodes(p.vus, p.streams, t.nodes, t.shards);
            vus = placed.vus;
            r.extra.crossing = placed.crossing;
            r.extra.nodes = t.nodes.map((n) => n.name);
            r.extra.shards = t.shards;
          }
          await setupPool(s, partition(vus, p.streams, workers, (st) => Math.floor(st.id / 2)), o);
          await sleep(300);
          const mem0 = await memorySample(s.server);
          const conn = await connectAll(s, vus.length, `connect ${vus.length}`);
          r.connect = connectFigures(conn);
          await sleep(700);
          r.memory = memoryFigures(mem0, await memorySample(s.server), conn.connected);
          r.extra.idle_cpu_cores = await idleCores(s, 2000);
        }
        if (warmupS > 0) for (const s of ss) await runPoint(s, { label: 'warm-up', mode: 'rate', ratePerS: Math.min(2000, rates[0]!), durationS: warmupS, fanout: 1 }, o);
        for (const rate of rates) {
          for (const [i, s] of ss.entries()) {
            const r = results[i]!;
            const { point } = await runPoint(s, { label: `${rate.toLocaleString('en-US')}/s`, mode: 'rate', ratePerS: rate, durationS, fanout: 1 }, o);
            r.points.push(point);
            if (!point.drained) r.notes.push(`${point.label}: not drained (${point.pending ? `${point.pending} still in flight at the drain cap` : 'stalled'})`);
            if (point.delivered_per_s < 0.9 * rate) r.notes.push(`${point.label}: delivered ${point.delivered_per_s}/s, short of the offered rate (the figures are the target's at its limit)`);
            await sleep(300);
          }
        }
      });
    } finally {
      for (const t of targets) await t?.close().catch((e) => ctx.progress.log(`cluster: cleanup: ${(e as Error).message}`));
    }
    return clusterResult(ctx, o, started, results, config, headRate);
  },
};

async function requireCql(): Promise<void> {
  const admin = await cqlAdmin().catch((e: Error) => { throw new ScenarioUnavailable(e.message); });
  await admin.shutdown();
}

/** CPU of the target with no load (heartbeats, lease renewals, JetStream), in cores, per role and in total. */
async function idleCores(s: Session, ms: number): Promise<Record<string, number>> {
  const parts = () => s.server.sampleParts?.() ?? { parley: s.server.sample() };
  const a = parts(), t0 = monoMs();
  await sleep(ms);
  const b = parts(), wallUs = (monoMs() - t0) * 1000;
  const out: Record<string, number> = {};
  for (const k of Object.keys(b)) out[k] = round((b[k]!.cpuUs - (a[k]?.cpuUs ?? b[k]!.cpuUs)) / wallUs, 3);
  out.total = round((sumSamples(Object.values(b)).cpuUs - sumSamples(Object.values(a)).cpuUs) / wallUs, 3);
  return out;
}

/** A point's CPU per message without the target's idle CPU over the same time (what the messages themselves cost). */
export function withoutIdle(p: LoadPoint, idleCoresTotal: number): number | null {
  if (!Number.isFinite(p.server_cpu_us_per_msg) || !(p.server_cpu_cores > 0)) return null;
  return round(p.server_cpu_us_per_msg * Math.max(0, 1 - idleCoresTotal / p.server_cpu_cores), 1);
}

function clusterResult(ctx: BenchContext, o: ScenarioOptions, started: string, results: TargetResult[], config: Record<string, unknown>, headRate: number): ScenarioResult {
  const [single, multi] = results as [TargetResult, TargetResult];
  const label = (r: number) => `${r.toLocaleString('en-US')}/s`;
  const at = (t: TargetResult, r: number) => t.points.find((p) => p.label === label(r));
  const idle = (t: TargetResult) => (t.extra.idle_cpu_cores as Record<string, number> | undefined)?.total ?? 0;
  const ratios: Record<string, number | null> = {};
  for (const r of config.rates as number[]) {
    const a = at(single, r), b = at(multi, r);
    ratios[`cpu_cluster_vs_single_at_${r}`] = ratio(b?.server_cpu_us_per_msg, a?.server_cpu_us_per_msg);
    ratios[`cpu_cluster_parley_only_vs_single_at_${r}`] = ratio(b?.server_cpu_parts_us_per_msg?.parley, a?.server_cpu_us_per_msg);
    ratios[`cpu_cluster_vs_single_without_idle_at_${r}`] = ratio(b && withoutIdle(b, idle(multi)), a && withoutIdle(a, idle(single)));
    ratios[`nats_share_of_cluster_cpu_at_${r}`] = ratio(b?.server_cpu_parts_us_per_msg?.nats, b?.server_cpu_us_per_msg);
    ratios[`p99_cluster_vs_single_at_${r}`] = ratio(b?.p99_ms, a?.p99_ms);
  }
  const head = ratios[`cpu_cluster_vs_single_at_${headRate}`] ?? null;
  // A target that could not keep the rate, or whose store refused writes, spent its CPU waiting and retrying:
  // its figure per message is not the cost of a message, and the ratio is shown but not judged.
  const unfit = [single, multi].map((t) => ({ t, p: at(t, headRate) })).filter(({ p }) => !p || p.errors > 0 || p.delivered_per_s < 0.9 * headRate)
    .map(({ t, p }) => `${t.name}: ${p ? `${p.delivered_per_s}/s delivered, ${p.errors} errors` : 'no point'}`);
  const checks: Check[] = [
    { name: `cross-node message CPU ≤ 1.5× a single-node message (Parley + NATS, at ${label(headRate)})`, value: head, limit: '≤ 1.5', pass: head == null || unfit.length ? null : head <= 1.5,
      ...(unfit.length ? { note: `not judged: ${unfit.join('; ')}` } : {}) },
  ];
  const crossing = multi.extra.crossing as { pairs: number; split_pairs: number; conv_on_third_node: number } | undefined;
  if (crossing) {
    checks.push({ name: 'every pair\'s users on different nodes', value: `${crossing.split_pairs} of ${crossing.pairs}`, limit: 'all', pass: crossing.split_pairs === crossing.pairs });
    if ((config.nodes as number) >= 3) checks.push({ name: 'every pair\'s conversation owned by a third node', value: `${crossing.conv_on_third_node} of ${crossing.pairs}`, limit: 'all', pass: crossing.conv_on_third_node === crossing.pairs });
  }
  for (const t of results) {
    const lost = t.points.reduce((a, p) => a + p.lost, 0), dup = t.points.reduce((a, p) => a + p.duplicated, 0);
    checks.push({ name: `${t.name}: zero lost and duplicated`, value: `${lost} lost, ${dup} dup`, limit: '0', pass: lost === 0 && dup === 0 });
    const rm = t.points.reduce((a, p) => a + p.receipts_missing, 0);
    checks.push({ name: `${t.name}: every acked message got its delivered receipt`, value: rm, limit: '0 missing', pass: rm === 0 });
  }
  const notes: string[] = [];
  const a = at(single, headRate), b = at(multi, headRate);
  if (a && b) {
    const parts = b.server_cpu_parts_us_per_msg ?? {};
    notes.push(`At ${label(headRate)}: one node ${a.server_cpu_us_per_msg} µs per delivered message; the cluster ${b.server_cpu_us_per_msg} µs = Parley processes ${parts.parley ?? '–'} µs + nats-servers ${parts.nats ?? '–'} µs. `
      + `The Parley processes spend ${round((parts.parley ?? NaN) - a.server_cpu_us_per_msg, 1)} µs more per message than one node, the nats-servers ${parts.nats ?? '–'} µs. `
      + `Idle (no load): one node ${idle(single)} cores, the cluster ${idle(multi)} cores (${JSON.stringify(multi.extra.idle_cpu_cores)}), charged to the messages of each run above.`);
  }
  notes.push('Server CPU counts the Parley processes and nats-servers the bench started; the CQL server (shared with the machine) is not counted for either target. Both targets ran with every point interleaved on the same machine, load generator on the same cores.');
  const hs = a ? headline(a, single.memory, single) : null;
  const hm = headline(b, multi.memory, multi);
  return {
    scenario: 'cluster', title: `relay over a ${config.nodes}-node cluster`, started_at: started, finished_at: new Date().toISOString(), command: o.command,
    machine: machineInfo(ctx), config, targets: results,
    summary: {
      scenario: 'cluster',
      basis: {
        delivered_per_s: `fixed offered rate ${label(headRate)}, the cluster`,
        latency: `fixed offered rate ${label(headRate)}, send → delivery across nodes, from the intended send time`,
        server_cpu_us_per_msg: `fixed offered rate ${label(headRate)}: every Parley process and nats-server of the cluster, per delivered message`,
        server_bytes_per_conn: 'RSS growth over all the cluster\'s nodes after a forced GC, per connected client',
      },
      ...hm,
      baselines: { uws: null, socketio: null, single_node: hs },
      ratios, checks,
    },
    notes,
  };
}
