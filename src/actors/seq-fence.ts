/**
 * The seqs one activation of a conversation may hand out: those reserved in the store under its epoch
 * (Store.claimEpoch / reserve). It starts above everything any earlier activation reserved, not above the
 * last *stored* seq, since an earlier activation (crashed, or on another node) may still have writes in
 * flight up to its reservation. Blocks are reserved ahead and renewed halfway, so a consensus round is paid
 * once per activation and once per block, never per message. Pure state: the entity does the store calls.
 */
export const SEQ_BLOCK = 1000;

export class SeqFence {
  /** A renewal is in flight (one at a time). */
  renewing = false;
  /** Another activation took over: this one hands out nothing more. */
  stale = false;

  /** `reserved`: what this activation may use up to (at first: nothing above where it starts). */
  constructor(readonly epoch: number, public reserved: number) {}

  /** Whether seq `next` lies in this activation's reservation. */
  covers(next: number): boolean {
    return !this.stale && next <= this.reserved;
  }

  /** The mark to renew to once seq `last` is handed out, if a renewal should start now (past half the block). */
  renewal(last: number): number | undefined {
    if (this.stale || this.renewing || last <= this.reserved - SEQ_BLOCK / 2) return undefined;
    this.renewing = true;
    return last + SEQ_BLOCK;
  }

  /** A reservation up to `upTo` is durable (never lowers the mark: renewals may complete in any order). */
  reservedUpTo(upTo: number): void {
    if (upTo > this.reserved) this.reserved = upTo;
  }
}
