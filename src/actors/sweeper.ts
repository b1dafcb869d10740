/**
 * One timer for many entities' delayed work (deferred inbox writes, lazy ack and cursor stores): an entity
 * joins when it has some and `sweep` is called for it `periodMs` later, again every `periodMs` for as long
 * as it returns true. The timer ticks every `tickMs` and takes only the entities due, so a thousand entities
 * joined within a second are swept in slices, not in one burst that would stall the event loop. A timer per
 * entity would cost an allocation per arm and an object per idle connection.
 */
export class Sweeper<T> {
  /** Insertion order is due order: every entity waits the same period. */
  private readonly due = new Map<T, number>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly periodMs: number,
    private readonly tickMs: number,
    private readonly sweep: (item: T, now: number) => boolean,
  ) {}

  add(item: T): void {
    if (this.due.has(item)) return;
    this.due.set(item, Date.now() + this.periodMs);
    this.timer ??= setInterval(() => this.run(), this.tickMs).unref();
  }

  delete(item: T): void {
    this.due.delete(item);
  }

  private run(): void {
    const now = Date.now();
    for (const [item, at] of this.due) {
      if (at > now) break;
      this.due.delete(item);
      if (this.sweep(item, now)) this.due.set(item, now + this.periodMs);
    }
    if (this.due.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
