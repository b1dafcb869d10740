import type { Metric, Registry } from 'prom-client';

/** Seconds: from a fraction of a millisecond (an LMDB read, a send on a quiet node) to the 7 s send timeout. */
export const LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One label combination of a histogram: what the hot path holds and observes into. */
export class Series {
  /** Per bucket, not cumulative (the last slot is above the highest bound). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[], readonly labels: Readonly<Record<string, string>>) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/**
 * The q-quantile (0..1) of per-bucket counts over `bounds` (seconds), interpolated linearly inside its bucket as
 * Prometheus' histogram_quantile does; above the highest bound it answers that bound. Undefined without counts.
 */
export function quantile(bounds: readonly number[], counts: ArrayLike<number>, q: number): number | undefined {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return undefined;
  const rank = q * total;
  let acc = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && acc + c >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lo = i === 0 ? 0 : bounds[i - 1]!;
      return lo + (bounds[i]! - lo) * ((rank - acc) / c);
    }
    acc += c;
  }
  return bounds[bounds.length - 1];
}

interface Sample { metricName: string; labels: Record<string, string | number>; value: number }

/**
 * A Prometheus histogram for the message path, rendered by prom-client's registry like its own. Why not
 * prom-client's Histogram: its `observe` validates and hashes the labels on every call (about 1 µs here,
 * measured), and the message path observes several times per message. Here the caller holds its Series
 * (one per label combination, looked up once) and an observation is a bucket scan and three adds.
 * Label values are the caller's to bound: route patterns, operation names, outcomes, never ids.
 */
export class LatencyHistogram<L extends string = never> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
    private readonly bounds: readonly number[] = LATENCY_BUCKETS,
  ) {}

  /** Registers it with a prom-client registry, which then renders it with the rest. */
  register(registry: Registry): this {
    // The registry reads name, help, type, aggregator and get(): the shape prom-client's own metrics have.
    registry.registerMetric(this as unknown as Metric);
    return this;
  }

  /** The series for these label values (in `labelNames` order), created on first use: hold on to it. */
  child(...values: string[]): Series {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name} takes ${this.labelNames.length} label values`);
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (!s) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => { labels[n] = values[i]!; });
      s = new Series(this.bounds, labels);
      this.series.set(key, s);
    }
    return s;
  }

  /** Every series with at least one observation. */
  all(): Series[] {
    return [...this.series.values()].filter((s) => s.count > 0);
  }

  reset(): void {
    this.series.clear();
  }

  /** prom-client's metric shape: cumulative `le` buckets, then `_sum` and `_count`, per series. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const values: Sample[] = [];
    for (const s of this.all()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le }, value: acc });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: { ...s.labels }, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...s.labels }, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
