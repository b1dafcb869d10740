import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';

/**
 * The cluster's NATS connection: every server URL, reconnecting for ever (to whichever server answers;
 * a server's death is noticed when its socket closes, a silent one after two missed pings, 4 s).
 */
export function connectCluster(urls: readonly string[], name: string, extra: Partial<NodeConnectionOptions> = {}): Promise<NatsConnection> {
  return connect({ servers: [...urls], name, maxReconnectAttempts: -1, reconnectTimeWait: 250, pingInterval: 2_000, maxPingOut: 2, ...extra });
}

export const MEMBERS_BUCKET = 'parley_members';
export const SHARDS_BUCKET = 'parley_shards';

export interface ControlBuckets {
  members: KV;
  shards: KV;
}

/**
 * Opens (creating if needed) the control plane's two KV buckets, each a JetStream stream replicated on
 * `replicas` servers (3: 2f+1 with f = 1), keeping one value per key. Members' records that nobody
 * refreshes for a minute are dropped by the bucket's max age: that is garbage collection of dead nodes'
 * records only, never how liveness is decided.
 */
export async function openControlBuckets(nc: NatsConnection, replicas: number, waitMs = 30_000): Promise<ControlBuckets> {
  const kvm = new Kvm(nc);
  const deadline = performance.now() + waitMs;
  // Retried: a JetStream that is electing a leader (a fresh cluster, a server just lost) doesn't answer yet.
  const open = async (name: string, opts: Parameters<Kvm['create']>[1]): Promise<KV> => {
    for (;;) {
      try {
        return await kvm.create(name, { ...opts, timeout: 2_000 });
      } catch (err) {
        if (performance.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };
  const members = await open(MEMBERS_BUCKET, { replicas, history: 1, ttl: 60_000, description: 'Parley cluster members (heartbeats)' });
  const shards = await open(SHARDS_BUCKET, { replicas, history: 1, description: 'Parley shard leases {node, epoch}' });
  return { members, shards };
}
