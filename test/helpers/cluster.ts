import { randomBytes } from 'node:crypto';
import type { Client } from 'cassandra-driver';
import { startNodeProcess, type RunningNode } from './node-process.js';
import { startNatsCluster, type NatsCluster } from './nats.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from './cql.js';
import { ADMIN_KEY, http } from './fixture.js';
import type { ClusterStatus } from '../../src/cluster/cluster.js';

/**
 * A real Parley cluster for one test file: NATS servers of its own (JetStream, clustered), a keyspace of its
 * own on the CQL server, and Parley node processes sharing both. Nodes can be killed (-9), stopped
 * (SIGTERM), started again and added; everything goes at teardown.
 */
export interface TestCluster {
  nats: NatsCluster;
  keyspace: string;
  admin: Client;
  /** Live and dead: index i is the i-th node started; a killed one stays in the list. */
  nodes: RunningNode[];
  /** Starts one more node (it joins the cluster). */
  add(extraEnv?: Record<string, string>): Promise<RunningNode>;
  /** Resolves once every live node sees `n` members and every shard has an owner. */
  settled(n: number, ms?: number): Promise<ClusterStatus[]>;
  /** Every error-level log line of every node so far. */
  errorLogs(): string[];
}


/** Cluster timing for tests: the defaults (detection in ~2.5 s, leases of 4 s) unless a test says otherwise. */
export function clusterEnv(nats: NatsCluster, keyspace: string, secret: string): Record<string, string> {
  return {
    ...scyllaNodeEnv(keyspace),
    PARLEY_NATS_URLS: nats.urls.join(','),
    PARLEY_SECRET: secret,
    PARLEY_ADMIN_KEY: ADMIN_KEY,
    PARLEY_SHARDS: '64',
  };
}

export async function clusterStatus(url: string): Promise<ClusterStatus> {
  const r = await http(url, '/v1/admin/cluster', { headers: { 'x-admin-key': ADMIN_KEY } });
  if (r.status !== 200) throw new Error(`admin/cluster answered ${r.status}`);
  return r.json as ClusterStatus;
}

export function testCluster(t: { before(f: () => Promise<void>): void; teardown(f: () => Promise<void>): void }, prefix: string, opts: { nodes?: number; env?: Record<string, string> } = {}): TestCluster {
  const c = { keyspace: testKeyspace(prefix), nodes: [] as RunningNode[] } as unknown as TestCluster;
  const secret = randomBytes(32).toString('hex');
  let env: Record<string, string>;
  c.add = async (extra = {}) => {
    const n = await startNodeProcess({ ...env, ...extra });
    c.nodes.push(n);
    return n;
  };
  c.settled = async (n, ms = 20_000) => {
    const until = Date.now() + ms;
    for (;;) {
      const live = c.nodes.filter((x) => x.proc.exitCode === null && x.proc.signalCode === null);
      const all = await Promise.all(live.map((x) => clusterStatus(x.url).catch(() => undefined)));
      if (all.every((s) => s && s.members.length === n && s.shards.unowned === 0)) return all as ClusterStatus[];
      if (Date.now() > until) throw new Error(`the cluster did not settle on ${n} members: ${JSON.stringify(all)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  c.errorLogs = () => c.nodes.flatMap((n) => n.logs.filter((l) => /"level":"error"/.test(l)));
  t.before(async () => {
    c.admin = await cqlAdmin();
    c.nats = await startNatsCluster(3);
    env = { ...clusterEnv(c.nats, c.keyspace, secret), ...opts.env };
    // The first node creates the keyspace and schema; the others join it.
    await c.add();
    await Promise.all(Array.from({ length: (opts.nodes ?? 3) - 1 }, () => c.add()));
    await c.settled(opts.nodes ?? 3);
  });
  t.teardown(async () => {
    await Promise.all(c.nodes.map((n) => n.destroy().catch(() => undefined)));
    await c.nats?.stop();
    if (c.admin) {
      await dropKeyspace(c.admin, c.keyspace);
      await c.admin.shutdown();
    }
  });
  return c;
}
