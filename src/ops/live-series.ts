import { quantile, type Series } from './latency-histogram.js';

/** What the sampler reads each tick: counts since the node started, and gauges as they are now. */
export interface LiveReading {
  connections: number;
  /** `send` frames received. */
  sends: number;
  /** `msg` frames queued to sockets. */
  deliveries: number;
  /** Error answers, on sockets and over HTTP. */
  errors: number;
  /** A send to its `sent` tick. */
  sent: Series;
  /** A message's send to a recipient device's ack. */
  delivered: Series;
  loopMaxMs: number;
  heapBytes: number;
  entities: number;
}

/** One interval of the node, as the ops console charts it: rates per second, latencies in ms (null: none). */
export interface LivePoint {
  at: number;
  connections: number;
  sendsPerSec: number;
  deliveriesPerSec: number;
  errorsPerSec: number;
  sentP50Ms: number | null;
  sentP99Ms: number | null;
  deliveredP50Ms: number | null;
  deliveredP99Ms: number | null;
  loopMaxMs: number;
  heapMb: number;
  entities: number;
}

interface Counts { at: number; sends: number; deliveries: number; errors: number; sent: Float64Array; delivered: Float64Array }

const countsOf = (r: LiveReading, at: number): Counts => ({
  at, sends: r.sends, deliveries: r.deliveries, errors: r.errors, sent: r.sent.counts.slice(), delivered: r.delivered.counts.slice(),
});

const ms = (seconds: number | undefined): number | null => (seconds === undefined ? null : Math.round(seconds * 1e4) / 10);

function quantiles(bounds: readonly number[], before: Float64Array, after: Float64Array): [number | null, number | null] {
  const d = after.map((c, i) => c - before[i]!);
  return [ms(quantile(bounds, d, 0.5)), ms(quantile(bounds, d, 0.99))];
}

/** The interval between two readings (pure). */
export function livePoint(prev: Counts, cur: Counts, r: LiveReading): LivePoint {
  const secs = Math.max(0.001, (cur.at - prev.at) / 1000);
  const rate = (a: number, b: number) => Math.round(((b - a) / secs) * 10) / 10;
  const [sentP50Ms, sentP99Ms] = quantiles(r.sent.bounds, prev.sent, cur.sent);
  const [deliveredP50Ms, deliveredP99Ms] = quantiles(r.delivered.bounds, prev.delivered, cur.delivered);
  return {
    at: cur.at, connections: r.connections,
    sendsPerSec: rate(prev.sends, cur.sends), deliveriesPerSec: rate(prev.deliveries, cur.deliveries), errorsPerSec: rate(prev.errors, cur.errors),
    sentP50Ms, sentP99Ms, deliveredP50Ms, deliveredP99Ms,
    loopMaxMs: Math.round(r.loopMaxMs * 10) / 10, heapMb: Math.round(r.heapBytes / 1e5) / 10, entities: r.entities,
  };
}

/**
 * The last minutes of the node at a few seconds' resolution, kept by the node itself so the ops console shows
 * a history the moment it opens, with no Prometheus in between. A reading is a few counters and two
 * 17-bucket copies: nothing walks the entities or the sockets.
 */
export class LiveSeries {
  private readonly points: LivePoint[] = [];
  private last: Counts;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly read: () => LiveReading, readonly intervalMs = 2000, private readonly keep = 300) {
    this.last = countsOf(read(), Date.now());
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** The points after `at` (ms), oldest first. */
  since(at = 0): LivePoint[] {
    let i = this.points.length;
    while (i > 0 && this.points[i - 1]!.at > at) i--;
    return this.points.slice(i);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const r = this.read();
    const cur = countsOf(r, Date.now());
    this.points.push(livePoint(this.last, cur, r));
    if (this.points.length > this.keep) this.points.shift();
    this.last = cur;
  }
}
