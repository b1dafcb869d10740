import { ParleyError } from '../protocol/errors.js';
import type { Reply, ReplyTo } from '../messages/seam.js';

/**
 * A node's asks waiting for their answers, by reply address (`<node>:<n>`): what every Sharding adapter
 * keeps. An answer that comes after its ask timed out finds nothing and is dropped.
 */
export class PendingAsks {
  private readonly pending = new Map<ReplyTo, { resolve(v: unknown): void; reject(e: unknown): void; timer: NodeJS.Timeout }>();
  private seq = 0;

  constructor(private readonly node: string) {}

  /** A fresh reply address, and the promise its answer settles (rejected `timeout` after `timeoutMs`). */
  open<R>(what: string, timeoutMs: number): { reply: ReplyTo; answer: Promise<R> } {
    const reply = `${this.node}:${++this.seq}`;
    const answer = new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(reply);
        reject(new ParleyError('timeout', `${what} did not answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(reply, { resolve: resolve as (v: unknown) => void, reject, timer });
    });
    return { reply, answer };
  }

  settle(to: ReplyTo, r: Reply): void {
    const p = this.pending.get(to);
    if (!p) return;
    this.pending.delete(to);
    clearTimeout(p.timer);
    if (r.ok) p.resolve(r.value);
    else p.reject(new ParleyError(r.error.code, r.error.message, r.error.retryAfterMs));
  }

  /** The node named in a reply address. */
  static nodeOf(to: ReplyTo): string {
    return to.slice(0, to.lastIndexOf(':'));
  }

  get size(): number {
    return this.pending.size;
  }

  stop(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
  }
}
