/**
 * `npm run bench -- <scenario> [options]`: measures Parley against a raw uWebSockets.js relay and a Socket.IO
 * relay, side by side, on the same load generator. Results go to bench/results/ (JSON, Markdown, SVG) and
 * docs/capacity.md is regenerated from them. See bench/README.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Progress } from './lib/progress.js';
import { TARGET_KINDS, type TargetKind } from './load/messages.js';
import { randomBytes } from 'node:crypto';
import { ensureCentrifugo, isCentrifugo } from './targets/centrifugo.js';
import { repoRoot, type BenchContext } from './targets/targets.js';
import { interruptCleanups, running } from './targets/server-process.js';
import { ScenarioUnavailable, type Scenario, type ScenarioOptions } from './scenarios/common.js';
import { relay } from './scenarios/relay.js';
import { group } from './scenarios/group.js';
import { connections } from './scenarios/connections.js';
import { reconnect } from './scenarios/reconnect.js';
import { cluster } from './scenarios/cluster.js';
import { writeScenarioReport, writeIndex } from './report/write.js';
import { writeCapacity } from './report/capacity.js';
import { summarizeProfiles } from './report/profile.js';
import type { ScenarioResult, Summary } from './report/types.js';

const SCENARIOS: Record<string, Scenario> = { relay, group, connections, reconnect, cluster };
const ORDER = ['relay', 'group', 'connections', 'reconnect', 'cluster'];

const HELP = `usage: npm run bench -- <scenario> [options]

scenarios
  relay         1:1 chat at fixed offered rates and at saturation (full Parley path: durable store, ack, delivery, receipt)
  group         fan-out to groups of 10, 100 and 1000 members
  connections   idle authenticated connections held, memory per connection, refusal past the connection limit
  reconnect     10,000 clients drop, miss messages, reconnect and sync
  cluster       the relay over 3 Parley nodes + 3 nats-servers (Scylla store), users and conversations on
                different nodes, next to one node on the same store: CPU per message of every process
  all           every scenario above, one after the other (cluster only when a CQL server answers)
  capacity      only regenerate docs/capacity.md (and bench/results/README.md) from bench/results/*.json

options
  --duration S          seconds of each measured run (default: relay 5, group 5)
  --clients N           virtual users (relay 1000, group 2000, reconnect 10000)
  --rates a,b,c         fixed offered rates, msgs/s (relay; default 1000,5000,10000,20000; cluster 500,1000)
  --headline-rate R     the rate whose latency/CPU is the headline (default 10000; cluster: the lowest rate)
  --sizes a,b,c         group sizes (default 10,100,1000)
  --window N            messages in flight per stream in closed-loop runs (relay 2, group 4)
  --connections N       idle connections to hold (default 19000)
  --missed N            messages each reconnecting client misses (default 3)
  --targets list        parley,uws,uws-acked,socketio (the default; uws-acked only in relay), and on request
                        centrifugo-relay,centrifugo-history (Centrifugo v6 without / with history; relay, group,
                        connections; built once by scripts/centrifugo, needs Go); --no-baselines = parley only
  --workers N           load-generator processes (default 2; connections: one per 7,000 sockets)
  --addresses N         client source addresses 127.0.0.2… (default 8)
  --frame-bytes N       client frame size (default 100)
  --max-messages N      cap on messages per run (default 3,000,000)
  --warmup S            warm-up seconds before the measured runs (default 3)
  --no-saturation       relay: skip the closed-loop saturation run
  --heap-snapshot       connections: diff two heap snapshots and list what each connection allocates
  --nodes N             cluster: Parley nodes (default 3; 2 puts each conversation on one of its users' nodes)
  --nats-servers N      cluster: nats-servers, 3 (clustered, the default) or 1
  --quiet-wait S        before each load point wait up to S seconds for other processes to go quiet (shared machines)
  --url URL             drive a running Parley node instead of starting one (its pid is found by port)
  --target-pid PID      pid of that node, when it can't be found by port
  --data DIR            Parley data directory to keep (accounts are reused across invocations)
  --parley-main FILE    another build of the node to run (default dist/src/main.js)
  --parley-env K=V,…    extra environment for the Parley node (e.g. PARLEY_LMDB_FLUSH=1: sync every commit)
  --profile             run Parley with --cpu-prof; the top functions go to bench/results/profile-<scenario>.md
  --out DIR             results directory (default bench/results)
  --json FILE           also write the run's summary (scenario, delivered_per_s, p50_ms, p99_ms, p999_ms,
                        server_cpu_us_per_msg, server_bytes_per_conn, lost, duplicated, baselines.{uws,socketio})
  --no-capacity         don't regenerate docs/capacity.md
  --verbose             echo the servers' logs
  --quiet               no progress bar
`;

interface Args { _: string[]; [k: string]: string | boolean | string[] }

function parseArgs(argv: string[]): Args {
  const out: Args = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') { out.help = true; continue; }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const key = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (eq > 0) out[key] = a.slice(eq + 1);
      else if (key.startsWith('no-')) out[key] = true;
      else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) out[key] = argv[++i]!;
      else out[key] = true;
    } else {
      out._.push(a);
    }
  }
  return out;
}

const KNOWN = new Set(['help', 'duration', 'clients', 'rates', 'headline-rate', 'sizes', 'window', 'connections', 'missed', 'targets', 'no-baselines',
  'workers', 'addresses', 'frame-bytes', 'max-messages', 'warmup', 'url', 'target-pid', 'data', 'parley-main', 'profile', 'out', 'json', 'no-capacity',
  'verbose', 'quiet', 'no-saturation', 'heap-snapshot', 'quiet-wait', 'parley-env', 'nodes', 'nats-servers']);

function num(a: Args, k: string): number | undefined {
  const v = a[k];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} must be a non-negative number`);
  return n;
}
function list(a: Args, k: string): number[] | undefined {
  const v = a[k];
  if (v === undefined) return undefined;
  const l = String(v).split(',').map((x) => Number(x.trim())).filter((x) => Number.isFinite(x) && x > 0);
  if (!l.length) throw new Error(`--${k} must be a comma-separated list of numbers`);
  return l;
}

async function main(): Promise<number> {
  const a = parseArgs(process.argv.slice(2));
  if (a.help || a._.length === 0) { process.stdout.write(HELP); return a.help ? 0 : 2; }
  for (const k of Object.keys(a)) if (k !== '_' && !KNOWN.has(k)) throw new Error(`unknown option --${k} (see --help)`);
  const which = a._[0]!;
  const root = repoRoot();
  const out = resolve(String(a.out ?? join(root, 'bench', 'results')));
  mkdirSync(out, { recursive: true });

  if (which === 'capacity') {
    const file = writeCapacity(root, out);
    writeIndex(out);
    process.stderr.write(`wrote ${file}\n`);
    return 0;
  }
  const names = which === 'all' ? ORDER : [which];
  for (const n of names) if (!SCENARIOS[n]) throw new Error(`unknown scenario ${n} (see --help)`);

  const targets = (a['no-baselines'] ? ['parley'] : String(a.targets ?? 'parley,uws,uws-acked,socketio').split(',').map((s) => s.trim())) as TargetKind[];
  for (const t of targets) if (!TARGET_KINDS.includes(t)) throw new Error(`unknown target ${t} (${TARGET_KINDS.join(', ')})`);
  const progress = new Progress(Boolean(a.quiet));
  // Centrifugo only when asked for: found (or built, when Go is here) before anything starts, or a clear error.
  const centrifugoBin = targets.some(isCentrifugo) ? ensureCentrifugo(root, (s) => progress.log(s)) : undefined;
  const keep = typeof a.data === 'string';
  const dataDir = keep ? resolve(String(a.data)) : mkdtempSync(join(tmpdir(), 'parley-bench-'));
  mkdirSync(dataDir, { recursive: true });
  const profileDir = a.profile ? join(root, 'bench', '.cache', 'profiles', new Date().toISOString().replace(/[:.]/g, '-')) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const ctx: BenchContext = {
    root, dataDir, url: a.url ? String(a.url).replace(/\/$/, '') : undefined, targetPid: num(a, 'target-pid'), profileDir,
    parleyMain: resolve(String(a['parley-main'] ?? join(root, 'dist', 'src', 'main.js'))), verbose: Boolean(a.verbose), progress,
    external: [], phonePrefix: a.url ? String(1000 + Math.floor(Math.random() * 9000)) : '5550', serverLogs: {},
    parleyEnv: Object.fromEntries(String(a['parley-env'] ?? '').split(',').filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')).trim(), kv.slice(kv.indexOf('=') + 1).trim()])),
    centrifugoBin, jwtSecret: randomBytes(32).toString('hex'),
  };
  if (!existsSync(ctx.parleyMain)) throw new Error(`${ctx.parleyMain} not found: build first (npm run build)`);
  const o: ScenarioOptions = {
    durationS: num(a, 'duration'), clients: num(a, 'clients'), rates: list(a, 'rates'), headlineRate: num(a, 'headline-rate') ?? 10_000,
    sizes: list(a, 'sizes'), targets, workers: num(a, 'workers'), addresses: num(a, 'addresses') ?? 8, frameBytes: num(a, 'frame-bytes') ?? 100,
    window: num(a, 'window'), maxMessages: num(a, 'max-messages') ?? 3_000_000, connections: num(a, 'connections'), missed: num(a, 'missed'),
    warmupS: num(a, 'warmup'), nodes: num(a, 'nodes'), natsServers: num(a, 'nats-servers'), skipSaturation: Boolean(a['no-saturation']), heapSnapshot: Boolean(a['heap-snapshot']), quietWaitS: num(a, 'quiet-wait'), command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
  };

  const summaries: Record<string, Summary> = {};
  let failed = false;
  try {
    for (const n of names) {
      const sc = SCENARIOS[n]!;
      progress.log(`\n== ${sc.title} (${n}) ==`);
      let r: ScenarioResult;
      try {
        // The acked uWS variant is a 1:1 protocol: the other scenarios run the two plain baselines. Centrifugo
        // runs where its protocol has the scenario's meaning (reconnect is Parley's inbox sync).
        r = await sc.run(ctx, { ...o, targets: o.targets.filter((t) => (t !== 'uws-acked' || n === 'relay') && (!isCentrifugo(t) || n !== 'reconnect')) });
      } catch (e) {
        // `all` on a machine without what a scenario needs (the cluster's CQL server): said, and skipped.
        if (e instanceof ScenarioUnavailable && names.length > 1) { progress.log(`${n} skipped: ${e.message}`); continue; }
        failed = true;
        progress.log(`${n} failed: ${(e as Error)?.stack ?? e}`);
        continue;
      }
      if (profileDir) r.profile = summarizeProfiles(profileDir, n, out);
      if (Object.keys(ctx.serverLogs).length) r.server_logs = ctx.serverLogs;
      ctx.serverLogs = {};
      const files = writeScenarioReport(out, r);
      summaries[n] = r.summary;
      progress.log(`results: ${files.join(', ')}`);
      for (const c of r.summary.checks) progress.log(`  ${c.pass === true ? 'PASS' : c.pass === false ? 'MISS' : ' n/a'}  ${c.name}: ${c.value ?? 'n/a'} (${c.limit})${c.note ? ` — ${c.note}` : ''}`);
      if (r.summary.lost || r.summary.duplicated) failed = true;
    }
  } finally {
    if (!keep && !ctx.url) rmSync(dataDir, { recursive: true, force: true });
  }
  writeIndex(out);
  if (!a['no-capacity']) progress.log(`capacity model: ${writeCapacity(root, out)}`);
  if (a.json) {
    const file = resolve(String(a.json));
    const body = names.length === 1 ? summaries[names[0]!] ?? { scenario: names[0], error: 'no result' } : { ...(summaries.relay ?? {}), scenario: 'all', scenarios: summaries };
    writeFileSync(file, JSON.stringify(body, null, 2) + '\n');
    progress.log(`summary: ${file}`);
  }
  return failed ? 1 : 0;
}

// Interrupted: stop the servers this run started (load workers exit with their IPC channel), then undo
// what else it set up (a cluster's NATS servers, its keyspaces), bounded.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping ${running.size} server(s)\n`);
    let finishing = false;
    const finish = () => {
      if (finishing) return;
      finishing = true;
      for (const p of running) p.kill('SIGKILL');
      const cleanups = [...interruptCleanups].map((f) => f().catch(() => undefined));
      void Promise.race([Promise.all(cleanups), new Promise((r) => setTimeout(r, 10_000).unref())]).then(() => process.exit(130));
    };
    for (const p of running) p.kill('SIGTERM');
    setTimeout(finish, 3000).unref();
    if (running.size === 0) finish();
    else for (const p of running) p.once('exit', () => { if (running.size === 0) finish(); });
  });
}

main().then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(`bench: ${(e as Error)?.message ?? e}\n`); process.exitCode = 2; });
