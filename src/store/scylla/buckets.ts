/**
 * Pure arithmetic for the Scylla store: time buckets, TTLs and write timestamps used as registers.
 * Nothing here touches the driver, so it is cheap to test and to reason about.
 */

export const DAY_MS = 86_400_000;

/** A message's bucket is the start (ms since the epoch) of the fixed-width window that holds its ts. */
export function bucketOf(ts: number, bucketMs: number = DAY_MS): number {
  return Math.floor(ts / bucketMs) * bucketMs;
}

/** Cassandra and ScyllaDB cap a TTL at 20 years. */
export const MAX_TTL_SECONDS = 630_720_000;

/**
 * Seconds until `expiresAt`, rounded up, for `USING TTL`: at least 1 (0 would mean "never expires"),
 * at most the database's cap. Readers still compare `expiresAt` with the clock, so rounding up is exact.
 */
export function ttlUntil(expiresAt: number, now: number = Date.now()): number {
  const s = Math.ceil((expiresAt - now) / 1000);
  return Math.min(Math.max(s, 1), MAX_TTL_SECONDS);
}

/**
 * Write timestamps as registers. A cell keeps the value written with the highest timestamp, whatever the
 * order writes arrive in, so writing `v` with timestamp `v` makes the cell a max-register and writing it
 * with `MIN_REGISTER_BASE - v` a min-register: no read-before-write, no lightweight transaction.
 * MIN_REGISTER_BASE is 2^50 µs (the year 2005): every value we store is far below it, and the
 * timestamps stay in the past, clear of any "timestamp in the future" guardrail.
 */
export const MIN_REGISTER_BASE = 2 ** 50;
export const maxRegisterTimestamp = (v: number): number => v;
export const minRegisterTimestamp = (v: number): number => MIN_REGISTER_BASE - v;

/** Partitions of the remembered conversations: a conversation's is a hash of its id (FNV-1a) modulo this. */
export const REMEMBER_SHARDS = 256;
export function rememberShard(conv: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < conv.length; i++) h = Math.imul(h ^ conv.charCodeAt(i), 0x01000193);
  return (h >>> 0) % REMEMBER_SHARDS;
}
