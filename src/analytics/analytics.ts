import type { MessageKind } from '../protocol/frames.js';
import type { Store } from '../store/store.js';
import { log } from '../log.js';
import { PeriodAggregate, dayOf, decodeAggregate, encodeAggregate, monthOf, nextDayStart } from './aggregate.js';

/** One analytics event as the stream carries it (src/analytics/stream.ts): envelope fields only. */
export type AnalyticsEvent =
  | { type: 'message'; kind: MessageKind; group: boolean }
  | { type: 'active'; user: string }
  | { type: 'signup'; user: string }
  | { type: 'push' }
  | { type: 'media'; bytes: number; user: string };

/** Where events go besides the aggregates: the JetStream publisher in a cluster. Must not throw or block. */
export type AnalyticsSink = (e: AnalyticsEvent) => void;

/**
 * The node's product numbers (docs/architecture.md, "Analytics"). Recording is an in-memory increment into
 * today's aggregate (and this month's active-user sketch); every `flushMs` the periods that changed are
 * written to the store as this node's row (period, source), whole, so nodes never write the same row. At
 * start the node's own rows of the current day and month are read back and merged in before the first write,
 * so a restart continues the day's numbers instead of overwriting them.
 */
export class Analytics {
  private day = '';
  private dayEnds = 0;
  private today!: PeriodAggregate;
  private month!: PeriodAggregate;
  private readonly periods = new Map<string, PeriodAggregate>();
  private readonly dirty = new Set<string>();
  private loaded: Promise<boolean> | undefined;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Pick<Store, 'putAnalytics' | 'analyticsRows'>,
    readonly source: string,
    private readonly opts: { flushMs: number; sink?: AnalyticsSink; now?: () => number },
  ) {
    this.roll(this.now());
  }

  start(): void {
    this.loaded = this.load();
    this.timer = setInterval(() => void this.flush(), this.opts.flushMs);
    this.timer.unref();
  }

  /** A socket of the user attached: the user is active today and this month. */
  active(user: string): void {
    this.current();
    this.today.active.add(user);
    this.month.active.add(user);
    this.dirty.add(this.monthName());
    this.opts.sink?.({ type: 'active', user });
  }

  /** A message was stored (once per message, not per recipient; resends are not counted again). */
  message(kind: MessageKind, group: boolean): void {
    const a = this.current();
    a.byKind[kind]++;
    if (group) a.group++;
    else a.direct++;
    this.opts.sink?.({ type: 'message', kind, group });
  }

  signup(user: string): void {
    this.current().signups++;
    this.opts.sink?.({ type: 'signup', user });
  }

  pushSent(by = 1): void {
    this.current().pushSent += by;
    for (let i = 0; i < by; i++) this.opts.sink?.({ type: 'push' });
  }

  mediaUploaded(user: string, bytes: number): void {
    this.current().mediaBytes += bytes;
    this.opts.sink?.({ type: 'media', bytes, user });
  }

  /** A message's send to a recipient device's ack, ms (into the day's histogram only: no event per ack). */
  delivered(ms: number): void {
    this.current().latency.record(ms);
  }

  /** Writes every period that changed since the last flush (one at a time: a row's writes never cross). */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => { this.flushing = undefined; });
    return this.flushing;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }

  private async write(): Promise<void> {
    if (!(await (this.loaded ??= this.load()))) {
      this.loaded = this.load(); // not read back yet: writing now would overwrite the day's earlier numbers
      return;
    }
    for (const period of [...this.dirty]) {
      const a = this.periods.get(period)!;
      this.dirty.delete(period);
      try {
        await this.store.putAnalytics(period, this.source, encodeAggregate(a));
      } catch (err) {
        this.dirty.add(period);
        log('warn', 'analytics not stored; retried at the next flush', { period, error: String(err) });
        continue;
      }
      // A past day's row is final once written; this month's sketch stays while the month runs.
      if (period !== this.day && period !== this.monthName() && !this.dirty.has(period)) this.periods.delete(period);
    }
  }

  /** This node's rows of the current periods, merged into what was recorded meanwhile. */
  private async load(): Promise<boolean> {
    const periods = [this.day, this.monthName()];
    try {
      const rows = await this.store.analyticsRows(periods);
      for (const r of rows) if (r.source === this.source) this.periods.get(r.period)?.merge(decodeAggregate(r.data));
      return true;
    } catch (err) {
      log('warn', 'analytics of this node not read back; not stored until they are', { error: String(err) });
      return false;
    }
  }

  private current(): PeriodAggregate {
    const now = this.now();
    if (now >= this.dayEnds) this.roll(now);
    this.dirty.add(this.day);
    return this.today;
  }

  private roll(now: number): void {
    this.day = dayOf(now);
    this.dayEnds = nextDayStart(now);
    this.today = this.aggregate(this.day);
    this.month = this.aggregate(monthOf(now));
  }

  private aggregate(period: string): PeriodAggregate {
    let a = this.periods.get(period);
    if (!a) this.periods.set(period, (a = new PeriodAggregate()));
    return a;
  }

  private monthName(): string {
    return this.day.slice(0, 7);
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }
}
