import { ParleyError } from '../protocol/errors.js';
import { isSelfMessage, type EntityMessages, type EntityType } from '../messages/entity-messages.js';
import { encodeSeam, type SeamMessage } from '../messages/codec.js';
import type { Envelope, Reply, ReplyTo } from '../messages/seam.js';
import type { EntityHost, Sharding } from '../routing/sharding.js';
import type { ErrorAnswer } from '../actors/region.js';
import { PendingAsks } from '../routing/pending-asks.js';
import { shardOf } from './placement.js';

const DEFAULT_ASK_TIMEOUT_MS = 10_000;

/** What the data plane needs of the shard table (ShardLeases): who owns a shard now, as this node last saw it. */
export interface ShardOwners {
  owner(shard: number): { node: string } | undefined;
}

/** What it needs of the link between nodes (Links): ordered, once, to one node; false when it can't take more. */
export interface NodeLinks {
  send(to: string, item: Uint8Array): boolean;
}

export type EntityItem = Extract<SeamMessage, { k: 'entity' }>;

/** Held while a shard has no owner this node can send to (moving, or being acquired here): bounded in time and count. */
export interface HoldLimits { ms: number; perShard: number }

/**
 * Sharding across the cluster: a message for an entity goes to the node that owns the entity's shard (by
 * the lease table), over the link to that node, which hands it to its regions. A message for a shard with
 * no owner to send to (its lease is moving, or this node is acquiring it, or handing it off) is held in
 * order, and sent on when the table says where; held too long, or over the bound, it is answered as the
 * supervisor answers a crash (a retryable error to its asker or socket), never dropped silently.
 *
 * Replies go to the asking node by the node name in the reply address.
 */
export class ClusterSharding implements Sharding {
  private host?: EntityHost;
  private readonly asks: PendingAsks;
  /** Shards whose entities run here now: acquired, and not lost or being handed off. */
  private readonly serving = new Set<number>();
  private readonly held = new Map<number, { since: number; items: EntityItem[] }>();
  private readonly sweeper: NodeJS.Timeout;
  private stopped = false;
  /** Counters for metrics and tests. */
  readonly counts = { remote: 0, forwarded: 0, held: 0, refused: 0 };

  constructor(
    readonly node: string,
    readonly shards: number,
    private readonly owners: ShardOwners,
    private readonly links: NodeLinks,
    private readonly answer: ErrorAnswer,
    private readonly hold: HoldLimits = { ms: 5000, perShard: 10_000 },
    /** Each ask to its answer (or error), ms, and whether its entity was on another node when asked (metrics). */
    private readonly timeAsk?: (ms: number, remote: boolean) => void,
  ) {
    this.asks = new PendingAsks(node);
    this.sweeper = setInterval(() => this.expireHeld(Date.now()), Math.max(100, hold.ms / 4));
    this.sweeper.unref();
  }

  serve(host: EntityHost): void {
    this.host = host;
  }

  shardOf(type: EntityType, id: string): number {
    return shardOf(type, id, this.shards);
  }

  tell<T extends EntityType>(type: T, id: string, msg: EntityMessages[T]): void {
    this.route({ k: 'entity', type, id, msg } as EntityItem);
  }

  ask<T extends EntityType, R>(type: T, id: string, build: (reply: ReplyTo) => EntityMessages[T], timeoutMs = DEFAULT_ASK_TIMEOUT_MS): Promise<R> {
    const { reply, answer } = this.asks.open<R>(type, timeoutMs);
    this.tell(type, id, build(reply));
    if (!this.timeAsk) return answer;
    const timed = this.timeAsk;
    const remote = !this.serving.has(shardOf(type, id, this.shards));
    const start = performance.now();
    const done = () => timed(performance.now() - start, remote);
    answer.then(done, done);
    return answer;
  }

  reply(to: ReplyTo, result: Reply): void {
    const node = PendingAsks.nodeOf(to);
    if (node === this.node) return this.settle(to, result);
    if (!this.links.send(node, encodeSeam({ k: 'reply', to, result }))) this.counts.refused++; // the asker times out
  }

  /** An answer to one of this node's asks, from here or another node. */
  settle(to: ReplyTo, r: Reply): void {
    this.asks.settle(to, r);
  }

  /** An entity message that came over a link: for a shard served here, or to pass on (once) to its owner. */
  arrive(m: EntityItem): void {
    this.route(m);
  }

  // ---- the shard table, as the control plane changes it ----

  /** This node serves the shard from now on: what was held for it goes to its entities, in order. */
  startServing(shard: number): void {
    this.serving.add(shard);
    this.release(shard);
  }

  /** This node stops serving the shard (handing it off, or its lease lapsed): its messages are held meanwhile. */
  stopServing(shard: number): void {
    this.serving.delete(shard);
  }

  /** Messages held for shards with no owner to send to. */
  get heldCount(): number {
    let n = 0;
    for (const h of this.held.values()) n += h.items.length;
    return n;
  }

  get servingCount(): number {
    return this.serving.size;
  }

  /** The table changed for a shard: what was held for it goes where it says now. */
  ownerChanged(shard: number): void {
    this.release(shard);
  }

  /** Asks not answered yet. */
  get asking(): number {
    return this.asks.size;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.sweeper);
    this.asks.stop();
    for (const [, h] of this.held) for (const m of h.items) this.refuse(m, 'node shutting down');
    this.held.clear();
  }

  // ---- routing ----

  private route(m: EntityItem): void {
    const shard = shardOf(m.type, m.id, this.shards);
    if (this.serving.has(shard)) return this.deliverHere(m);
    // A shard being handed off: its entities still running here finish their writes, so what they told
    // themselves (a store's answer, a timer) still reaches them; everything else waits for the next owner.
    if (isSelfMessage(m.msg) && this.host?.isLive(m.type, m.id)) return this.deliverHere(m);
    const owner = this.owners.owner(shard)?.node;
    // A message already passed on once is not passed on again: two nodes with different views of the table
    // would bounce it between them. It waits here for the table to settle instead.
    if (owner && owner !== this.node && !this.held.has(shard) && (m.fwd ?? 0) < 1) return this.sendTo(owner, m);
    this.holdFor(shard, m);
  }

  private deliverHere(m: EntityItem): void {
    if (!this.host) throw new Error('sharding: no entity host yet');
    this.host.deliver(m.type, m.id, m.msg as EntityMessages[typeof m.type]);
  }

  private sendTo(owner: string, m: EntityItem): void {
    const arrivedFromLink = m.fwd !== undefined;
    const out: EntityItem = arrivedFromLink ? { ...m, fwd: (m.fwd ?? 0) + 1 } : { ...m, fwd: 0 };
    if (arrivedFromLink) this.counts.forwarded++;
    else this.counts.remote++;
    if (!this.links.send(owner, encodeSeam(out))) this.refuse(m, `the link to ${owner} is full`);
  }

  private holdFor(shard: number, m: EntityItem): void {
    if (this.stopped) return this.refuse(m, 'the node is shutting down');
    let h = this.held.get(shard);
    if (!h) this.held.set(shard, (h = { since: Date.now(), items: [] }));
    if (h.items.length >= this.hold.perShard) return this.refuse(m, 'too many messages wait for this shard to move');
    this.counts.held++;
    // A held message counts as not yet passed on: wherever it goes next is its first hop from here.
    h.items.push(m.fwd === undefined ? m : { ...m, fwd: 0 });
  }

  /** Sends on what was held for a shard, in order, as far as the table now allows. */
  private release(shard: number): void {
    const h = this.held.get(shard);
    if (!h) return;
    this.held.delete(shard);
    for (let i = 0; i < h.items.length; i++) {
      const m = h.items[i]!;
      if (this.serving.has(shard)) this.deliverHere(m);
      else {
        const owner = this.owners.owner(shard)?.node;
        if (!owner || owner === this.node) {
          // Still nowhere to go: keep the rest, in order, with its original age.
          this.held.set(shard, { since: h.since, items: h.items.slice(i) });
          return;
        }
        this.counts.remote++;
        if (!this.links.send(owner, encodeSeam({ ...m, fwd: 0 }))) this.refuse(m, `the link to ${owner} is full`);
      }
    }
  }

  private expireHeld(now: number): void {
    for (const [shard, h] of this.held) {
      if (now - h.since < this.hold.ms) continue;
      this.held.delete(shard);
      for (const m of h.items) this.refuse(m, `shard ${shard} has had no owner for ${this.hold.ms} ms`);
    }
  }

  private refuse(m: EntityItem, why: string): void {
    this.counts.refused++;
    this.answer(m.msg as Envelope, new ParleyError('moving', `${m.type} is moving between nodes (${why}); try again`));
  }
}
