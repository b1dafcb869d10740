import * as hdr from 'hdr-histogram-js';

/**
 * Latency histograms in microseconds (1 µs .. 120 s, 3 significant digits), mergeable across load workers
 * through their compressed encoding.
 */
export type Histogram = hdr.Histogram;

export const newHistogram = (): Histogram =>
  hdr.build({ bitBucketSize: 32, numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, autoResize: false });

export const encodeHistogram = (h: Histogram): string => hdr.encodeIntoCompressedBase64(h);

export function mergeHistograms(encoded: string[]): Histogram {
  const out = newHistogram();
  for (const e of encoded) if (e) out.add(hdr.decodeFromCompressedBase64(e, 32, false));
  return out;
}

export interface LatencySummary { count: number; p50_ms: number; p90_ms: number; p99_ms: number; p999_ms: number; max_ms: number; mean_ms: number }

const ms = (us: number) => Math.round(us) / 1000;

export function summarize(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, p50_ms: NaN, p90_ms: NaN, p99_ms: NaN, p999_ms: NaN, max_ms: NaN, mean_ms: NaN };
  return {
    count: h.totalCount,
    p50_ms: ms(h.getValueAtPercentile(50)),
    p90_ms: ms(h.getValueAtPercentile(90)),
    p99_ms: ms(h.getValueAtPercentile(99)),
    p999_ms: ms(h.getValueAtPercentile(99.9)),
    max_ms: ms(h.maxValue),
    mean_ms: ms(h.mean),
  };
}
