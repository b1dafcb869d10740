import type { UserId } from '../protocol/ids.js';
import type { UserDeliver } from '../messages/entity-messages.js';

/** A stored message whose inbox writes are not all confirmed yet, and when it is next sent again. */
interface Pending { deliver: UserDeliver; waiting: Set<UserId>; due: number; backoff: number }

/**
 * An unconfirmed delivery is sent again after this, then after twice as long, up to 15 s: often enough that a
 * message ticked just before a store outage reaches its recipients soon after the store is back (the sender,
 * ticked, will not resend it), rarely enough that an overloaded node is not handed its own work twice.
 */
export const RETRY_MS = 5000;
const MAX_BACKOFF_MS = 15_000;

/**
 * A conversation's fan-out: each stored message goes to every recipient's user entity, which writes it into
 * each device's inbox (or has it acked) and confirms. Unconfirmed deliveries are retried, flagged as
 * redeliveries so the user entity writes nothing twice. Nobody waits on it: the sender was ticked when the
 * log write landed, and what a crash interrupts is re-driven from the log by the next owner, from the
 * conversation's fan-out mark (`mark`), below which every message is confirmed.
 */
export class FanOut {
  /** New fan-outs start in seq order (the conversation releases stored writes in order); redeliveries anywhere. */
  private readonly pending = new Map<number, Pending>();
  private timer?: NodeJS.Timeout;
  private abandoned = false;
  /** Users whose account is erased: no fan-out waits for them (their entity will never confirm). */
  private excluded?: Set<UserId>;

  /**
   * `wake` is all the timer does: the conversation asks the entity for a turn, in which it calls `retry` —
   * so retries run inside the entity's turn, and a disposed entity (`abandon`) has no timer left. Without
   * one, the timer retries itself.
   */
  constructor(
    private readonly send: (user: UserId, deliver: UserDeliver) => void,
    private readonly retryMs = RETRY_MS,
    private readonly wake: () => void = () => this.retry(),
  ) {}

  start(deliver: UserDeliver, recipients: UserId[]): void {
    // Its entity is gone, or it is fanning out already (a resend found in the store while the log is re-driven).
    if (this.excluded) recipients = recipients.filter((u) => !this.excluded!.has(u));
    if (recipients.length === 0 || this.abandoned || this.pending.has(deliver.seq)) return;
    this.pending.set(deliver.seq, { deliver, waiting: new Set(recipients), due: Date.now() + this.retryMs, backoff: this.retryMs });
    for (const u of recipients) this.send(u, deliver);
    this.timer ??= setInterval(this.wake, Math.min(this.retryMs, 1000)).unref();
  }

  /** `user` wrote these seqs to all its devices' inboxes (or its devices acked them). */
  confirm(user: UserId, seqs: number[]): void {
    for (const seq of seqs) {
      const p = this.pending.get(seq);
      if (p?.waiting.delete(user) && p.waiting.size === 0) this.pending.delete(seq);
    }
  }

  /** An erased user: nothing pending or started from now on waits for it. */
  exclude(user: UserId): void {
    (this.excluded ??= new Set()).add(user);
    for (const [seq, p] of this.pending) if (p.waiting.delete(user) && p.waiting.size === 0) this.pending.delete(seq);
  }

  /** The fan-out mark: nothing at or below it is pending, given every seq up to `released` has been started. */
  mark(released: number): number {
    let low = Infinity;
    for (const seq of this.pending.keys()) if (seq < low) low = seq;
    return Math.min(released, low - 1);
  }

  get idle(): boolean {
    return this.pending.size === 0;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Gives up every fan-out in progress (the conversation entity is going away; its successor re-drives them
   * from the mark). What was pending stays so: the mark never claims a delivery nobody confirmed.
   */
  abandon(): void {
    this.abandoned = true;
    this.stop();
  }

  /**
   * Called in the entity's turn after a `wake`: redeliveries of what is still unconfirmed, backing off (×2, up
   * to MAX_BACKOFF_MS).
   */
  retry(): void {
    // The timer outlives one fan-out (a timer per message would cost more than the message); it stops here.
    if (this.pending.size === 0 || this.abandoned) return this.stop();
    const now = Date.now();
    for (const p of this.pending.values()) {
      if (p.due > now) continue;
      p.backoff = Math.min(p.backoff * 2, MAX_BACKOFF_MS);
      p.due = now + p.backoff;
      for (const u of p.waiting) this.send(u, { ...p.deliver, redelivery: true });
    }
  }
}
