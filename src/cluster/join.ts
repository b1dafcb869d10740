import type { NatsConnection } from '@nats-io/transport-node';
import type { ConnectionRegistry } from '../routing/connections.js';
import { log } from '../log.js';
import { connectCluster, openControlBuckets } from './nats.js';
import { KvMembership, type Member } from './membership.js';
import { ShardLeases } from './shard-leases.js';
import { Links } from './links.js';
import { ClusterNode } from './cluster.js';
import type { ClusterConfig } from './cluster-config.js';

/** Every subject the cluster uses starts with it: links `parley.link.<node>`, user topics `parley.u.<user>`. */
const SUBJECTS = 'parley';

export interface JoinedCluster {
  node: ClusterNode;
  /** The cluster's NATS connection (analytics publish their events on it). */
  nc: NatsConnection;
  /** Starts heartbeating (announcing `url`, where it listens) and taking shards: once this node's regions can serve them. */
  start(url: string): Promise<void>;
  /** Hands every shard over (draining its entities), leaves the membership, closes the links and NATS. */
  leave(): Promise<void>;
}

/**
 * Connects to NATS and builds the control plane (membership, shard leases) and the data plane (the links
 * between nodes, ClusterNode) of this node. Nothing is served until `start`.
 */
/** What the cluster times for the node's metrics: the links' round trips, and asks by where their entity was. */
export interface ClusterTiming {
  linkAck(ms: number): void;
  ask(ms: number, remote: boolean): void;
}

export async function joinCluster(
  cfg: ClusterConfig, self: { node: string }, conns: ConnectionRegistry, check: boolean, timing?: ClusterTiming,
): Promise<JoinedCluster> {
  const nc = await connectCluster(cfg.natsUrls, self.node);
  const buckets = await openControlBuckets(nc, cfg.replicas);
  const say = (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => log(level, msg, { node: self.node, ...fields });
  // Its address is known once it listens (a port of 0 is picked then): `start` fills it in before the first beat.
  const me: Member = { node: self.node, wsUrl: '', startedAt: Date.now() };
  const membership = new KvMembership({ kv: buckets.members, self: me, shards: cfg.shards, ...cfg.membership, log: say });
  const leases = new ShardLeases({ kv: buckets.shards, membership, shards: cfg.shards, ...cfg.leases, log: say });
  const links = () => new Links(nc, self.node, { prefix: `${SUBJECTS}.link`, onAckTime: timing?.linkAck });
  const node = new ClusterNode(self.node, cfg.shards, { nc, links, membership, leases, timeAsk: timing?.ask }, conns, SUBJECTS, check);
  return {
    node, nc,
    async start(url) {
      me.wsUrl = url;
      await membership.start();
      await leases.start();
    },
    async leave() {
      // Says it is leaving (the ring gives its shards to the others) and releases each once its entities finished.
      await leases.stop();
      // Still a member, still watching the table: what passes through it on its way out reaches the new owners.
      await node.settle(3000);
      await membership.leave().catch((err: unknown) => log('warn', 'membership not left cleanly (the others time it out)', { error: String(err) }));
      leases.close();
      node.close();
      await nc.drain().catch(() => undefined);
    },
  };
}
