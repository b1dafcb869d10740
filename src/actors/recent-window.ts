import type { UserId } from '../protocol/ids.js';
import type { MessageKind } from '../protocol/frames.js';

const INITIAL = 16;

/**
 * The envelope of a conversation's last N messages, by seq, in a ring: who sent it and what kind it is.
 * Receipts and edits consult it instead of the store; older seqs fall back to the store. The ring starts
 * small and doubles as seqs arrive, up to `size`: most conversations hold a few messages at a time, and a
 * full-size ring for each would cost ~40 KB per live conversation.
 */
export class RecentWindow {
  private capacity = INITIAL;
  private seqs = new Float64Array(INITIAL).fill(-1);
  private from: (UserId | undefined)[] = new Array(INITIAL);
  private kinds: (MessageKind | undefined)[] = new Array(INITIAL);
  private deleted = new Uint8Array(INITIAL);
  private lowest = -1;

  constructor(readonly size = 2048) {}

  add(seq: number, from: UserId, kind: MessageKind): void {
    if (this.lowest < 0) this.lowest = seq;
    while (seq - this.lowest >= this.capacity && this.capacity < this.size) this.grow();
    const i = seq % this.capacity;
    this.seqs[i] = seq;
    this.from[i] = from;
    this.kinds[i] = kind;
    this.deleted[i] = 0;
  }

  markDeleted(seq: number): void {
    const i = seq % this.capacity;
    if (this.seqs[i] === seq) this.deleted[i] = 1;
  }

  get(seq: number): { from: UserId; kind: MessageKind; deleted: boolean } | undefined {
    const i = seq % this.capacity;
    return this.seqs[i] === seq ? { from: this.from[i]!, kind: this.kinds[i]!, deleted: this.deleted[i] === 1 } : undefined;
  }

  /** Distinct senders of seqs in (after, upTo], or undefined if part of that range is not held. */
  sendersIn(after: number, upTo: number): Set<UserId> | undefined {
    if (upTo - after > this.capacity) return undefined;
    const out = new Set<UserId>();
    for (let s = after + 1; s <= upTo; s++) {
      const e = this.get(s);
      if (!e) return undefined;
      out.add(e.from);
    }
    return out;
  }

  private grow(): void {
    const old = { seqs: this.seqs, from: this.from, kinds: this.kinds, deleted: this.deleted };
    this.capacity = Math.min(this.capacity * 2, this.size);
    this.seqs = new Float64Array(this.capacity).fill(-1);
    this.from = new Array(this.capacity);
    this.kinds = new Array(this.capacity);
    this.deleted = new Uint8Array(this.capacity);
    for (let j = 0; j < old.seqs.length; j++) {
      const seq = old.seqs[j]!;
      if (seq < 0) continue;
      const i = seq % this.capacity;
      this.seqs[i] = seq;
      this.from[i] = old.from[j];
      this.kinds[i] = old.kinds[j];
      this.deleted[i] = old.deleted[j]!;
    }
  }
}
