import { ParleyError } from '../protocol/errors.js';
import type { EntityMessages, EntityType } from '../messages/entity-messages.js';
import type { Reply, ReplyTo } from '../messages/seam.js';
import type { EntityHost, Sharding } from './sharding.js';
import { throughCodec } from './seam-check.js';

const DEFAULT_ASK_TIMEOUT_MS = 10_000;

/**
 * Sharding on one node: every entity lives here, in the regions the node registered with `serve`. The
 * cluster adapter keeps this interface and adds placement and NATS underneath.
 */
export class LocalSharding implements Sharding {
  private host?: EntityHost;
  private readonly pending = new Map<ReplyTo, { resolve(v: unknown): void; reject(e: unknown): void; timer: NodeJS.Timeout }>();
  private replySeq = 0;

  /** `check`: every message goes through the seam codec (seam-check.ts). */
  constructor(readonly node: string, private readonly check = false) {}

  /** The regions that host this node's entities (they are built after sharding: their entities use it). */
  serve(host: EntityHost): void {
    this.host = host;
  }

  tell<T extends EntityType>(type: T, id: string, msg: EntityMessages[T]): void {
    if (!this.host) throw new Error('sharding: no entity host yet');
    this.host.deliver(type, id, this.check ? throughCodec({ k: 'entity', type, id, msg }).msg as EntityMessages[T] : msg);
  }

  ask<T extends EntityType, R>(type: T, id: string, build: (reply: ReplyTo) => EntityMessages[T], timeoutMs = DEFAULT_ASK_TIMEOUT_MS): Promise<R> {
    const reply = `${this.node}:${++this.replySeq}`;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(reply);
        reject(new ParleyError('timeout', `${type} did not answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(reply, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.tell(type, id, build(reply));
    });
  }

  reply(to: ReplyTo, result: Reply): void {
    const p = this.pending.get(to);
    if (!p) return; // the asker timed out
    this.pending.delete(to);
    clearTimeout(p.timer);
    const r = this.check ? throughCodec({ k: 'reply', to, result }).result : result;
    if (r.ok) p.resolve(r.value);
    else p.reject(new ParleyError(r.error.code, r.error.message, r.error.retryAfterMs));
  }

  /** Asks not answered yet. */
  get asking(): number {
    return this.pending.size;
  }

  stop(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
  }
}
