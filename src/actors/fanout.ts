import type { UserId } from '../protocol/ids.js';
import type { UserDeliver } from './messages.js';

/** A stored message whose inbox writes are not all confirmed yet. */
/** `ok` is false when the fan-out was abandoned (its conversation entity crashed): the sender must resend. */
export type Done = (ok: boolean) => void;
interface Pending { deliver: UserDeliver; waiting: Set<UserId>; done: Done[]; due: number; backoff: number }

/**
 * A conversation's fan-out: each stored message goes to every recipient's user entity, which writes it
 * into each device's inbox and confirms. The sender's `sent` tick waits for those confirmations, so a
 * message acked as sent is in every recipient's inbox — a crash in between leaves it unacked, and the
 * client's resend (same cid) fans it out again. Unconfirmed deliveries are retried, flagged as
 * redeliveries so the user entity writes nothing twice.
 */
export class FanOut {
  /** In seq order: fan-outs start when their writes resolve, and writes resolve in seq order. */
  private readonly pending = new Map<number, Pending>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly send: (user: UserId, deliver: UserDeliver) => void,
    private readonly retryMs = 5000,
  ) {}

  start(deliver: UserDeliver, recipients: UserId[], done: Done): void {
    if (recipients.length === 0) return done(true);
    this.pending.set(deliver.seq, { deliver, waiting: new Set(recipients), done: [done], due: Date.now() + this.retryMs, backoff: this.retryMs });
    for (const u of recipients) this.send(u, deliver);
    this.timer ??= setInterval(() => this.retry(), Math.min(this.retryMs, 1000)).unref();
  }

  /** Runs `f` once `seq` is fully fanned out; false if it isn't fanning out (done long ago, or never). */
  whenDone(seq: number, f: Done): boolean {
    const p = this.pending.get(seq);
    if (p) p.done.push(f);
    return p !== undefined;
  }

  /** `user` wrote these seqs to all its devices' inboxes. */
  confirm(user: UserId, seqs: number[]): void {
    for (const seq of seqs) {
      const p = this.pending.get(seq);
      if (!p?.waiting.delete(user) || p.waiting.size > 0) continue;
      this.pending.delete(seq);
      for (const f of p.done) f(true);
    }
  }

  get idle(): boolean {
    return this.pending.size === 0;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Gives up every fan-out in progress (the conversation entity is going away). */
  abandon(): void {
    this.stop();
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) for (const f of p.done) f(false);
  }

  /** Backs off (×2, up to a minute) so that an overloaded node is not handed its own work twice. */
  private retry(): void {
    // The timer outlives one fan-out (a timer per message would cost more than the message); it stops here.
    if (this.pending.size === 0) return this.stop();
    const now = Date.now();
    for (const p of this.pending.values()) {
      if (p.due > now) continue;
      p.backoff = Math.min(p.backoff * 2, 60_000);
      p.due = now + p.backoff;
      for (const u of p.waiting) this.send(u, { ...p.deliver, redelivery: true });
    }
  }
}
