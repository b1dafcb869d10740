import type { EntityMessages, EntityType } from '../messages/entity-messages.js';
import type { Reply, ReplyTo } from '../messages/seam.js';
import type { EntityHost, Sharding } from './sharding.js';
import { throughCodec } from './seam-check.js';
import { PendingAsks } from './pending-asks.js';

const DEFAULT_ASK_TIMEOUT_MS = 10_000;

/**
 * Sharding on one node: every entity lives here, in the regions the node registered with `serve`. The
 * cluster adapter keeps this interface and adds placement and NATS underneath.
 */
export class LocalSharding implements Sharding {
  private host?: EntityHost;
  private readonly asks: PendingAsks;

  /** `check`: every message goes through the seam codec (seam-check.ts). */
  constructor(readonly node: string, private readonly check = false) {
    this.asks = new PendingAsks(node);
  }

  /** The regions that host this node's entities (they are built after sharding: their entities use it). */
  serve(host: EntityHost): void {
    this.host = host;
  }

  tell<T extends EntityType>(type: T, id: string, msg: EntityMessages[T]): void {
    if (!this.host) throw new Error('sharding: no entity host yet');
    this.host.deliver(type, id, this.check ? throughCodec({ k: 'entity', type, id, msg }).msg as EntityMessages[T] : msg);
  }

  ask<T extends EntityType, R>(type: T, id: string, build: (reply: ReplyTo) => EntityMessages[T], timeoutMs = DEFAULT_ASK_TIMEOUT_MS): Promise<R> {
    const { reply, answer } = this.asks.open<R>(type, timeoutMs);
    this.tell(type, id, build(reply));
    return answer;
  }

  reply(to: ReplyTo, result: Reply): void {
    this.asks.settle(to, this.check ? throughCodec({ k: 'reply', to, result }).result : result);
  }

  /** Asks not answered yet. */
  get asking(): number {
    return this.asks.size;
  }

  stop(): void {
    this.asks.stop();
  }
}
