import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_FLAGS } from '../../src/node-flags.js';
import { scratchKeyspace } from '../../src/store/scylla/scylla-store.js';
import type { ClusterStatus } from '../../src/cluster/cluster.js';
import { startNatsCluster, type NatsCluster } from '../../test/helpers/nats.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv } from '../../test/helpers/cql.js';
import { sleep } from '../lib/clock.js';
import { signIn, benchPhone, type Account } from '../load/accounts.js';
import { ringShares, type ClusterNodeRef } from '../scenarios/cluster-placement.js';
import { parleyEnv, type BenchContext } from './targets.js';
import { interruptCleanups, spawnServer, type ServerProcess } from './server-process.js';
import { serverGroup } from './server-group.js';

const ADMIN_KEY = randomBytes(16).toString('hex');

/** A Parley target on the Scylla store, in a keyspace of its own, with users signed in on it. */
export interface ScyllaTarget {
  server: ServerProcess;
  accounts: Account[];
  /** The cluster's nodes (one entry for a single node). */
  nodes: ClusterNodeRef[];
  /** PARLEY_SHARDS of the cluster (0 for a single node). */
  shards: number;
  /** Stops every process and drops the keyspace. */
  close(): Promise<void>;
}

function nodeArgs(ctx: BenchContext, profileName: string): string[] {
  const args = [...NODE_FLAGS, ...(ctx.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`, `--cpu-prof-name=${profileName}`] : [])];
  if (process.env.BENCH_PARLEY_NODE_ARGS) args.push(...process.env.BENCH_PARLEY_NODE_ARGS.split(' ').filter(Boolean));
  return args;
}

function startNode(ctx: BenchContext, name: string, env: Record<string, string>, profileName: string): Promise<ServerProcess> {
  const dataDir = join(ctx.dataDir, name.replace(/\W+/g, '-'));
  mkdirSync(dataDir, { recursive: true });
  return spawnServer({
    name, script: ctx.parleyMain, nodeArgs: nodeArgs(ctx, profileName), inspect: true, cwd: ctx.root, verbose: ctx.verbose,
    env: { ...parleyEnv(ctx), PARLEY_DATA: dataDir, PARLEY_ADMIN_KEY: ADMIN_KEY, ...env, ...ctx.parleyEnv },
  });
}

async function clusterStatus(url: string): Promise<ClusterStatus | undefined> {
  const r = await fetch(`${url}/v1/admin/cluster`, { headers: { 'x-admin-key': ADMIN_KEY }, signal: AbortSignal.timeout(2000) }).catch(() => undefined);
  return r?.ok ? ((await r.json()) as ClusterStatus) : undefined;
}

/**
 * Until every node sees all `n` members and the lease table is what the ring gives each of them (so
 * conversations and users are owned where `placeAcrossNodes` expects).
 */
async function settled(urls: string[], timeoutMs: number): Promise<ClusterStatus[]> {
  const until = Date.now() + timeoutMs;
  let last: (ClusterStatus | undefined)[] = [];
  for (;;) {
    last = await Promise.all(urls.map(clusterStatus));
    const ok = last.every((s) => {
      if (!s || s.members.length !== urls.length || s.shards.unowned !== 0) return false;
      const want = ringShares(s.members, s.shards.total);
      return s.members.every((m) => s.shards.byNode[m] === want[m]);
    });
    if (ok) return last as ClusterStatus[];
    if (Date.now() > until) throw new Error(`the cluster did not settle on ${urls.length} members: ${JSON.stringify(last.map((s) => s && { node: s.node, members: s.members, shards: s.shards }))}`);
    await sleep(200);
  }
}

async function signInAll(ctx: BenchContext, url: string, n: number, label: string): Promise<Account[]> {
  const phones = Array.from({ length: n }, (_, i) => benchPhone(ctx.phonePrefix, i));
  ctx.progress.start(`${label}: sign in ${n} users`, 0);
  const t0 = Date.now();
  const got = await signIn(url, phones, 48, (d) => ctx.progress.update(`${d}/${n}`, d / n));
  ctx.progress.done(`${label}: ${n} users signed in (${Math.round(n / ((Date.now() - t0) / 1000))}/s)`);
  return got;
}

/** A fresh keyspace name and a way to drop it (the node that starts first creates it). */
async function freshKeyspace(prefix: string): Promise<{ keyspace: string; drop(): Promise<void> }> {
  const admin = await cqlAdmin();
  const keyspace = scratchKeyspace(prefix);
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    await dropKeyspace(admin, keyspace);
    await admin.shutdown().catch(() => undefined);
  };
  return { keyspace, drop };
}

/** One node on the Scylla store, no NATS: the single-node figure a cluster is compared with. */
export async function startScyllaNode(ctx: BenchContext, users: number): Promise<ScyllaTarget> {
  const ks = await freshKeyspace('parley_bench');
  interruptCleanups.add(ks.drop);
  let server: ServerProcess | undefined;
  try {
    server = await startNode(ctx, 'parley-1-node', { ...scyllaNodeEnv(ks.keyspace), PARLEY_SECRET: randomBytes(32).toString('hex') }, 'cluster-parley-single.cpuprofile');
    const accounts = await signInAll(ctx, server.url, users, '1 node');
    const s = server;
    return {
      server: s, accounts, nodes: [{ name: 'single', url: s.url }], shards: 0,
      async close() { await s.stop(); await ks.drop(); interruptCleanups.delete(ks.drop); },
    };
  } catch (e) {
    await server?.stop();
    await ks.drop();
    interruptCleanups.delete(ks.drop);
    throw e;
  }
}

/**
 * `nodes` Parley nodes on 127.0.0.1 joined in a cluster over `natsServers` nats-servers of their own
 * (JetStream, clustered when more than one; free ports, a temporary directory), all on one fresh keyspace.
 * The target's CPU is every Parley process and every nats-server (`sampleParts`: parley, nats).
 */
export async function startParleyCluster(ctx: BenchContext, o: { nodes: number; natsServers: number; users: number }): Promise<ScyllaTarget> {
  const ks = await freshKeyspace('parley_bench');
  let nats: NatsCluster | undefined;
  const started: ServerProcess[] = [];
  const stopAll = async () => {
    await Promise.all(started.map((n) => n.stop()));
    await nats?.stop();
  };
  const cleanup = async () => { await stopAll(); await ks.drop(); };
  interruptCleanups.add(cleanup);
  try {
    ctx.progress.start(`cluster: ${o.natsServers} nats-server(s)`, 0);
    nats = await startNatsCluster(o.natsServers);
    ctx.progress.done(`cluster: ${o.natsServers} nats-server(s) up`);
    const env = {
      ...scyllaNodeEnv(ks.keyspace), PARLEY_NATS_URLS: nats.urls.join(','), PARLEY_NATS_REPLICAS: String(o.natsServers === 1 ? 1 : 3),
      PARLEY_SECRET: randomBytes(32).toString('hex'),
      // Failure detection slower than the defaults (2.5 s, 4 s leases): on 2 cores shared by 6 servers, the
      // load generator and the CQL server, a starved event loop otherwise lapses leases and moves shards
      // mid-run. What a message costs doesn't change (renewals stay once a second); --parley-env overrides.
      PARLEY_CLUSTER_DOWN_AFTER_MS: '10000', PARLEY_CLUSTER_LEASE_MS: '12000',
    };
    ctx.progress.start(`cluster: ${o.nodes} Parley nodes`, 0);
    // The first node creates the keyspace and its schema; the others join it.
    started.push(await startNode(ctx, 'parley-cluster-node-1', env, 'cluster-parley-node-1.cpuprofile'));
    started.push(...await Promise.all(Array.from({ length: o.nodes - 1 }, (_, i) => startNode(ctx, `parley-cluster-node-${i + 2}`, env, `cluster-parley-node-${i + 2}.cpuprofile`))));
    const statuses = await settled(started.map((n) => n.url), 90_000);
    ctx.progress.done(`cluster: ${o.nodes} nodes settled, ${statuses[0]!.shards.total} shards (${JSON.stringify(statuses[0]!.shards.byNode)})`);
    const nodes = statuses.map((s, i) => ({ name: s.node, url: started[i]!.url }));
    const accounts = await signInAll(ctx, started[0]!.url, o.users, 'cluster');
    const n = nats;
    const server = serverGroup('parley-cluster', started, n.servers.map((s) => ({ role: 'nats', pid: () => s.pid() })), () => n.stop());
    return {
      server, accounts, nodes, shards: statuses[0]!.shards.total,
      async close() { await server.stop(); await ks.drop(); interruptCleanups.delete(cleanup); },
    };
  } catch (e) {
    await cleanup();
    interruptCleanups.delete(cleanup);
    throw e;
  }
}
