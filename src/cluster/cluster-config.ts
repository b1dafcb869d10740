import type { Timing } from './membership.js';
import type { LeaseTiming } from './shard-leases.js';

/** The cluster's knobs (README's configuration table); absent when PARLEY_NATS_URLS is unset (one node). */
export interface ClusterConfig {
  natsUrls: string[];
  /** Shards entities are placed by; the same on every node (a node with another count is refused). */
  shards: number;
  /** Servers each control bucket (members, shard leases) is replicated on. */
  replicas: number;
  membership: Timing;
  leases: Omit<LeaseTiming, 'tickMs'>;
}

type Env = Record<string, string | undefined>;

function ms(env: Env, name: string, dflt: number): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

/** Pure over the environment; throws on a value that can't work (with the knob's name). */
export function clusterConfig(env: Env): ClusterConfig | undefined {
  const natsUrls = (env.PARLEY_NATS_URLS ?? '').split(',').map((u) => u.trim()).filter(Boolean);
  if (!natsUrls.length) return undefined;
  const c: ClusterConfig = {
    natsUrls,
    shards: ms(env, 'PARLEY_SHARDS', 256),
    replicas: ms(env, 'PARLEY_NATS_REPLICAS', 3),
    membership: { heartbeatMs: ms(env, 'PARLEY_CLUSTER_HEARTBEAT_MS', 500), downAfterMs: ms(env, 'PARLEY_CLUSTER_DOWN_AFTER_MS', 2_500) },
    leases: {
      renewMs: ms(env, 'PARLEY_CLUSTER_RENEW_MS', 1_000),
      leaseMs: ms(env, 'PARLEY_CLUSTER_LEASE_MS', 4_000),
      marginMs: ms(env, 'PARLEY_CLUSTER_LEASE_MARGIN_MS', 500),
      releaseTimeoutMs: ms(env, 'PARLEY_CLUSTER_RELEASE_TIMEOUT_MS', 5_000),
    },
  };
  if (![1, 3, 5].includes(c.replicas)) throw new Error('PARLEY_NATS_REPLICAS must be 1, 3 or 5');
  if (c.membership.downAfterMs < 2 * c.membership.heartbeatMs) throw new Error('PARLEY_CLUSTER_DOWN_AFTER_MS must be at least twice PARLEY_CLUSTER_HEARTBEAT_MS');
  if (c.leases.marginMs >= c.leases.leaseMs) throw new Error('PARLEY_CLUSTER_LEASE_MARGIN_MS must be below PARLEY_CLUSTER_LEASE_MS');
  if (2 * c.leases.renewMs > c.leases.leaseMs - c.leases.marginMs) throw new Error('PARLEY_CLUSTER_LEASE_MS - PARLEY_CLUSTER_LEASE_MARGIN_MS must leave room for two renewals (PARLEY_CLUSTER_RENEW_MS)');
  return c;
}
