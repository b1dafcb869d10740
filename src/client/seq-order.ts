/**
 * Where a received message goes, per conversation: `message` when its seq is above every seq already emitted
 * for its conversation (a gap is not waited for), `late` when below (its first delivery was interrupted by a
 * crash and it came again on its sender's resend). Remembers the `max` most recently active conversations;
 * one forgotten starts afresh. Pure, no I/O: the SDK asks it once per new (conv, seq).
 */
export class SeqOrder {
  private readonly top = new Map<string, number>();

  constructor(private readonly max = 10_000) {}

  place(conv: string, seq: number): 'message' | 'late' {
    const top = this.top.get(conv);
    if (top !== undefined && seq < top) return 'late';
    this.top.delete(conv); // re-inserted: the map's order is by last activity
    this.top.set(conv, seq);
    if (this.top.size > this.max) this.top.delete(this.top.keys().next().value!);
    return 'message';
  }
}
