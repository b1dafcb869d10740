import type { ConversationId } from '../protocol/ids.js';

/**
 * Which (conversation, seq) deliveries one user entity's inbox writes confirmed, so a redelivery (a fan-out
 * retry whose confirmation was slow) writes nothing twice. A conversation fans out in seq order, so per
 * conversation this is one contiguous run [lo, hi]: constant memory however many messages pass, where a set
 * of keys would hold one string per message. A gap (a seq not confirmed, or from before the entity loaded)
 * starts a new run, and anything outside the run is checked against the store instead.
 */
export class WrittenSeqs {
  private readonly runs = new Map<ConversationId, { lo: number; hi: number }>();

  has(conv: ConversationId, seq: number): boolean {
    const r = this.runs.get(conv);
    return r !== undefined && seq >= r.lo && seq <= r.hi;
  }

  add(conv: ConversationId, seq: number): void {
    const r = this.runs.get(conv);
    if (r === undefined) this.runs.set(conv, { lo: seq, hi: seq });
    else if (seq === r.hi + 1) r.hi = seq;
    else if (seq > r.hi + 1) { r.lo = seq; r.hi = seq; }
  }
}
