/**
 * What operators see of a region's supervision (GET /v1/admin/actors, `npm run ops -- tree | top`): counts
 * over the last minute and hour, the busiest mailboxes, the entities crash-looping now and the last crashes
 * with their reasons. Bounded whatever the number of entities: aggregates and the top N, never every entity.
 * Pure data structures; the region feeds them.
 */

export type LifecycleEvent = 'spawned' | 'passivated' | 'crashed' | 'stopped';
const EVENTS: readonly LifecycleEvent[] = ['spawned', 'passivated', 'crashed', 'stopped'];
const MINUTE = 60_000;

/** Per-minute buckets over the last hour: what happened in the last minute and in the last hour. */
export class EventWindow {
  private readonly buckets = new Map<LifecycleEvent, number[]>(EVENTS.map((e) => [e, new Array<number>(60).fill(0)]));
  private minute = -1;

  add(event: LifecycleEvent, now: number): void {
    this.advance(now);
    this.buckets.get(event)![this.minute % 60]! += 1;
  }

  /** Counts in the current minute so far plus the whole previous one (≥ 1 min), and over the last 60 minutes. */
  read(now: number): { minute: Record<LifecycleEvent, number>; hour: Record<LifecycleEvent, number> } {
    this.advance(now);
    const minute = {} as Record<LifecycleEvent, number>;
    const hour = {} as Record<LifecycleEvent, number>;
    for (const e of EVENTS) {
      const b = this.buckets.get(e)!;
      minute[e] = b[this.minute % 60]! + b[(this.minute + 59) % 60]!;
      hour[e] = b.reduce((a, x) => a + x, 0);
    }
    return { minute, hour };
  }

  private advance(now: number): void {
    const m = Math.floor(now / MINUTE);
    if (this.minute < 0) this.minute = m;
    // Clear the buckets of the minutes that passed with nothing in them (at most a full turn).
    for (let i = this.minute + 1; i <= m && i <= this.minute + 60; i++) for (const b of this.buckets.values()) b[i % 60] = 0;
    if (m > this.minute) this.minute = m;
  }
}

export interface CrashRecord { id: string; at: number; reason: string; message?: string; stopped: boolean }

/** The last crashes of a region, newest first, bounded. */
export class CrashLog {
  private readonly records: CrashRecord[] = [];
  constructor(private readonly max = 50) {}

  add(r: CrashRecord): void {
    this.records.unshift(r);
    if (this.records.length > this.max) this.records.pop();
  }

  recent(n: number): CrashRecord[] {
    return this.records.slice(0, n);
  }
}

/** A live entity as the view sees it. */
export interface EntityRow {
  id: string;
  state: 'loading' | 'active' | 'crashing';
  mailbox: number;
  ageMs: number;
  idleMs: number;
  /** Crashes within the supervisor's window (10 s): 3 or more is a crash loop (5 stops it). */
  recentCrashes: number;
}

/** Keeps the `n` largest rows by `score`, in one pass (n is small: a sorted insert beats sorting everything). */
export class TopN<T> {
  private readonly rows: { score: number; row: T }[] = [];
  constructor(private readonly n: number) {}

  offer(score: number, make: () => T): void {
    if (this.n <= 0 || (this.rows.length >= this.n && score <= this.rows[this.rows.length - 1]!.score)) return;
    let i = this.rows.length;
    while (i > 0 && this.rows[i - 1]!.score < score) i--;
    this.rows.splice(i, 0, { score, row: make() });
    if (this.rows.length > this.n) this.rows.pop();
  }

  get(): T[] {
    return this.rows.map((r) => r.row);
  }
}

/** At this many crashes in the supervisor's window an entity is flagged as crash-looping (at 5 it is stopped). */
export const CRASH_LOOP = 3;
