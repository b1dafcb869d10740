/**
 * How a sync page is cut to what a socket can take. A page of large messages written at once overflowed the
 * socket's send buffer (1,000 × 32 KiB against a 1 MiB cap), so the user entity sends a slice the socket has
 * room for, and the next when its buffer has drained; these are the pure parts of that.
 */

/** Bytes a delivery frame adds to its packed message (map header, `t`, `ptr`, `m`). */
export const DELIVERY_OVERHEAD = 24;
/** The size assumed of an entry before any was read: one read stays small if they are all large. */
export const FIRST_AVG_BYTES = 16 * 1024;

/** How many entries to read next: about what fits in `room` at the average size seen; at least 1, at most `left`. */
export function readCount(room: number, avgBytes: number, left: number): number {
  return Math.max(1, Math.min(left, Math.ceil(room / Math.max(1, avgBytes))));
}

/** The average entry size after a read of `entries` (frame bytes), for the next read. */
export function averageBytes(entries: { packed: Uint8Array }[]): number {
  let sum = 0;
  for (const e of entries) sum += e.packed.byteLength + DELIVERY_OVERHEAD;
  return entries.length ? sum / entries.length : FIRST_AVG_BYTES;
}

/**
 * Entries a sync starting after `start` would send a device again: those it was sent before (up to
 * `sentMax`, on any socket) and has not acked, up to a page. A client syncs from the last ptr it received,
 * so for a well-behaved one this is only what was lost in flight when a socket dropped.
 */
export function resendCount(start: number, sentMax: number, page: number): number {
  return Math.max(0, Math.min(page, sentMax - start));
}
