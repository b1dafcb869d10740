/** A token bucket: `burst` frames at once, refilled at `perSecond`. Pure apart from the clock passed in. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(private readonly perSecond: number, private readonly burst: number, now: number) {
    this.tokens = burst;
    this.last = now;
  }
  take(now: number, cost = 1): boolean {
    this.refill(now);
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }
  /** How long until `cost` tokens are there again (0: now). */
  waitMs(now: number, cost = 1): number {
    this.refill(now);
    return this.tokens >= cost ? 0 : Math.ceil(((cost - this.tokens) * 1000) / this.perSecond);
  }
  /** Gives back `cost` taken for something that did not happen after all (never above the burst). */
  refund(now: number, cost = 1): void {
    this.refill(now);
    this.tokens = Math.min(this.burst, this.tokens + cost);
  }
  /** True once the bucket is full again: nothing is lost by forgetting it. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }
  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
  }
}

export interface Rate { perSecond: number; burst: number }

/** How often a limiter forgets its full buckets. */
export const SWEEP_MS = 10_000;

/**
 * One token bucket per key (an IP address, a phone number, an API key, a user). Memory is bounded: past
 * `maxKeys` the least recently used key is forgotten, which at worst gives that key a fresh burst; full
 * buckets are dropped as they are met, and every SWEEP_MS all of them, so a key that went quiet costs
 * nothing (a bucket per connected user and device was ~200 B of an idle connection's 4.6 KB). A Map
 * keeps insertion order, and a key is re-inserted on every use, so the first key is the least recently used.
 */
export class KeyedLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private sweeper?: ReturnType<typeof setTimeout>;
  /** `clock`: the time callers pass to `take`, read by the sweep. */
  constructor(private readonly rate: Rate, private readonly maxKeys = 100_000, private readonly clock: () => number = Date.now) {}

  /** Takes `cost` from the key's bucket; on refusal, how long to wait (ms), else 0. */
  take(key: string, now: number, cost = 1): number {
    let b = this.buckets.get(key);
    if (b) this.buckets.delete(key);
    else {
      b = new TokenBucket(this.rate.perSecond, this.rate.burst, now);
      if (this.buckets.size >= this.maxKeys) this.evict(now);
    }
    this.buckets.set(key, b);
    this.sweeper ??= setTimeout(() => this.sweep(), SWEEP_MS).unref();
    return b.take(now, cost) ? 0 : Math.max(1, b.waitMs(now, cost));
  }

  /** Forgets every full bucket (nothing is lost: a new one starts full); armed again while any is left. */
  private sweep(): void {
    this.sweeper = undefined;
    const now = this.clock();
    for (const [k, b] of this.buckets) if (b.full(now)) this.buckets.delete(k);
    if (this.buckets.size) this.sweeper = setTimeout(() => this.sweep(), SWEEP_MS).unref();
  }

  /**
   * Gives back what `take` took (a reservation that was not used: the request failed for another reason).
   * A key forgotten since has a full bucket already, so there is nothing to give back.
   */
  refund(key: string, now: number, cost = 1): void {
    this.buckets.get(key)?.refund(now, cost);
  }

  get size(): number { return this.buckets.size; }

  private evict(now: number): void {
    let n = 0;
    for (const [k, b] of this.buckets) {
      if (n++ === 0 || b.full(now)) this.buckets.delete(k);
      if (n >= 16) break; // bounded work per insert
    }
  }
}
