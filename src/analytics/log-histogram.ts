/** Buckets per doubling: each bucket is 2^(1/4) ≈ 19% wide, so a percentile is within ±9% of the truth. */
const PER_DOUBLING = 4;
/** Bucket 0 is below 1 ms; the last holds everything from 2^24 ms (4.7 hours) up. */
export const LOG_BUCKETS = 24 * PER_DOUBLING + 2;

/** The bucket of a latency in ms: 0 below 1 ms, then 4 per doubling. */
export function bucketOf(ms: number): number {
  if (!(ms >= 1)) return 0;
  return Math.min(LOG_BUCKETS - 1, 1 + Math.floor(Math.log2(ms) * PER_DOUBLING));
}

/** A bucket's geometric middle, in ms: what a percentile falling in it reads as. */
export function bucketValue(b: number): number {
  if (b === 0) return 0.5;
  return 2 ** ((b - 1 + 0.5) / PER_DOUBLING);
}

/**
 * Latencies in log-spaced buckets: recording is an increment, histograms of nodes and days merge by adding
 * counts, and a percentile is read from the cumulative counts (the bucket's middle, ±9%).
 */
export class LogHistogram {
  readonly counts: Float64Array;

  constructor(counts?: ArrayLike<number>) {
    this.counts = new Float64Array(LOG_BUCKETS);
    if (counts) for (let i = 0; i < Math.min(counts.length, LOG_BUCKETS); i++) this.counts[i] = counts[i]!;
  }

  record(ms: number): void {
    this.counts[bucketOf(ms)]!++;
  }

  merge(other: LogHistogram): void {
    for (let i = 0; i < LOG_BUCKETS; i++) this.counts[i]! += other.counts[i]!;
  }

  count(): number {
    let n = 0;
    for (const c of this.counts) n += c;
    return n;
  }

  /** The q-th quantile (0 < q ≤ 1) in ms, rounded to 0.1 ms; undefined with no observations. */
  percentile(q: number): number | undefined {
    const n = this.count();
    if (n === 0) return undefined;
    const rank = Math.ceil(q * n);
    let acc = 0;
    for (let i = 0; i < LOG_BUCKETS; i++) {
      acc += this.counts[i]!;
      if (acc >= rank) return Math.round(bucketValue(i) * 10) / 10;
    }
    return Math.round(bucketValue(LOG_BUCKETS - 1) * 10) / 10;
  }
}
