/**
 * Writes in flight, in the order they were issued (seq order), and what each one came to. A store may
 * complete them in any order (ScyllaDB does); `settle` releases only the prefix whose outcomes are all known,
 * so whatever follows a write (its fan-out, its tick) happens in seq order: n+1 waits until n is stored or
 * has failed. Pure: the conversation entity feeds it the outcomes that come back into its mailbox.
 */
export interface Landed<T, O> { seq: number; value: T; outcome: O }

interface Slot<T, O> { seq: number; value: T; outcome?: O; settled: boolean }

export class ReorderBuffer<T, O> {
  private slots: Slot<T, O>[] = [];
  private head = 0;

  /** A write issued for `seq`; seqs must be added in increasing order. */
  add(seq: number, value: T): void {
    const last = this.slots[this.slots.length - 1];
    if (last && last.seq >= seq) throw new Error(`seq ${seq} issued after ${last.seq}`);
    this.slots.push({ seq, value, outcome: undefined, settled: false });
  }

  /** The value of a write still in the buffer (issued, not yet released), by seq. */
  get(seq: number): T | undefined {
    return this.find(seq)?.value;
  }

  /**
   * Records what write `seq` came to and returns what is now released, in seq order (empty while an earlier
   * write is outstanding). An unknown or already settled seq changes nothing.
   */
  settle(seq: number, outcome: O): Landed<T, O>[] {
    const s = this.find(seq);
    if (!s || s.settled) return [];
    s.outcome = outcome;
    s.settled = true;
    const out: Landed<T, O>[] = [];
    while (this.head < this.slots.length && this.slots[this.head]!.settled) {
      const h = this.slots[this.head++]!;
      out.push({ seq: h.seq, value: h.value, outcome: h.outcome as O });
    }
    if (this.head === this.slots.length) {
      this.slots = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.slots.length) {
      this.slots = this.slots.slice(this.head); // amortised: a long-lived backlog doesn't keep its released prefix
      this.head = 0;
    }
    return out;
  }

  /** Writes issued and not yet released. */
  get size(): number {
    return this.slots.length - this.head;
  }

  /** Every write not yet released, in seq order, left in place. */
  pending(): T[] {
    return this.slots.slice(this.head).map((s) => s.value);
  }

  /** Takes every write not yet released, in seq order (the entity is going away). */
  clear(): T[] {
    const rest = this.slots.slice(this.head).map((s) => s.value);
    this.slots = [];
    this.head = 0;
    return rest;
  }

  /** Binary search: seqs ascend. */
  private find(seq: number): Slot<T, O> | undefined {
    let lo = this.head;
    let hi = this.slots.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.slots[mid]!;
      if (s.seq === seq) return s;
      if (s.seq < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }
}
