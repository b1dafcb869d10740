import type { NatsConnection } from '@nats-io/transport-node';
import { decodeSeam, type SeamMessage } from '../messages/codec.js';
import type { Envelope } from '../messages/seam.js';
import type { EntityType } from '../messages/entity-messages.js';
import { ParleyError } from '../protocol/errors.js';
import { CloseCodes } from '../protocol/close-codes.js';
import type { ErrorAnswer } from '../actors/region.js';
import type { Regions } from '../actors/regions.js';
import type { LocalGateway } from '../routing/local-gateway.js';
import { LocalPubSub } from '../routing/local-gateway.js';
import type { ConnectionRegistry } from '../routing/connections.js';
import { log } from '../log.js';
import { ClusterSharding, type EntityItem, type NodeLinks, type ShardOwners } from './cluster-sharding.js';
import { ClusterPubSub, LinkGateway } from './cluster-gateway.js';
import { shardOf } from './placement.js';

/** What the cluster needs of the link between nodes (links.ts). */
export interface LinkLayer {
  send(to: string, item: Uint8Array): boolean;
  onItem(fn: (from: string, item: Uint8Array) => void): void;
  onLost(fn: (to: string, items: Uint8Array[], why: string) => void): void;
  peerGone(node: string): void;
  stats(): { unackedItems: number };
  close(): void;
}

/** What it needs of membership (membership.ts). */
export interface MembershipView {
  live(): readonly { node: string; wsUrl?: string }[];
  isolated(): boolean;
  onChange(fn: (live: readonly { node: string }[], gone: readonly string[]) => void): void;
}

/** What it needs of the shard leases (shard-leases.ts). */
export interface LeaseTable extends ShardOwners {
  onChange(fn: (shard: number, lease: { node: string } | undefined) => void): void;
  onAcquired(fn: (lease: { shard: number }) => void): void;
  onLost(fn: (shard: number) => void): void;
  onRelease(fn: (shard: number) => Promise<void>): void;
}

/**
 * A message sent again after its first attempt may have been taken: a send is looked up by its cid (never
 * `fresh`), a delivery checks what the inbox holds (`redelivery`). Others are idempotent where they repeat.
 */
function asRetry(msg: EntityItem['msg']): EntityItem['msg'] {
  if (msg.t === 'send' && 'fresh' in msg) {
    const { fresh: _f, ...rest } = msg;
    return rest as EntityItem['msg'];
  }
  if (msg.t === 'deliver' && 'packed' in msg) return { ...msg, redelivery: true } as EntityItem['msg'];
  return msg;
}

/** A shard's entities have this long to finish their writes when the shard is handed to another node. */
export const HANDOFF_MS = 5000;
/** Shards acquired within this window are recovered together (one listing of the remembered conversations). */
const RECOVER_BATCH_MS = 100;
/** How often the node checks whether it is cut off from the cluster. */
const ISOLATION_CHECK_MS = 250;

export interface ClusterStatus {
  node: string;
  members: string[];
  /** Each member's own address (PARLEY_HOST:PARLEY_PORT as it announced it): where its /ops and admin routes answer. */
  urls: Record<string, string>;
  shards: { total: number; owned: number; serving: number; unowned: number; byNode: Record<string, number> };
  routing: ClusterSharding['counts'];
}

/** `links` makes a link layer with a new incarnation (at start, and after the others declared this node gone). */
export interface ClusterParts {
  nc: NatsConnection; links: () => LinkLayer; membership: MembershipView; leases: LeaseTable;
  /** Each ask's time to its answer, ms, and whether its entity was on another node (metrics). */
  timeAsk?: (ms: number, remote: boolean) => void;
}

/**
 * The data plane of one node in a cluster: the cluster adapters of the routing seams (sharding over the
 * links by the lease table, sockets on other nodes over the links, user topics on NATS), and what the
 * control plane's events mean for this node's entities and sockets:
 *
 * - a shard acquired: served here from now on; its remembered conversations are recovered (re-driven);
 * - a shard to hand off: held, its entities stopped once their writes are done (bounded), then released;
 * - a shard lost (the lease lapsed or was taken): held, its entities stopped at once;
 * - a user's shard changed owner: this node's sockets of its users are closed with `restart`, so each device
 *   reconnects and attaches to the user's entity on its new owner, resuming from its pointer;
 * - a node gone: the links to it dropped, and every user entity here forgets the sockets it held there.
 */
export class ClusterNode {
  readonly sharding: ClusterSharding;
  readonly remote: LinkGateway;
  readonly pubsub: ClusterPubSub;
  private readonly leases: LeaseTable;
  private readonly makeLinks: () => LinkLayer;
  private links!: LinkLayer;
  private reincarnated = 0;
  private readonly membership: MembershipView;
  private regions?: Regions;
  private gateway?: LocalGateway;
  private answer?: ErrorAnswer;
  /** Each shard's owner as this node last saw it: a change of owner moves the shard's users' sockets. */
  private readonly lastOwner = new Map<number, string>();
  private recover?: (keep: (type: EntityType, id: string) => boolean) => void;
  private release?: (keep: (type: EntityType, id: string) => boolean) => void;
  private recovering = new Set<number>();
  private recoverTimer?: NodeJS.Timeout;
  private closedShards = new Set<number>();
  private closeTimer?: NodeJS.Immediate;
  private stopped = false;
  private isolated = false;
  private readonly isolation: NodeJS.Timeout;

  constructor(
    readonly node: string,
    readonly shards: number,
    parts: ClusterParts,
    private readonly conns: ConnectionRegistry,
    subjectPrefix: string,
    check: boolean,
  ) {
    const { leases, membership } = parts;
    this.makeLinks = parts.links;
    const links: NodeLinks = { send: (to, item) => this.links.send(to, item) };
    this.openLinks();
    this.leases = leases;
    this.membership = membership;
    // Routing goes by the lease table, but not to a node membership says is gone: its messages are held until
    // the shard's next owner takes it (a gone node's lease lapses 1–2 s after it is declared gone).
    const owners: ShardOwners = {
      owner: (shard) => {
        const lease = leases.owner(shard);
        return lease && (lease.node === node || membership.live().some((m) => m.node === lease.node)) ? lease : undefined;
      },
    };
    this.sharding = new ClusterSharding(node, shards, owners, links, (msg, err) => this.answer?.(msg, err), undefined, parts.timeAsk);
    this.remote = new LinkGateway(links);
    this.pubsub = new ClusterPubSub(parts.nc, node, subjectPrefix, new LocalPubSub(conns, check), conns);

    membership.onChange((_live, gone) => {
      for (const g of gone) {
        log('warn', 'a node left the cluster', { node: g });
        this.links.peerGone(g);
        this.regions?.tellEach('user', { t: 'node.gone', node: g });
        // Sends in flight to its conversations died with it (in its mailbox, or unacked on the link): each
        // waiting socket is told to send them again (the same cid is stored at most once).
        const wasThere = (conv: string) => leases.owner(shardOf('conv', conv, shards))?.node === g;
        for (const c of [...conns.all()]) c.entitiesLost?.(wasThere);
      }
    });
    leases.onAcquired(({ shard }) => {
      this.sharding.startServing(shard);
      this.recoverSoon(shard);
    });
    leases.onLost((shard) => {
      log('warn', 'shard lease lost: its entities stop here now', { shard });
      this.sharding.stopServing(shard);
      this.release?.(this.inShard(shard));
      void this.regions?.handOff(this.inShard(shard), 0);
    });
    leases.onRelease(async (shard) => {
      this.sharding.stopServing(shard);
      await this.regions?.handOff(this.inShard(shard), HANDOFF_MS);
      this.release?.(this.inShard(shard)); // after the hand-off: its users' entities may still have notified
    });
    // Cut off from NATS, the node serves nothing (its leases lapse and others take its shards): its clients are
    // sent to another node and it takes no sockets until it is back (and its /healthz says so meanwhile).
    this.isolation = setInterval(() => {
      const now = membership.isolated();
      if (now === this.isolated) return;
      this.isolated = now;
      log('warn', now ? 'cut off from the cluster: closing client sockets, refusing new ones' : 'back in touch with the cluster', { node });
      if (now) for (const c of [...conns.all()]) c.close(CloseCodes.restart, 'this node lost touch with its cluster; reconnect to another node');
      // The others declared it gone meanwhile and quarantined its links: it speaks again as a new incarnation.
      else this.reincarnate();
    }, ISOLATION_CHECK_MS);
    this.isolation.unref();
    leases.onChange((shard, lease) => {
      this.sharding.ownerChanged(shard);
      // Released (no node) is a step of a move, not its end: the users move once the next owner holds it.
      if (!lease?.node) return;
      const before = this.lastOwner.get(shard);
      this.lastOwner.set(shard, lease.node);
      if (before !== undefined && lease.node !== before) this.closeUsersOf(shard);
    });
  }

  /**
   * The node's regions and gateway, once built (they are built on this node's sharding); `recover` sends what
   * an acquired shard's last owner owed, `release` drops what this node still owes for a shard it gave up.
   */
  attach(regions: Regions, gateway: LocalGateway, answer: ErrorAnswer, owed: { recover(keep: (type: EntityType, id: string) => boolean): void; release(keep: (type: EntityType, id: string) => boolean): void }): void {
    this.regions = regions;
    this.gateway = gateway;
    this.answer = answer;
    this.recover = (keep) => owed.recover(keep);
    this.release = (keep) => owed.release(keep);
  }

  /**
   * After its shards were handed over: what is still on its way through this node (messages it passes on to
   * the new owners, or holds until one takes a shard; frames its links have not had acked) gets where it goes
   * before the node leaves. Bounded by `maxMs`.
   */
  async settle(maxMs: number): Promise<void> {
    const until = Date.now() + maxMs;
    while (Date.now() < until && (this.sharding.heldCount > 0 || this.links.stats().unackedItems > 0)) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops taking part (after the control plane released the shards): no more recovery; the user topics and the links go. */
  close(): void {
    this.stopped = true;
    clearInterval(this.isolation);
    clearTimeout(this.recoverTimer);
    if (this.closeTimer) clearImmediate(this.closeTimer);
    this.sharding.stop();
    this.pubsub.close();
    this.links.close();
  }

  /** Why this node serves no clients now, or undefined (the gateway refuses sockets, /healthz answers 503). */
  unavailable(): string | undefined {
    return this.membership.isolated() ? 'this node is cut off from its cluster; connect to another node' : undefined;
  }

  /** What an operator sees of this node's part in the cluster (GET /v1/admin/cluster). */
  status(): ClusterStatus {
    let owned = 0;
    let unowned = 0;
    const byNode: Record<string, number> = {};
    for (let s = 0; s < this.shards; s++) {
      const owner = this.leases.owner(s)?.node;
      if (owner === undefined) unowned++;
      else byNode[owner] = (byNode[owner] ?? 0) + 1;
      if (owner === this.node) owned++;
    }
    const live = this.membership.live();
    return {
      node: this.node,
      members: live.map((m) => m.node).sort(),
      urls: Object.fromEntries(live.flatMap((m) => (m.wsUrl ? [[m.node, m.wsUrl]] : []))),
      shards: { total: this.shards, owned, serving: this.sharding.servingCount, unowned, byNode },
      routing: { ...this.sharding.counts },
    };
  }

  private openLinks(): void {
    const links = this.makeLinks();
    links.onItem((from, bytes) => this.arrive(from, bytes));
    links.onLost((to, items, why) => {
      this.lost(to, items, why);
      // A peer refused this incarnation: it was declared gone (a partition the node didn't notice itself).
      if (why === 'refused' && links === this.links) this.reincarnate();
    });
    this.links = links;
  }

  /**
   * A new incarnation of this node's links: what the old one had not delivered is dropped (its senders retry
   * end to end), and peers that quarantined the old one hear the new one. At most once a second.
   */
  private reincarnate(): void {
    const now = Date.now();
    if (this.stopped || now - this.reincarnated < 1000) return;
    this.reincarnated = now;
    const old = this.links;
    this.openLinks();
    old.close();
    log('warn', 'links started again as a new incarnation (the cluster had declared this node gone)', { node: this.node });
  }

  private inShard(shard: number): (type: EntityType, id: string) => boolean {
    return (type, id) => shardOf(type, id, this.shards) === shard;
  }

  private arrive(from: string, bytes: Uint8Array): void {
    let m: SeamMessage;
    try {
      m = decodeSeam(bytes);
    } catch (err) {
      log('warn', 'a message from another node this node cannot read: dropped', { from, error: String(err) });
      return;
    }
    switch (m.k) {
      case 'entity': return this.sharding.arrive(m);
      case 'reply': return this.sharding.settle(m.to, m.result);
      case 'conn': return this.gateway?.send(m.conn, m.frame);
      case 'conn.close': return this.gateway?.close(m.conn, m.code, m.reason);
      default: log('warn', 'a user topic message on a link: dropped', { from, kind: m.k });
    }
  }

  /**
   * What a link could not deliver. To a node that is gone, entity messages go to their shards' next owners
   * (as messages that may have arrived before: see asRetry); to a node that restarted or refused this one,
   * they are answered (a retryable error to the asker or socket). Frames for sockets are dropped: a socket on
   * a node that went is gone with it.
   */
  private lost(to: string, items: Uint8Array[], why: string): void {
    let rerouted = 0;
    let answered = 0;
    for (const bytes of items) {
      let m: SeamMessage;
      try { m = decodeSeam(bytes); } catch { continue; }
      if (m.k !== 'entity') continue;
      if (why === 'gone') {
        rerouted++;
        this.sharding.arrive({ ...m, msg: asRetry(m.msg), fwd: undefined });
      } else {
        answered++;
        this.answer?.(m.msg as Envelope, new ParleyError('moving', `${m.type} was on its way to node ${to}, which ${why}; try again`));
      }
    }
    log('warn', 'messages to another node were not confirmed by it', { to, why, items: items.length, rerouted, answered });
  }

  private recoverSoon(shard: number): void {
    this.recovering.add(shard);
    this.recoverTimer ??= setTimeout(() => {
      this.recoverTimer = undefined;
      const batch = this.recovering;
      this.recovering = new Set();
      if (this.stopped) return;
      this.recover?.((type, id) => batch.has(shardOf(type, id, this.shards)));
    }, RECOVER_BATCH_MS);
  }

  /**
   * The shard of some users moved: their sockets here reconnect, to attach on its new owner, and sockets
   * following their presence follow it there (once per tick, however many shards moved in it).
   */
  private closeUsersOf(shard: number): void {
    this.closedShards.add(shard);
    this.closeTimer ??= setImmediate(() => {
      this.closeTimer = undefined;
      const moved = this.closedShards;
      this.closedShards = new Set();
      const inMoved = (user: string) => moved.has(shardOf('user', user, this.shards));
      for (const c of [...this.conns.all()]) c.usersMoved?.(inMoved);
    });
  }
}
