import WebSocket from 'ws';
import { monoMs, sleep } from '../lib/clock.js';
import { mergeHistograms, summarize } from '../lib/hist.js';
import type { TargetKind, VuSpec } from '../load/messages.js';
import { SWEEP_MS } from '../../src/transport/rate-limit.js';
import { ensureAccounts, startTarget, TARGET_NAMES, type BenchContext } from '../targets/targets.js';
import type { Check, ScenarioResult, TargetResult } from '../report/types.js';
import {
  connectAll, connectFigures, emptyTarget, machineInfo, memoryFigures, memorySample, partition, ratio, round, setupPool, sourceAddresses,
  withSession, type Scenario, type ScenarioOptions, type Session,
} from './common.js';

const WARM = 1000;
/**
 * Memory is sampled this long after the sockets connected: what an idle connection costs for its life, once
 * the node forgot the rate-limit buckets their upgrades and syncs drew on (src/transport/rate-limit.ts).
 */
const IDLE_AFTER_MS = SWEEP_MS + 2000;

/**
 * Idle connections. Each target is brought to `connections` idle authenticated sockets (19,000 by default:
 * a process here may hold 20,000 open files). Memory per connection is the slope of the server's RSS
 * (after a forced GC) between 1,000 connections and the full count, so one-time costs (code pages, JIT,
 * the first entities) don't count. On Parley, whose connection limit is set to that count, the harness
 * then opens more sockets: each must be refused at once with HTTP 503, while the held sockets still answer.
 */
export const connections: Scenario = {
  name: 'connections',
  title: 'idle connections',
  async run(ctx, o) {
    const started = new Date().toISOString();
    const n = o.connections ?? 19_000;
    const extra = 20;
    const workers = o.workers ?? Math.max(2, Math.ceil(n / 7000));
    const accounts = o.targets.includes('parley') ? await ensureAccounts(ctx, n + extra) : [];
    const results: TargetResult[] = [];
    for (const kind of o.targets) {
      const t = emptyTarget(kind, TARGET_NAMES[kind], n);
      await withSession(ctx, kind, `connections ${kind}`, workers, () => startTarget(kind, ctx, { maxConnections: n, profileName: `connections-${kind}.cpuprofile` }), async (s) => {
        const vus: VuSpec[] = Array.from({ length: n }, (_, i) => (kind === 'parley' ? { idx: i, user: accounts[i]!.user, token: accounts[i]!.token } : { idx: i }));
        const parts = partition(vus, [], workers, () => 0);
        await setupPool(s, parts, o, Math.max(50, Math.floor(400 / workers)));
        await sleep(500);
        const base = await memorySample(s.server);
        // First 1,000 (spread over the workers), then the rest: memory per connection is the slope between.
        const warmIds = parts.map((p) => p.vus.slice(0, Math.ceil(WARM / workers)).map((v) => v.idx));
        const warmCount = warmIds.reduce((a, l) => a + l.length, 0);
        const c1 = await connectAll(s, warmCount, `connect first ${warmCount}`, warmIds);
        await sleep(IDLE_AFTER_MS);
        const warm = await memorySample(s.server);
        const heapWarm = o.heapSnapshot ? await s.server.heapByConstructor() : undefined;
        const c2 = await connectAll(s, n - warmCount, `connect to ${n}`);
        const connected = c1.connected + c2.connected;
        t.connect = connectFigures({ ...c2, connected, failed: c1.failed + c2.failed, seconds: c1.seconds + c2.seconds, errors: { ...c1.errors, ...c2.errors } });
        await sleep(IDLE_AFTER_MS);
        const full = await memorySample(s.server);
        if (heapWarm) {
          const heapFull = await s.server.heapByConstructor();
          if (heapFull) t.extra.heap_per_connection_by_constructor = heapDiff(heapWarm, heapFull, c2.connected);
          t.notes.push('--heap-snapshot: the snapshots themselves grow the process, so the RSS figures of this run are not per-connection costs; run without it for those');
        }
        const slope = memoryFigures(warm, full, connected - c1.connected);
        const whole = memoryFigures(base, full, connected);
        t.memory = slope;
        t.extra.memory_including_first_connections = whole;
        t.extra.server_open_files = s.server.openFiles();
        t.extra.server_rss_mb = round(full.proc.rssBytes / 2 ** 20, 1);
        // Idle CPU with every socket held (a server spinning at the open-file cap shows here).
        const i0 = s.server.sample();
        await sleep(3000);
        const i1 = s.server.sample();
        t.extra.idle_cpu_cores = round((i1.cpuUs - i0.cpuUs) / 1e6 / ((i1.at - i0.at) / 1000), 3);
        if (kind === 'parley') Object.assign(t.extra, await overLimit(s, accounts.slice(n, n + extra), o));
        t.extra.alive_after = s.server.alive();
        await s.pool.all({ cmd: 'drop' });
      });
      results.push(t);
    }
    return connectionsResult(ctx, o, started, results, { connections: n, workers, warm_connections: WARM, addresses: o.addresses });
  },
};

/** What each connection added to the JS heap, by constructor: the biggest first. */
function heapDiff(a: Map<string, { count: number; bytes: number }>, b: Map<string, { count: number; bytes: number }>, conns: number): { name: string; objects_per_conn: number; bytes_per_conn: number }[] {
  const rows: { name: string; objects_per_conn: number; bytes_per_conn: number }[] = [];
  for (const [name, v] of b) {
    const w = a.get(name) ?? { count: 0, bytes: 0 };
    const bytes = (v.bytes - w.bytes) / conns;
    if (Math.abs(bytes) < 8) continue;
    rows.push({ name, objects_per_conn: round((v.count - w.count) / conns, 2), bytes_per_conn: round(bytes, 0) });
  }
  return rows.sort((x, y) => y.bytes_per_conn - x.bytes_per_conn).slice(0, 30);
}

/** Opens sockets past the limit: each must get HTTP 503 at once, and the held sockets must still answer a ping. */
async function overLimit(s: Session, extra: { token: string }[], o: ScenarioOptions): Promise<Record<string, unknown>> {
  const addresses = sourceAddresses(o.addresses);
  const statuses: Record<string, number> = {};
  const times: number[] = [];
  const wsBase = s.server.url.replace(/^http/, 'ws');
  for (let i = 0; i < extra.length; i++) {
    const t0 = monoMs();
    const status = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`${wsBase}/v1/ws?token=${encodeURIComponent(extra[i]!.token)}&format=msgpack`, { perMessageDeflate: false, localAddress: addresses[i % addresses.length], handshakeTimeout: 10_000 });
      ws.on('unexpected-response', (_req, res) => { resolve(`http_${res.statusCode}`); ws.terminate(); });
      ws.on('open', () => { resolve('accepted'); ws.terminate(); });
      ws.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    times.push(monoMs() - t0);
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
  const pings = await s.pool.all<{ ok: number; failed: number; hist: string }>({ cmd: 'ping', sample: Math.ceil(500 / s.pool.size), timeoutMs: 10_000 });
  const ping = summarize(mergeHistograms(pings.map((p) => p.hist)));
  const sorted = [...times].sort((a, b) => a - b);
  return {
    over_limit_attempts: extra.length,
    over_limit_statuses: statuses,
    over_limit_ms_median: round(sorted[Math.floor(sorted.length / 2)] ?? NaN, 2),
    over_limit_ms_max: round(sorted[sorted.length - 1] ?? NaN, 2),
    held_pings_ok: pings.reduce((a, p) => a + p.ok, 0),
    held_pings_failed: pings.reduce((a, p) => a + p.failed, 0),
    held_ping_p99_ms: ping.p99_ms,
  };
}

function connectionsResult(ctx: BenchContext, o: ScenarioOptions, started: string, results: TargetResult[], config: Record<string, unknown>): ScenarioResult {
  const get = (k: TargetKind) => results.find((r) => r.target === k);
  const parley = get('parley'), uws = get('uws'), sio = get('socketio');
  const head = (t?: TargetResult) => (t ? {
    delivered_per_s: null, p50_ms: t.connect.ready_p50_ms, p99_ms: t.connect.ready_p99_ms, p999_ms: null, server_cpu_us_per_msg: null,
    server_bytes_per_conn: t.memory?.rss_bytes_per_conn ?? null, lost: 0, duplicated: 0, errors: t.connect.failed,
  } : null);
  const checks: Check[] = [];
  if (parley) {
    const n = config.connections as number;
    const x = parley.extra;
    checks.push({ name: `holds ${n.toLocaleString('en-US')} idle authenticated connections`, value: parley.connect.connected, limit: `= ${n}`, pass: parley.connect.connected === n });
    const per = parley.memory?.rss_bytes_per_conn ?? null;
    checks.push({ name: 'server memory per idle connection < 4 KB', value: per, limit: '< 4096 bytes', pass: per == null ? null : per < 4096 });
    const st = x.over_limit_statuses as Record<string, number> | undefined;
    const all503 = !!st && Object.keys(st).length === 1 && st.http_503 === x.over_limit_attempts;
    checks.push({ name: 'past the limit: refused with HTTP 503', value: JSON.stringify(st ?? {}), limit: 'every attempt 503', pass: all503 });
    checks.push({ name: 'past the limit: refused at once', value: x.over_limit_ms_max as number, limit: '< 100 ms', pass: typeof x.over_limit_ms_max === 'number' ? x.over_limit_ms_max < 100 : null });
    checks.push({ name: 'past the limit: held sockets still answer', value: `${x.held_pings_ok} ok, ${x.held_pings_failed} failed`, limit: '0 failed', pass: (x.held_pings_failed as number) === 0 && (x.held_pings_ok as number) > 0 });
    checks.push({ name: 'idle CPU with every socket held', value: x.idle_cpu_cores as number, limit: '< 0.1 core', pass: (x.idle_cpu_cores as number) < 0.1 });
  }
  return {
    scenario: 'connections', title: 'Idle connections', started_at: started, finished_at: new Date().toISOString(), command: o.command, machine: machineInfo(ctx), config,
    targets: results,
    summary: {
      scenario: 'connections',
      basis: {
        server_bytes_per_conn: `RSS slope after a forced GC between ${WARM.toLocaleString('en-US')} and ${(config.connections as number).toLocaleString('en-US')} idle connections`,
        latency: 'p50/p99: connect → ready (Parley: welcome and inbox synced)',
      },
      ...(head(parley) ?? { delivered_per_s: null, p50_ms: null, p99_ms: null, p999_ms: null, server_cpu_us_per_msg: null, server_bytes_per_conn: null, lost: 0, duplicated: 0, errors: 0 }),
      baselines: {
        uws: head(uws), socketio: head(sio),
        ...(get('centrifugo-relay') ? { centrifugo_relay: head(get('centrifugo-relay')) } : {}),
        ...(get('centrifugo-history') ? { centrifugo_history: head(get('centrifugo-history')) } : {}),
      },
      ratios: {
        memory_vs_uws: ratio(parley?.memory?.rss_bytes_per_conn, uws?.memory?.rss_bytes_per_conn),
        memory_vs_socketio: ratio(parley?.memory?.rss_bytes_per_conn, sio?.memory?.rss_bytes_per_conn),
        ...Object.fromEntries((['centrifugo-relay', 'centrifugo-history'] as const).filter((k) => get(k))
          .map((k) => [`memory_vs_${k.replace('-', '_')}`, ratio(parley?.memory?.rss_bytes_per_conn, get(k)?.memory?.rss_bytes_per_conn)])),
      },
      checks,
    },
    notes: [],
  };
}
