import type { UserId } from '../protocol/ids.js';
import type { UserDeliver } from '../messages/entity-messages.js';

/**
 * How a fan-out went, for whoever waits on it: `done`, every recipient holds the message; `abandoned`, its
 * conversation entity went away (the sender must resend); `slow`, still not done after SLOW_MS, said once
 * per waiter while it goes on (the sender hears something, and a resend of the same cid waits again).
 */
export type Outcome = 'done' | 'abandoned' | 'slow';
export type Done = (outcome: Outcome) => void;
/** A stored message whose inbox writes are not all confirmed yet, and who waits on it (until `slowAt`). */
interface Pending { deliver: UserDeliver; waiting: Set<UserId>; done: { f: Done; slowAt: number }[]; due: number; backoff: number }

/** An unconfirmed delivery is sent again after this, then after twice as long, up to a minute. */
export const RETRY_MS = 5000;
/**
 * A sender waits at most this long without an answer: an inbox write can wait that long only on a store
 * that doesn't answer, and until it does the sender would hear nothing. Past the first retry, so a
 * delivery lost with a crashed user entity is redelivered and ticked without a false alarm.
 */
export const SLOW_MS = 7000;

/**
 * A conversation's fan-out: each stored message goes to every recipient's user entity, which writes it
 * into each device's inbox and confirms. The sender's `sent` tick waits for those confirmations, so a
 * message acked as sent is in every recipient's inbox — a crash in between leaves it unacked, and the
 * client's resend (same cid) fans it out again. Unconfirmed deliveries are retried, flagged as
 * redeliveries so the user entity writes nothing twice.
 */
export class FanOut {
  /** New fan-outs start in seq order (the conversation releases stored writes in order); redeliveries anywhere. */
  private readonly pending = new Map<number, Pending>();
  private timer?: NodeJS.Timeout;
  private abandoned = false;

  /**
   * `wake` is all the timer does: the conversation's asks the entity for a turn, in which it calls `retry` —
   * so retries run inside the entity's turn, and a disposed entity (`abandon`) has no timer left. Without
   * one, the timer retries itself.
   */
  constructor(
    private readonly send: (user: UserId, deliver: UserDeliver) => void,
    private readonly retryMs = RETRY_MS,
    private readonly slowMs = SLOW_MS,
    private readonly wake: () => void = () => this.retry(),
  ) {}

  start(deliver: UserDeliver, recipients: UserId[], done: Done): void {
    if (recipients.length === 0) return done('done');
    if (this.abandoned) return done('abandoned'); // its entity is gone: no fan-out, no timer
    // Already fanning out (a resend whose cid memory had forgotten): wait on it rather than replace its waiters.
    if (this.whenDone(deliver.seq, done)) return;
    const now = Date.now();
    this.pending.set(deliver.seq, { deliver, waiting: new Set(recipients), done: [{ f: done, slowAt: now + this.slowMs }], due: now + this.retryMs, backoff: this.retryMs });
    for (const u of recipients) this.send(u, deliver);
    this.timer ??= setInterval(this.wake, Math.min(this.retryMs, this.slowMs, 1000)).unref();
  }

  /** Runs `f` once `seq` is fully fanned out; false if it isn't fanning out (done long ago, or never). */
  whenDone(seq: number, f: Done): boolean {
    const p = this.pending.get(seq);
    if (p) p.done.push({ f, slowAt: Date.now() + this.slowMs });
    return p !== undefined;
  }

  /** `user` wrote these seqs to all its devices' inboxes. */
  confirm(user: UserId, seqs: number[]): void {
    for (const seq of seqs) {
      const p = this.pending.get(seq);
      if (!p?.waiting.delete(user) || p.waiting.size > 0) continue;
      this.pending.delete(seq);
      for (const w of p.done) w.f('done');
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
    this.abandoned = true;
    this.stop();
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) for (const w of p.done) w.f('abandoned');
  }

  /**
   * Called in the entity's turn after a `wake`: slow notices, and redeliveries of what is still unconfirmed,
   * backing off (×2, up to a minute) so that an overloaded node is not handed its own work twice.
   */
  retry(): void {
    // The timer outlives one fan-out (a timer per message would cost more than the message); it stops here.
    if (this.pending.size === 0) return this.stop();
    const now = Date.now();
    for (const p of this.pending.values()) {
      for (const w of p.done) if (w.slowAt <= now) { w.slowAt = Infinity; w.f('slow'); }
      if (p.due > now) continue;
      p.backoff = Math.min(p.backoff * 2, 60_000);
      p.due = now + p.backoff;
      for (const u of p.waiting) this.send(u, { ...p.deliver, redelivery: true });
    }
  }
}
