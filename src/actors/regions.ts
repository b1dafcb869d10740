import type { ActorSystemRef } from 'nact';
import { errorFrame, toErrorBody } from '../protocol/errors.js';
import type { EntityMessages, EntityType } from '../messages/entity-messages.js';
import type { Envelope } from '../messages/seam.js';
import type { EntityHost, Sharding } from '../routing/sharding.js';
import type { Gateway } from '../routing/gateway.js';
import type { FaultInjector } from '../ops/faults.js';
import { Region, type EntityKind, type ErrorAnswer, type RegionStats, type RegionView } from './region.js';

/** A region in the supervision tree; in a cluster, how its live entities spread over the shards this node holds. */
export type RegionNode = RegionView & { shards?: { held: number; fullest: { shard: number; entities: number }[] } };

/** The entities this node hosts: one region per kind, registered by the node's wiring. */
export class Regions implements EntityHost {
  private readonly byType = new Map<EntityType, Region<Envelope>>();

  constructor(system: ActorSystemRef, kinds: EntityKind<never>[], answer: ErrorAnswer, passivateAfterMs: number, faults?: FaultInjector) {
    for (const k of kinds) {
      this.byType.set(k.type, new Region(system, k as unknown as EntityKind<Envelope>, answer, passivateAfterMs, faults));
    }
  }

  deliver<T extends EntityType>(type: T, id: string, msg: EntityMessages[T]): void {
    const region = this.byType.get(type);
    if (!region) throw new Error(`no region for ${type}`);
    region.tell(id, msg);
  }

  isLive(type: EntityType, id: string): boolean {
    return this.byType.get(type)?.isLive(id) ?? false;
  }

  /** Every live entity of a kind gets `msg`. */
  tellEach<T extends EntityType>(type: T, msg: EntityMessages[T]): void {
    this.byType.get(type)?.tellEach(msg);
  }

  /** Stops the entities `which` selects, of every kind, as Region.handOff; `maxMs` bounds the wait. */
  async handOff(which: (type: EntityType, id: string) => boolean, maxMs: number): Promise<number> {
    const deadline = Date.now() + maxMs;
    const counts = await Promise.all([...this.byType].map(([type, r]) => r.handOff((id) => which(type, id), deadline)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Live entities of every kind (cheap: no walk over them). */
  active(): number {
    let n = 0;
    for (const r of this.byType.values()) n += r.size;
    return n;
  }

  /** Counters per kind, and up to 1,000 live ids each (metrics, tests). */
  tree(): (RegionStats & { ids: string[] })[] {
    return [...this.byType.values()].map((r) => r.snapshot());
  }

  /**
   * The supervision tree as operators see it (Region.view per kind); in a cluster (`shardOf`) also how the
   * live entities spread over shards: how many shards hold some, and the `top` fullest.
   */
  view(top: number, shardOf?: (type: EntityType, id: string) => number): RegionNode[] {
    return [...this.byType].map(([type, r]) => {
      const v = r.view(top);
      if (!shardOf) return v;
      const counts = new Map<number, number>();
      r.forEachId((id) => { const s = shardOf(type, id); counts.set(s, (counts.get(s) ?? 0) + 1); });
      const fullest = [...counts].sort((a, b) => b[1] - a[1]).slice(0, top).map(([shard, entities]) => ({ shard, entities }));
      return { ...v, shards: { held: counts.size, fullest } };
    });
  }

  /**
   * Resolves once no entity has a message in hand or in its mailbox, and `busy` (asks in flight) is false, for
   * `quietMs` (stores resolve, acks and fan-outs follow as new messages, so one quiet instant is not enough),
   * or after `maxMs`.
   */
  async drain(busy: () => boolean, quietMs = 50, maxMs = 5000): Promise<void> {
    const until = Date.now() + maxMs;
    let quietSince = Date.now();
    while (Date.now() < until) {
      if ([...this.byType.values()].some((r) => r.inFlight() > 0) || busy()) quietSince = Date.now();
      else if (Date.now() - quietSince >= quietMs) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  stop(): void {
    for (const r of this.byType.values()) r.stopAll();
  }
}

/** How a failed message is answered: the asker gets a rejected promise, a socket gets an error frame. */
export const answerErrors = (sharding: Sharding, gateway: Gateway): ErrorAnswer => (msg, err) => {
  if (msg.reply) sharding.reply(msg.reply, { ok: false, error: toErrorBody(err) });
  else if (msg.origin) gateway.send(msg.origin, errorFrame(msg, err));
};
