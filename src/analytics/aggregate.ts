import { pack, unpack } from 'msgpackr';
import { MESSAGE_KINDS, type MessageKind } from '../protocol/frames.js';
import { HyperLogLog } from './hyperloglog.js';
import { LogHistogram } from './log-histogram.js';

/**
 * What one node counted in one period (a UTC day `YYYY-MM-DD`, or a month `YYYY-MM`, which keeps only its
 * active-user sketch). Counters add and sketches merge, so the rows of several nodes (or runs) merge into
 * the period's numbers in any order.
 */
export class PeriodAggregate {
  readonly byKind: Record<MessageKind, number> = Object.fromEntries(MESSAGE_KINDS.map((k) => [k, 0])) as Record<MessageKind, number>;
  direct = 0;
  group = 0;
  mediaBytes = 0;
  signups = 0;
  pushSent = 0;
  readonly latency = new LogHistogram();
  readonly active = new HyperLogLog();

  merge(o: PeriodAggregate): this {
    for (const k of MESSAGE_KINDS) this.byKind[k] += o.byKind[k];
    this.direct += o.direct;
    this.group += o.group;
    this.mediaBytes += o.mediaBytes;
    this.signups += o.signups;
    this.pushSent += o.pushSent;
    this.latency.merge(o.latency);
    this.active.merge(o.active);
    return this;
  }
}

/** The stored form (msgpack, version 1): counters, the histogram's counts, the sketch's registers. */
interface StoredAggregate {
  v: 1;
  kinds: Partial<Record<MessageKind, number>>;
  direct: number; group: number; mediaBytes: number; signups: number; pushSent: number;
  latency: number[];
  hll: Uint8Array;
}

export function encodeAggregate(a: PeriodAggregate): Uint8Array {
  const s: StoredAggregate = {
    v: 1, kinds: { ...a.byKind }, direct: a.direct, group: a.group, mediaBytes: a.mediaBytes, signups: a.signups, pushSent: a.pushSent,
    latency: [...a.latency.counts], hll: a.active.registers,
  };
  return pack(s);
}

export function decodeAggregate(bytes: Uint8Array): PeriodAggregate {
  const s = unpack(bytes) as StoredAggregate;
  if (s.v !== 1) throw new Error(`analytics row of unknown version ${String(s.v)}`);
  const a = new PeriodAggregate();
  for (const k of MESSAGE_KINDS) a.byKind[k] = s.kinds[k] ?? 0;
  a.direct = s.direct;
  a.group = s.group;
  a.mediaBytes = s.mediaBytes;
  a.signups = s.signups;
  a.pushSent = s.pushSent;
  a.latency.merge(new LogHistogram(s.latency));
  a.active.merge(new HyperLogLog(s.hll));
  return a;
}

/** `YYYY-MM-DD` of a UTC time. */
export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** `YYYY-MM` of a UTC time. */
export function monthOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

/** The start of the next UTC day after `ms`. */
export function nextDayStart(ms: number): number {
  const d = new Date(ms);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

/** A period's start (ms, UTC) from its name, or undefined for a name that is not one. */
export function periodStart(period: string): number | undefined {
  const m = /^(\d{4})-(\d{2})(?:-(\d{2}))?$/.exec(period);
  if (!m) return undefined;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, m[3] ? Number(m[3]) : 1);
  return (m[3] ? dayOf(t) : monthOf(t)) === period ? t : undefined;
}
