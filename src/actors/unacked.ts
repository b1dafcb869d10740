/**
 * A device's deliveries pushed to its socket and not acked yet, in ptr order. A queue, since an ack takes
 * them from the head: a Map drained by deletes rehashes its table as it empties, which profiled as the
 * largest self time of a group fan-out's ack path.
 */
export class Unacked<D extends { ptr: number }> {
  private items: (D | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  /** Adds a delivery. One at or below the newest (a sync sending again what it had sent) goes in its place. */
  add(d: D): void {
    const { items } = this;
    if (this.size === 0 || d.ptr > items[items.length - 1]!.ptr) {
      items.push(d);
      return;
    }
    let lo = this.head;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (items[mid]!.ptr < d.ptr) lo = mid + 1;
      else hi = mid;
    }
    if (items[lo]!.ptr === d.ptr) items[lo] = d;
    else items.splice(lo, 0, d);
  }

  /** The oldest delivery not acked. */
  first(): D | undefined {
    return this.items[this.head];
  }

  /** Removes the oldest. */
  shift(): void {
    if (this.size === 0) return;
    this.items[this.head++] = undefined; // not kept alive by the queue
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  *values(): IterableIterator<D> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!;
  }
}
