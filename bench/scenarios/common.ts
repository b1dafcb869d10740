import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { monoMs, sleep } from '../lib/clock.js';
import { LoadPool, mergeConnect, mergeRuns, type MergedConnect, type MergedRun } from '../load/pool.js';
import { serverAcks, type ConnectResult, type RunCmd, type RunStats, type SetupCmd, type StreamSpec, type TargetKind, type VuSpec } from '../load/messages.js';
import type { ServerProcess } from '../targets/server-process.js';
import type { BenchContext } from '../targets/targets.js';
import { isCentrifugo } from '../targets/centrifugo.js';
import type { Headline, LoadPoint, MemoryFigures, ScenarioResult, TargetResult } from '../report/types.js';
import { cpuPerMessageByRole, machineBusyUs, type ProcSample } from '../lib/proc.js';

/** Options every scenario reads (from the command line). */
export interface ScenarioOptions {
  durationS?: number;
  clients?: number;
  rates?: number[];
  headlineRate: number;
  sizes?: number[];
  targets: TargetKind[];
  workers?: number;
  addresses: number;
  frameBytes: number;
  window?: number;
  maxMessages: number;
  connections?: number;
  missed?: number;
  warmupS?: number;
  skipSaturation?: boolean;
  heapSnapshot?: boolean;
  /** cluster: Parley nodes, and nats-servers (1 or 3). */
  nodes?: number;
  natsServers?: number;
  /** Before each load point, wait up to this many seconds for other processes to leave the CPU idle. */
  quietWaitS?: number;
  command: string;
}

/** A scenario can't run on this machine (a server it needs is not there): `all` skips it, alone it fails. */
export class ScenarioUnavailable extends Error {}

export interface Scenario {
  name: string;
  title: string;
  run(ctx: BenchContext, o: ScenarioOptions): Promise<ScenarioResult>;
}

/** Source addresses for client sockets: 127.0.0.2 … so a single address's ~28,000 ephemeral ports never run out. */
export function sourceAddresses(n: number): string[] {
  return Array.from({ length: Math.max(1, n) }, (_, i) => `127.0.0.${2 + i}`);
}

/** Splits VUs and streams over `workers` so that every stream's users live in one worker. */
export function partition(vus: VuSpec[], streams: StreamSpec[], workers: number, workerOf: (s: StreamSpec, i: number) => number): { vus: VuSpec[]; streams: StreamSpec[] }[] {
  const parts = Array.from({ length: workers }, () => ({ vus: new Map<number, VuSpec>(), streams: [] as StreamSpec[] }));
  const byIdx = new Map(vus.map((v) => [v.idx, v]));
  const home = new Map<number, number>();
  streams.forEach((s, i) => {
    const w = workerOf(s, i) % workers;
    parts[w]!.streams.push(s);
    for (const u of [...s.senders, ...s.recipients]) {
      const prior = home.get(u);
      if (prior !== undefined && prior !== w) throw new Error(`user ${u} is in streams of two workers`);
      home.set(u, w);
      parts[w]!.vus.set(u, byIdx.get(u)!);
    }
  });
  // Users in no stream (idle connections) are spread evenly.
  let rr = 0;
  for (const v of vus) if (!home.has(v.idx)) { parts[rr % workers]!.vus.set(v.idx, v); rr++; }
  return parts.map((p) => ({ vus: [...p.vus.values()], streams: p.streams }));
}

export interface Session {
  server: ServerProcess;
  pool: LoadPool;
  ctx: BenchContext;
  kind: TargetKind;
  label: string;
  /** Sending streams per load worker: each worker's share of an offered rate. */
  weights?: number[];
}

export async function setupPool(s: Session, parts: { vus: VuSpec[]; streams: StreamSpec[] }[], o: ScenarioOptions, connectConcurrency = 200): Promise<void> {
  const addresses = sourceAddresses(o.addresses);
  s.weights = parts.map((p) => p.streams.filter((st) => st.senders.length > 0).length);
  await s.pool.all((i) => ({
    cmd: 'setup', kind: s.kind, url: s.server.url, vus: parts[i]!.vus, streams: parts[i]!.streams, addresses,
    frameBytes: o.frameBytes, connectConcurrency, connectRetries: 2, jwtSecret: s.ctx.jwtSecret,
  } satisfies SetupCmd));
}

/** Connects (a subset of) the VUs, with a progress bar; returns the merged result and the wall time. */
export async function connectAll(s: Session, total: number, label: string, vusByWorker?: number[][], timeoutMs = 180_000): Promise<MergedConnect & { seconds: number }> {
  const p = s.ctx.progress;
  p.start(`${s.label}: ${label}`, 0);
  const base = s.pool.progress().connected;
  const timer = setInterval(() => {
    const now = s.pool.progress().connected - base;
    p.update(`${now}/${total} connected`, total ? now / total : 1);
  }, 200);
  const t0 = monoMs();
  try {
    const rs = await s.pool.all<ConnectResult>((i) => ({ cmd: 'connect', timeoutMs, ...(vusByWorker ? { vus: vusByWorker[i] } : {}) }));
    const m = mergeConnect(rs);
    const seconds = (monoMs() - t0) / 1000;
    p.done(`${m.connected}/${total} connected in ${seconds.toFixed(1)} s${m.failed ? `, ${m.failed} failed ${JSON.stringify(m.errors)}` : ''}`);
    return { ...m, seconds };
  } finally {
    clearInterval(timer);
  }
}

/** Server memory after a forced GC (when the process has an inspector), and its live heap. */
export async function memorySample(server: ServerProcess): Promise<{ proc: ProcSample; heap: number | undefined }> {
  await server.gc().catch(() => false);
  return { proc: server.sample(), heap: await server.heapUsed().catch(() => undefined) };
}

export function memoryFigures(before: { proc: ProcSample; heap: number | undefined }, after: { proc: ProcSample; heap: number | undefined }, connections: number): MemoryFigures | null {
  if (!connections || !Number.isFinite(before.proc.rssBytes)) return null;
  const per = (a: number, b: number) => Math.round((a - b) / connections);
  return {
    connections,
    rss_bytes_per_conn: per(after.proc.rssBytes, before.proc.rssBytes),
    anon_bytes_per_conn: per(after.proc.rssAnonBytes, before.proc.rssAnonBytes),
    heap_bytes_per_conn: before.heap !== undefined && after.heap !== undefined ? per(after.heap, before.heap) : null,
    rss_before: before.proc.rssBytes,
    rss_after: after.proc.rssBytes,
  };
}

export interface PointSpec {
  label: string;
  mode: 'rate' | 'closed';
  ratePerS?: number;
  window?: number;
  durationS: number;
  fanout: number;
  drainS?: number;
  /** Warm-up runs are not recorded in the results. */
  gate?: 'delivery' | 'ack';
  perStream?: number;
  awaitDelivery?: boolean;
}

/** CPU other processes use now (cores), over `ms`: the machine minus the server, the load workers and us. */
async function othersBusy(s: Session, ms: number): Promise<number> {
  const m0 = machineBusyUs(), c0 = s.server.sample().cpuUs, g0 = s.pool.cpuUs(), u0 = process.cpuUsage();
  await sleep(ms);
  const m1 = machineBusyUs(), c1 = s.server.sample().cpuUs, g1 = s.pool.cpuUs(), u1 = process.cpuUsage(u0);
  return Math.max(0, (m1.busyUs - m0.busyUs) - (c1 - c0) - (g1 - g0) - (u1.user + u1.system)) / (ms * 1000);
}

/** Waits (bounded) until the rest of the machine is quiet, so that a load point isn't measured under someone else's load. */
async function waitQuiet(s: Session, budgetS: number): Promise<number> {
  const t0 = monoMs();
  while (monoMs() - t0 < budgetS * 1000) {
    const busy = await othersBusy(s, 700);
    if (busy < 0.15) break;
    s.ctx.progress.update(`waiting for a quiet machine (others use ${busy.toFixed(2)} cores)`);
    await sleep(1300);
  }
  return (monoMs() - t0) / 1000;
}

/** Runs one load point on every worker at once and measures the server over it. */
export async function runPoint(s: Session, spec: PointSpec, o: ScenarioOptions): Promise<{ point: LoadPoint; merged: MergedRun }> {
  const p = s.ctx.progress;
  if (o.quietWaitS) {
    p.start(`${s.label}: ${spec.label}`, 0);
    await waitQuiet(s, o.quietWaitS);
  }
  const durationMs = spec.durationS * 1000;
  p.start(`${s.label}: ${spec.label}`, durationMs);
  const startAt = monoMs() + 300;
  const cpu0 = s.server.sample();
  const parts0 = s.server.sampleParts?.();
  const gen0 = s.pool.cpuUs();
  const self0 = process.cpuUsage();
  const m0 = machineBusyUs();
  const base = s.pool.progress();
  let last = { t: monoMs(), d: base.delivered };
  let rateShown = 0;
  const timer = setInterval(() => {
    const pr = s.pool.progress();
    const now = monoMs();
    if (now - last.t >= 900) { rateShown = ((pr.delivered - last.d) * 1000) / (now - last.t); last = { t: now, d: pr.delivered }; }
    const phase = now > startAt + durationMs ? 'draining' : '';
    p.update(`sent ${pr.sent} delivered ${pr.delivered} (${Math.round(rateShown)}/s) errors ${pr.errors} ${phase}`, Math.min(1, (now - startAt) / durationMs));
  }, 200);
  let rs: RunStats[];
  try {
    const weights = s.weights ?? Array.from({ length: s.pool.size }, () => 1);
    const total = weights.reduce((x, y) => x + y, 0) || 1;
    rs = await s.pool.all<RunStats>((i) => ({
      cmd: 'run', mode: spec.mode, ratePerS: ((spec.ratePerS ?? 0) * weights[i]!) / total, window: spec.window ?? 1, gate: spec.gate ?? 'delivery',
      perStream: spec.perStream ?? 0, startAt, durationMs, maxMessages: Math.ceil((o.maxMessages * weights[i]!) / total),
      drainMs: (spec.drainS ?? 120) * 1000, stallMs: 10_000, awaitDelivery: spec.awaitDelivery ?? true, recordFrom: startAt,
    } satisfies RunCmd));
  } finally {
    clearInterval(timer);
  }
  const cpu1 = s.server.sample();
  const parts1 = s.server.sampleParts?.();
  const gen1 = s.pool.cpuUs();
  const self1 = process.cpuUsage(self0);
  const m1 = machineBusyUs();
  const m = mergeRuns(rs);
  const wallS = (cpu1.at - cpu0.at) / 1000;
  const otherUs = (m1.busyUs - m0.busyUs) - (cpu1.cpuUs - cpu0.cpuUs) - (gen1 - gen0) - (self1.user + self1.system);
  const windowS = m.windowMs / 1000 || spec.durationS;
  const point: LoadPoint = {
    label: spec.label, mode: spec.mode, offered_per_s: spec.mode === 'rate' ? spec.ratePerS! : null, duration_s: round(windowS, 2), fanout: spec.fanout,
    sent: m.sent, acked: m.acked, delivered: m.delivered,
    delivered_per_s: Math.round(m.deliveredInWindow / windowS),
    p50_ms: m.latency.p50_ms, p90_ms: m.latency.p90_ms, p99_ms: m.latency.p99_ms, p999_ms: m.latency.p999_ms, max_ms: m.latency.max_ms,
    ack_p50_ms: serverAcks(s.kind) ? m.ack.p50_ms : null, ack_p99_ms: serverAcks(s.kind) ? m.ack.p99_ms : null,
    server_cpu_us_per_msg: m.delivered ? round((cpu1.cpuUs - cpu0.cpuUs) / m.delivered, 2) : NaN,
    server_cpu_cores: round((cpu1.cpuUs - cpu0.cpuUs) / 1e6 / wallS, 3),
    // Node servers only: a Go server's work is spread over every thread.
    ...(cpu0.mainThread && cpu1.mainThread && !isCentrifugo(s.kind) ? { server_main_thread: {
      user_cores: round((cpu1.mainThread.userUs - cpu0.mainThread.userUs) / 1e6 / wallS, 2),
      sys_cores: round((cpu1.mainThread.sysUs - cpu0.mainThread.sysUs) / 1e6 / wallS, 2),
    } } : {}),
    ...(parts0 && parts1 ? { server_cpu_parts_us_per_msg: cpuPerMessageByRole(parts0, parts1, m.delivered) } : {}),
    loadgen_cpu_cores: round((gen1 - gen0) / 1e6 / wallS, 3),
    other_cpu_cores: round(Math.max(0, otherUs) / 1e6 / wallS, 2),
    steal_cpu_cores: round((m1.stealUs - m0.stealUs) / 1e6 / wallS, 2),
    lost: m.drained || m.stalled ? m.lost : 0, pending: m.drained || m.stalled ? 0 : m.lost, duplicated: m.duplicated, ...(m.redelivered ? { redelivered: m.redelivered } : {}), errors: m.errorCount, error_kinds: m.errors,
    receipts: m.receipts, receipts_missing: m.receiptsMissing, drained: m.drained, max_issue_lag_ms: m.maxIssueLagMs,
  };
  if (point.other_cpu_cores > 0.25) p.log(`  note: other processes on this machine used ${point.other_cpu_cores} cores during this run: figures are disturbed`);
  if (spec.awaitDelivery === false) {
    p.done(`${fmt(point.acked)} of ${fmt(point.sent)} acked by the server (recipients offline), errors ${point.errors}`);
    return { point: { ...point, lost: 0, delivered_per_s: 0 }, merged: m };
  }
  p.done(`${fmt(point.delivered_per_s)} deliveries/s, p50 ${point.p50_ms} ms, p99 ${point.p99_ms} ms, p99.9 ${point.p999_ms} ms, ${point.server_cpu_us_per_msg} µs CPU/msg, lost ${point.lost}, dup ${point.duplicated}, errors ${point.errors}${point.drained ? '' : point.pending ? ` (${point.pending} still in flight at the drain cap)` : ' (stalled: not drained)'}`);
  return { point, merged: m };
}

export function emptyTarget(kind: TargetKind, name: string, clients: number): TargetResult {
  return { target: kind, name, clients, connect: { connected: 0, failed: 0, seconds: 0, per_s: 0, ready_p50_ms: NaN, ready_p99_ms: NaN, errors: {} }, memory: null, points: [], extra: {}, notes: [] };
}

export function connectFigures(m: MergedConnect & { seconds: number }): TargetResult['connect'] {
  return { connected: m.connected, failed: m.failed, seconds: round(m.seconds, 2), per_s: Math.round(m.connected / Math.max(0.001, m.seconds)), ready_p50_ms: m.ready.p50_ms, ready_p99_ms: m.ready.p99_ms, errors: m.errors };
}

export function headline(point: LoadPoint | undefined, memory: MemoryFigures | null, t?: TargetResult, pointsForTotals?: LoadPoint[]): Headline {
  const all = pointsForTotals ?? t?.points ?? [];
  return {
    delivered_per_s: point?.delivered_per_s ?? null,
    p50_ms: point?.p50_ms ?? null,
    p99_ms: point?.p99_ms ?? null,
    p999_ms: point?.p999_ms ?? null,
    server_cpu_us_per_msg: point?.server_cpu_us_per_msg ?? null,
    server_bytes_per_conn: memory ? memory.rss_bytes_per_conn : null,
    lost: all.reduce((a, p) => a + p.lost, 0),
    duplicated: all.reduce((a, p) => a + p.duplicated, 0),
    errors: all.reduce((a, p) => a + p.errors, 0),
  };
}

export function machineInfo(ctx: BenchContext): Record<string, unknown> {
  const git = (args: string[]) => { try { return execFileSync('git', args, { cwd: ctx.root, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { return ''; } };
  const version = (pkg: string) => { try { return JSON.parse(readFileSync(join(ctx.root, 'node_modules', pkg, 'package.json'), 'utf8')).version as string; } catch { return 'unknown'; } };
  return {
    cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model ?? 'unknown', memory_gib: round(os.totalmem() / 2 ** 30, 1),
    node: process.version, platform: `${os.type()} ${os.release()}`,
    uws: version('uWebSockets.js'), socketio: version('socket.io'), ws: version('ws'),
    ...(ctx.centrifugoBin ? { centrifugo: (() => { try { return execFileSync(ctx.centrifugoBin!, ['version']).toString().trim(); } catch { return 'unknown'; } })() } : {}),
    commit: git(['rev-parse', '--short', 'HEAD']) || 'unknown',
    src_uncommitted_files: git(['status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).length,
    parley_main: ctx.parleyMain,
    parley_env: { PARLEY_LMDB_FLUSH: '0 (default: commits reach the OS before the ack, fsync every second)', ...ctx.parleyEnv },
    note: 'load generator and server share the same cores: compare figures within one run only',
  };
}

export const round = (x: number, d = 1): number => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);
export const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n));
export const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a != null && b != null && Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? round(a / b, 2) : null;

/**
 * Starts every target and its own load pool at once, so that load points can be interleaved (target A,
 * B, C at one rate, then the next rate): noise from other work on the machine then hits all targets alike.
 * Always stops everything.
 */
export async function withSessions<T>(ctx: BenchContext, kinds: TargetKind[], label: string, workers: number, start: (k: TargetKind, i: number) => Promise<ServerProcess>, f: (ss: Session[]) => Promise<T>): Promise<T> {
  const sessions: Session[] = [];
  try {
    for (const [i, kind] of kinds.entries()) {
      const server = await start(kind, i);
      let pool: LoadPool;
      try { pool = await LoadPool.start(workers); } catch (e) { await server.stop(); throw e; }
      sessions.push({ server, pool, ctx, kind, label: `${label} ${server.name}` });
    }
    return await f(sessions);
  } finally {
    for (const s of sessions) {
      await s.pool.close();
      if (s.server.logs.length) ctx.serverLogs[s.label] = s.server.logs.slice(-30);
      const code = await s.server.stop();
      if (code !== 0 && code !== null && s.kind === 'parley') ctx.progress.log(`${s.label}: server exited with ${code}`);
    }
    await sleep(200);
  }
}

/** Starts the target and a load pool; always stops both. */
export async function withSession<T>(ctx: BenchContext, kind: TargetKind, label: string, workers: number, start: () => Promise<ServerProcess>, f: (s: Session) => Promise<T>): Promise<T> {
  const server = await start();
  const pool = await LoadPool.start(workers);
  try {
    return await f({ server, pool, ctx, kind, label });
  } finally {
    await pool.close();
    if (server.logs.length) ctx.serverLogs[label] = server.logs.slice(-30);
    const code = await server.stop();
    if (code !== 0 && code !== null && kind === 'parley') ctx.progress.log(`${label}: server exited with ${code}`);
    await sleep(200);
  }
}
