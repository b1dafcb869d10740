import type { NatsConnection } from '@nats-io/transport-node';
import { KvMembership } from '../../src/cluster/membership.js';
import { connectCluster, openControlBuckets } from '../../src/cluster/nats.js';
import { ShardLeases, type LeaseTiming } from '../../src/cluster/shard-leases.js';

/**
 * Control-plane "nodes" inside one test process: each its own NATS connection, membership and shard
 * leases, over a real NATS cluster. Every callback is recorded on one monotonic clock (performance.now of
 * the test process), so the order of events on different nodes can be asserted.
 */

export type Event =
  | { t: number; node: string; kind: 'acquired'; shard: number; epoch: number }
  | { t: number; node: string; kind: 'lost'; shard: number }
  | { t: number; node: string; kind: 'release-start' | 'release-end'; shard: number };

export class Recorder {
  readonly events: Event[] = [];

  push(e: Event extends infer E ? (E extends unknown ? Omit<E, 't'> : never) : never): void {
    this.events.push({ ...e, t: performance.now() } as Event);
  }

  /** Serving intervals per shard, from the callbacks: acquired → lost, or → the end of its release drain. */
  intervals(): { shard: number; node: string; from: number; to: number }[] {
    const open = new Map<string, { shard: number; node: string; from: number }>();
    const out: { shard: number; node: string; from: number; to: number }[] = [];
    for (const e of this.events) {
      const k = `${e.node}/${e.shard}`;
      if (e.kind === 'acquired') open.set(k, { shard: e.shard, node: e.node, from: e.t });
      else if (e.kind === 'lost' || e.kind === 'release-end') {
        const o = open.get(k);
        if (o) { out.push({ ...o, to: e.t }); open.delete(k); }
      }
    }
    for (const o of open.values()) out.push({ ...o, to: Infinity });
    return out;
  }

  /** Pairs of intervals of one shard on two nodes that overlap (must be empty). */
  overlaps(): string[] {
    const byShard = new Map<number, { node: string; from: number; to: number }[]>();
    for (const i of this.intervals()) (byShard.get(i.shard) ?? byShard.set(i.shard, []).get(i.shard)!).push(i);
    const bad: string[] = [];
    for (const [shard, list] of byShard) {
      list.sort((a, b) => a.from - b.from);
      for (let i = 1; i < list.length; i++) {
        if (list[i]!.from < list[i - 1]!.to) bad.push(`shard ${shard}: ${list[i - 1]!.node} [${list[i - 1]!.from.toFixed(0)}, ${list[i - 1]!.to.toFixed(0)}) and ${list[i]!.node} from ${list[i]!.from.toFixed(0)}`);
      }
    }
    return bad;
  }

  since(t: number, kind?: Event['kind'], node?: string): Event[] {
    return this.events.filter((e) => e.t >= t && (!kind || e.kind === kind) && (!node || e.node === node));
  }
}

export interface ControlNode {
  name: string;
  nc: NatsConnection;
  membership: KvMembership;
  leases: ShardLeases;
  /** Graceful: releases its shards (each drained), leaves, closes its connection. */
  stop(): Promise<void>;
  /** As a process that died: stops renewing and heartbeating, closes its connection without a word. */
  die(): Promise<void>;
}

export interface NodeOptions {
  shards: number;
  recorder: Recorder;
  /** How long each shard's drain takes in onRelease. */
  drainMs?: number;
  /** Connect to these URLs only (e.g. through a proxy), not learning the others from the servers. */
  only?: boolean;
  timing?: Partial<LeaseTiming>;
}

export async function startControlNode(name: string, urls: readonly string[], o: NodeOptions): Promise<ControlNode> {
  const nc = await connectCluster(urls, name, o.only ? { ignoreClusterUpdates: true } : {});
  const { members, shards } = await openControlBuckets(nc, 3);
  const membership = new KvMembership({ kv: members, self: { node: name, wsUrl: `ws://127.0.0.1/${name}`, startedAt: Date.now() }, shards: o.shards });
  const leases = new ShardLeases({ kv: shards, membership, shards: o.shards, ...o.timing });
  const rec = o.recorder;
  leases.onAcquired((l) => rec.push({ node: name, kind: 'acquired', shard: l.shard, epoch: l.epoch }));
  leases.onLost((shard) => rec.push({ node: name, kind: 'lost', shard }));
  leases.onRelease(async (shard) => {
    rec.push({ node: name, kind: 'release-start', shard });
    if (o.drainMs) await new Promise((r) => setTimeout(r, o.drainMs));
    rec.push({ node: name, kind: 'release-end', shard });
  });
  try {
    await membership.start();
    await leases.start();
  } catch (err) {
    await nc.close();
    throw err;
  }
  let closed = false;
  return {
    name, nc, membership, leases,
    async stop() {
      if (closed) return;
      closed = true;
      await leases.stop();
      await membership.leave();
      leases.close();
      await nc.close();
    },
    async die() {
      if (closed) return;
      closed = true;
      // A dead process serves nothing from this moment.
      for (const l of leases.leases()) rec.push({ node: name, kind: 'lost', shard: l.shard });
      leases.abandon();
      membership.abandon();
      await nc.close().catch(() => undefined);
    },
  };
}

/** Polls `cond` (a positive condition: what must become true) every 20 ms until it holds or `ms` pass. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - t0;
}
