/**
 * One timer for many entities' delayed work (deferred inbox writes, lazy ack and cursor stores): an entity
 * joins when it has some, and `sweep` is called for it every `everyMs` until it returns false. A timer per
 * entity would cost an allocation per arm and an object per idle connection.
 */
export class Sweeper<T> {
  private readonly due = new Set<T>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly everyMs: number, private readonly sweep: (item: T, now: number) => boolean) {}

  add(item: T): void {
    this.due.add(item);
    this.timer ??= setInterval(() => this.run(), this.everyMs).unref();
  }

  delete(item: T): void {
    this.due.delete(item);
  }

  private run(): void {
    const now = Date.now();
    for (const item of this.due) if (!this.sweep(item, now)) this.due.delete(item);
    if (this.due.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
