import { ParleyError } from '../protocol/errors.js';
import type { MessageKind } from '../protocol/frames.js';
import type { Store } from '../store/store.js';
import { PeriodAggregate, dayOf, decodeAggregate, monthOf, periodStart } from './aggregate.js';
import { HLL_STANDARD_ERROR } from './hyperloglog.js';

/** The longest range one report reads (days): as long as rows are kept (ANALYTICS_KEEP_MS). */
export const ANALYTICS_MAX_DAYS = 400;
const DAY_MS = 86_400_000;

export interface DayReport {
  day: string;
  dau: number;
  messages: { byKind: Record<MessageKind, number>; direct: number; group: number };
  mediaBytes: number;
  signups: number;
  pushSent: number;
  /** A message's send → a recipient device's ack, ms (bucket middles: ±9%); null percentiles with no deliveries. */
  latency: { p50: number | null; p90: number | null; p99: number | null; count: number };
}

export interface AnalyticsReport {
  from: string;
  to: string;
  /** The relative standard error of dau and mau (HyperLogLog, 2^14 registers). */
  distinctError: number;
  days: DayReport[];
  months: { month: string; mau: number }[];
}

/** The days from..to (inclusive), checked: both real dates, in order, at most ANALYTICS_MAX_DAYS. */
export function daysInRange(from: string, to: string): string[] {
  const a = periodStart(from);
  const b = periodStart(to);
  if (a === undefined || b === undefined || from.length !== 10 || to.length !== 10) throw new ParleyError('invalid', 'from and to are days, YYYY-MM-DD (UTC)');
  if (b < a) throw new ParleyError('invalid', 'to is before from');
  const n = Math.round((b - a) / DAY_MS) + 1;
  if (n > ANALYTICS_MAX_DAYS) throw new ParleyError('invalid', `at most ${ANALYTICS_MAX_DAYS} days at a time`);
  return Array.from({ length: n }, (_, i) => dayOf(a + i * DAY_MS));
}

/** Every node's rows of the range, merged per period (what the admin API answers). */
export async function analyticsReport(store: Pick<Store, 'analyticsRows'>, from: string, to: string): Promise<AnalyticsReport> {
  const days = daysInRange(from, to);
  const months = [...new Set(days.map((d) => monthOf(periodStart(d)!)))];
  const merged = new Map<string, PeriodAggregate>();
  for (const r of await store.analyticsRows([...days, ...months])) {
    const a = merged.get(r.period);
    if (a) a.merge(decodeAggregate(r.data));
    else merged.set(r.period, decodeAggregate(r.data));
  }
  return {
    from, to, distinctError: Math.round(HLL_STANDARD_ERROR * 10_000) / 10_000,
    days: days.map((day) => dayReport(day, merged.get(day) ?? new PeriodAggregate())),
    months: months.map((month) => ({ month, mau: merged.get(month)?.active.estimate() ?? 0 })),
  };
}

function dayReport(day: string, a: PeriodAggregate): DayReport {
  return {
    day, dau: a.active.estimate(),
    messages: { byKind: { ...a.byKind }, direct: a.direct, group: a.group },
    mediaBytes: a.mediaBytes, signups: a.signups, pushSent: a.pushSent,
    latency: { p50: a.latency.percentile(0.5) ?? null, p90: a.latency.percentile(0.9) ?? null, p99: a.latency.percentile(0.99) ?? null, count: a.latency.count() },
  };
}
