/**
 * How the SDK picks its next node and when (pure, so the schedule is tested with fake timers): after a socket
 * closes or can't connect, the next URL of the list (round robin), after a delay drawn with "full jitter"
 * (AWS Architecture Blog, "Exponential Backoff And Jitter"): uniform in [0, min(cap, base · 2^attempt)).
 * Full jitter spreads the reconnects of every client of a node that died over the whole window, instead of
 * sending them all to the next node at the same instants. `attempt` counts failures since the last welcome.
 */
export interface BackoffPolicy {
  /** The window of the first retry (default 250 ms). */
  baseMs: number;
  /** The largest window (default 10 s): no wait is ever longer. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 250, maxMs: 10_000 };

/** The window after `attempt` failures in a row (0: the first retry). */
export function backoffWindow(attempt: number, p: BackoffPolicy = DEFAULT_BACKOFF): number {
  return Math.min(p.maxMs, p.baseMs * 2 ** Math.min(attempt, 30));
}

/** A wait drawn in the window; `random` is Math.random's contract ([0, 1)). */
export function backoffDelay(attempt: number, random: () => number = Math.random, p: BackoffPolicy = DEFAULT_BACKOFF): number {
  return Math.floor(random() * backoffWindow(attempt, p));
}

/** The URL after `at` in a list of `n`. */
export const nextUrl = (at: number, n: number): number => (at + 1) % n;

/** The client's list of node URLs from its options: `urls`, else the one `url`; at least one, no blanks. */
export function nodeUrls(o: { url?: string; urls?: readonly string[] }): string[] {
  const urls = (o.urls?.length ? [...o.urls] : o.url ? [o.url] : []).map((u) => u.trim().replace(/\/+$/, ''));
  if (!urls.length || urls.some((u) => !/^(https?|wss?):\/\/[^/\s]+/.test(u))) {
    throw new Error('ParleyClient needs `url` or `urls`: http(s):// or ws(s):// addresses of nodes');
  }
  return urls;
}
