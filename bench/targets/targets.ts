import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { pidListeningOn } from '../lib/proc.js';
import type { Progress } from '../lib/progress.js';
import { benchPhone, loadAccounts, saveAccounts, signIn, type Account } from '../load/accounts.js';
import type { TargetKind } from '../load/messages.js';
import { externalServer, spawnServer, type ServerProcess } from './server-process.js';
import { freePort, isCentrifugo, writeCentrifugoConfig } from './centrifugo.js';
import { NODE_FLAGS } from '../../src/node-flags.js';

/** What every scenario gets: where things are, and how the run was asked for. */
export interface BenchContext {
  /** Repository root (the directory holding dist/). */
  root: string;
  /** Data directory of the Parley node the bench starts (kept across the scenarios of one invocation). */
  dataDir: string;
  /** A running node to drive instead of starting one (`--url`). */
  url?: string;
  /** Its pid, when `--url` is given and the pid can't be found by port. */
  targetPid?: number;
  /** Start Parley with --cpu-prof, profiles into this directory. */
  profileDir?: string;
  /** Another build of the node to run (e.g. an experiment), default dist/src/main.js. */
  parleyMain: string;
  verbose: boolean;
  progress: Progress;
  /** Accounts signed in against an external node during this invocation. */
  external: Account[];
  phonePrefix: string;
  /** The last lines each server wrote to stderr (warnings and errors: the node logs at warn), per session. */
  serverLogs: Record<string, string[]>;
  /** Extra environment for the Parley node (`--parley-env K=V,K=V`), e.g. PARLEY_LMDB_FLUSH=1. */
  parleyEnv: Record<string, string>;
  /** The centrifugo binary, found (or built) before a run that names a Centrifugo target. */
  centrifugoBin?: string;
  /** HMAC secret of the Centrifugo targets' connection tokens (one per invocation). */
  jwtSecret: string;
}

export const TARGET_NAMES: Record<TargetKind, string> = {
  parley: 'Parley', uws: 'uWS relay', 'uws-acked': 'uWS relay + acks', socketio: 'Socket.IO relay',
  'centrifugo-relay': 'Centrifugo (no history)', 'centrifugo-history': 'Centrifugo (history)',
};

export interface TargetOptions {
  maxConnections?: number;
  env?: Record<string, string>;
  /** Profile this start (Parley) when the context asks for profiles. */
  profile?: boolean;
  profileName?: string;
}

export function parleyEnv(ctx: BenchContext, o: TargetOptions = {}): Record<string, string> {
  return {
    PARLEY_PORT: '0', PARLEY_HOST: '127.0.0.1', PARLEY_DATA: ctx.dataDir,
    // Thousands of users sign in from 127.0.0.1: the one-time-code limits are opened wide.
    PARLEY_OTP_COOLDOWN_MS: '0', PARLEY_OTP_IP_CODES: '1000000/s', PARLEY_OTP_KEY_CODES: '1000000/s', PARLEY_OTP_NODE_CODES: '1000000/s',
    PARLEY_OTP_IP_GUESSES: '1000000/s', PARLEY_OTP_PHONE_GUESSES: '1000000/d', PARLEY_OTP_PHONE_IP_GUESSES: '1000000',
    PARLEY_RATE_PER_S: '1000000', PARLEY_RATE_BURST: '1000000', PARLEY_LOG_LEVEL: 'warn', PARLEY_SMS: 'dev',
    PARLEY_MAX_CONNECTIONS: String(o.maxConnections ?? 19_500),
    // Thousands of clients from one address, reconnecting on purpose: per-address and per-account limits off.
    // The fan-out budget keeps its default: the group scenario shows it does not bind.
    ...Object.fromEntries(['IP_HTTP', 'IP_UPGRADE', 'USER_UPGRADE', 'FRAME_COST', 'SYNC_RESEND'].flatMap((k) => [[`PARLEY_${k}_PER_S`, '1000000'], [`PARLEY_${k}_BURST`, '1000000']])),
    ...ctx.parleyEnv,
    ...o.env,
  };
}

export async function startTarget(kind: TargetKind, ctx: BenchContext, o: TargetOptions = {}): Promise<ServerProcess> {
  if (kind === 'parley') {
    if (ctx.url) {
      const port = Number(new URL(ctx.url).port);
      return externalServer('parley', ctx.url, ctx.targetPid ?? pidListeningOn(port));
    }
    const nodeArgs = [...NODE_FLAGS, ...(ctx.profileDir && o.profile !== false
      ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`, ...(o.profileName ? [`--cpu-prof-name=${o.profileName}`] : [])]
      : [])];
    // Extra node flags for the Parley process, e.g. BENCH_PARLEY_NODE_ARGS=--perf-basic-prof for `perf record -p`.
    if (process.env.BENCH_PARLEY_NODE_ARGS) nodeArgs.push(...process.env.BENCH_PARLEY_NODE_ARGS.split(' ').filter(Boolean));
    return spawnServer({ name: 'parley', script: ctx.parleyMain, nodeArgs, env: parleyEnv(ctx, o), inspect: true, cwd: ctx.root, verbose: ctx.verbose });
  }
  if (isCentrifugo(kind)) {
    if (!ctx.centrifugoBin) throw new Error(`${kind}: no centrifugo binary (scripts/centrifugo install)`);
    // GOMAXPROCS stays Go's default (every core), as a team would run it. The port is picked free just
    // before: if something takes it in between, the server exits at once and the next attempt picks another.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const config = writeCentrifugoConfig(ctx.dataDir, kind, { port, secret: ctx.jwtSecret });
      try {
        return await spawnServer({ name: kind, script: config, command: ctx.centrifugoBin, args: ['--config', config], readyPort: port, readyPath: '/health', cwd: ctx.dataDir, verbose: ctx.verbose });
      } catch (e) {
        if (attempt >= 2 || !/exited with/.test((e as Error).message)) throw e;
      }
    }
  }
  const script = join(ctx.root, 'dist', 'bench', 'baselines', kind === 'socketio' ? 'socketio-relay.js' : 'uws-relay.js');
  const nodeArgs = ctx.profileDir && o.profile !== false && o.profileName ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`, `--cpu-prof-name=${o.profileName}`] : [];
  return spawnServer({ name: kind, script, nodeArgs, env: { BENCH_HOST: '127.0.0.1', BENCH_PORT: '0' }, inspect: true, cwd: ctx.root, verbose: ctx.verbose });
}

/**
 * `n` signed-in users. Against a node the bench starts, they are kept in the data directory and reused by
 * later scenarios (the node is restarted on the same directory, so the tokens stay valid); signing in
 * runs on a node of its own, so the measured node starts clean.
 */
export async function ensureAccounts(ctx: BenchContext, n: number): Promise<Account[]> {
  if (ctx.url) {
    if (ctx.external.length < n) {
      const phones = Array.from({ length: n - ctx.external.length }, (_, i) => benchPhone(ctx.phonePrefix, ctx.external.length + i));
      ctx.progress.start(`sign in ${phones.length} users`, 0);
      const got = await signIn(ctx.url, phones, 32, (d) => ctx.progress.update(`${d}/${phones.length}`, d / phones.length));
      ctx.external.push(...got);
      ctx.progress.done(`${phones.length} users signed in`);
    }
    return ctx.external.slice(0, n);
  }
  const file = join(ctx.dataDir, 'bench-accounts.json');
  const pool = loadAccounts(file);
  if (pool.length >= n) return pool.slice(0, n);
  const phones = Array.from({ length: n - pool.length }, (_, i) => benchPhone(ctx.phonePrefix, pool.length + i));
  const node = await startTarget('parley', ctx, { profile: false });
  try {
    ctx.progress.start(`sign in ${phones.length} users`, 0);
    const t0 = Date.now();
    const got = await signIn(node.url, phones, 48, (d) => ctx.progress.update(`${d}/${phones.length}`, d / phones.length));
    pool.push(...got);
    saveAccounts(file, pool);
    ctx.progress.done(`${phones.length} users signed in (${Math.round(phones.length / ((Date.now() - t0) / 1000))}/s)`);
  } finally {
    await node.stop();
  }
  return pool.slice(0, n);
}

export function repoRoot(): string {
  // dist/bench/targets → repository root
  const r = resolve(__dirname, '..', '..', '..');
  return existsSync(join(r, 'package.json')) ? r : process.cwd();
}
