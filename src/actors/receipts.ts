import type { UserId } from '../protocol/ids.js';

/**
 * "Delivered to all" / "read by all" in a group: the highest W such that every message up to W has reached
 * every member except its own sender. With c1 ≤ c2 the two lowest member cursors (m1 holding c1), a seq
 * s > c1 is covered only while s ≤ c2 and m1 sent it. Pure, O(members + advance).
 */
export function allWatermark(
  previous: number,
  cursorOf: (u: UserId) => number,
  members: Iterable<UserId>,
  senderOf: (seq: number) => UserId | undefined,
  lastSeq: number,
): number {
  let c1 = Infinity, c2 = Infinity, m1: UserId | undefined;
  for (const m of members) {
    const c = cursorOf(m);
    if (c < c1) { c2 = c1; c1 = c; m1 = m; } else if (c < c2) c2 = c;
  }
  if (c1 === Infinity) return previous;
  let w = Math.max(previous, Math.min(c1, lastSeq));
  while (w < lastSeq && w + 1 <= c2 && senderOf(w + 1) === m1) w++;
  return w;
}
