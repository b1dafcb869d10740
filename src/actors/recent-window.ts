import type { UserId } from '../protocol/ids.js';
import type { MessageKind } from '../protocol/frames.js';

/**
 * The envelope of a conversation's last N messages, by seq, in a ring: who sent it and what kind it is.
 * Receipts and edits consult it instead of the store; older seqs fall back to the store.
 */
export class RecentWindow {
  private readonly seqs: Float64Array;
  private readonly from: (UserId | undefined)[];
  private readonly kinds: (MessageKind | undefined)[];
  private readonly deleted: Uint8Array;

  constructor(readonly size = 2048) {
    this.seqs = new Float64Array(size).fill(-1);
    this.from = new Array(size);
    this.kinds = new Array(size);
    this.deleted = new Uint8Array(size);
  }

  add(seq: number, from: UserId, kind: MessageKind): void {
    const i = seq % this.size;
    this.seqs[i] = seq;
    this.from[i] = from;
    this.kinds[i] = kind;
    this.deleted[i] = 0;
  }

  markDeleted(seq: number): void {
    const i = seq % this.size;
    if (this.seqs[i] === seq) this.deleted[i] = 1;
  }

  get(seq: number): { from: UserId; kind: MessageKind; deleted: boolean } | undefined {
    const i = seq % this.size;
    return this.seqs[i] === seq ? { from: this.from[i]!, kind: this.kinds[i]!, deleted: this.deleted[i] === 1 } : undefined;
  }

  /** Distinct senders of seqs in (after, upTo], or undefined if part of that range is not held. */
  sendersIn(after: number, upTo: number): Set<UserId> | undefined {
    if (upTo - after > this.size) return undefined;
    const out = new Set<UserId>();
    for (let s = after + 1; s <= upTo; s++) {
      const e = this.get(s);
      if (!e) return undefined;
      out.add(e.from);
    }
    return out;
  }
}
