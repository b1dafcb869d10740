/**
 * How long messages stay in a conversation's history (PARLEY_RETENTION): `forever` (the default), `<N>d`
 * (N days after they were sent: Scylla by TTL, LMDB by a sweep), or `transient` (deleted once every
 * recipient device has them: acked, or in its inbox, which is what the fan-out mark says).
 */
export type Retention = { mode: 'forever' } | { mode: 'days'; ms: number } | { mode: 'transient' };

const DAY_MS = 86_400_000;

/** `raw` is PARLEY_RETENTION; `msOverride` (PARLEY_RETENTION_MS, for tests) replaces N days with milliseconds. */
export function parseRetention(raw: string | undefined, msOverride?: string): Retention {
  const v = (raw ?? 'forever').trim().toLowerCase();
  if (v === '' || v === 'forever') return { mode: 'forever' };
  if (v === 'transient') return { mode: 'transient' };
  const m = /^(\d+)d$/.exec(v);
  if (!m || Number(m[1]) < 1) throw new Error(`PARLEY_RETENTION must be forever, transient or a number of days like 30d, got ${raw}`);
  const ms = msOverride !== undefined && msOverride !== '' ? Number(msOverride) : Number(m[1]) * DAY_MS;
  if (!Number.isSafeInteger(ms) || ms < 1) throw new Error(`PARLEY_RETENTION_MS must be a positive integer, got ${msOverride}`);
  return { mode: 'days', ms };
}

/** The Scylla TTL of message rows, in seconds (0: none). */
export const messageTtlSeconds = (r: Retention): number => (r.mode === 'days' ? Math.max(1, Math.ceil(r.ms / 1000)) : 0);
