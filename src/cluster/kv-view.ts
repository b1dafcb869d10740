import type { KV, KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';

/** A key as this node last saw it: its value (undefined once deleted), revision, and when it changed. */
export interface Seen<T> {
  key: string;
  value: T | undefined;
  revision: number;
  /** The local monotonic time at which this node saw this revision arrive (never a time from another machine). */
  seenAt: number;
}

export interface KvViewOptions<T> {
  /** Monotonic milliseconds (performance.now by default). */
  now: () => number;
  /** A write of ours acked this long ago but still not seen by the watch: the watch is stuck, start it again. */
  stallMs: number;
  decode(bytes: Uint8Array): T | undefined;
  /** A key changed (a new revision). Called in revision order. */
  onChange(seen: Seen<T>, prev: Seen<T> | undefined): void;
  /** The watch failed to start or was restarted (for logs). */
  onTrouble?(what: string, err?: unknown): void;
}

/**
 * A local copy of the keys of a KV bucket under a prefix, kept by a watch, with the local time each key
 * last changed. `seenAt` moves only when the revision does, so restarting the watch (which replays every
 * key's last value) does not make an old key look fresh.
 *
 * Why the stall check: the watch is an ordered push consumer hosted on one NATS server; when that server
 * dies the client notices only after two missed idle heartbeats (10 s), far beyond our failure budget. So
 * every write of ours reports its acked revision (`expect`), and a watch that hasn't delivered it within
 * `stallMs` is replaced at once.
 */
export class KvView<T> {
  private readonly keys = new Map<string, Seen<T>>();
  private iter?: QueuedIterator<KvWatchEntry>;
  private generation = 0;
  private highest = 0;
  private expected = 0;
  private expectedSince = 0;
  private restarting = false;
  private stopped = false;
  private timer?: ReturnType<typeof setInterval>;

  constructor(private readonly kv: KV, private readonly prefix: string, private readonly opts: KvViewOptions<T>) {}

  /** Starts watching; resolves once every key that existed at the start has been seen. */
  async start(): Promise<void> {
    const last = await retry(() => this.kv.status(), this.opts.now, 30_000).then((s) => s.streamInfo.state.last_seq);
    // The watch's consumer can time out too while a just-created stream elects its leader.
    await retry(() => this.watch(), this.opts.now, 30_000);
    // A last-value watch delivers the stream's newest message last (it is the last value of its key).
    // Bounded: a bucket whose newest message is outside our prefix never reaches `last` (then the first
    // message seen, or an empty prefix, is as good as it gets).
    const deadline = this.opts.now() + 5_000;
    while (this.highest < last && this.opts.now() < deadline && !this.stopped) await new Promise((r) => setTimeout(r, 5));
    this.timer = setInterval(() => this.check(), Math.max(50, this.opts.stallMs / 4));
    this.timer.unref?.();
  }

  get(key: string): Seen<T> | undefined {
    return this.keys.get(key);
  }

  all(): IterableIterator<Seen<T>> {
    return this.keys.values();
  }

  /** A write of ours was acked at `revision`: the watch should deliver it soon. */
  expect(revision: number): void {
    if (revision <= this.highest || revision <= this.expected) return;
    if (this.expected <= this.highest) this.expectedSince = this.opts.now();
    this.expected = revision;
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    clearInterval(this.timer);
    this.iter?.stop();
  }

  private check(): void {
    if (this.stopped || this.restarting) return;
    if (this.expected > this.highest && this.opts.now() - this.expectedSince > this.opts.stallMs) {
      this.opts.onTrouble?.(`watch of ${this.prefix}> stalled (revision ${this.expected} acked, ${this.highest} seen): restarting it`);
      this.restart();
    }
  }

  private restart(): void {
    this.restarting = true;
    this.iter?.stop();
    this.watch().then(
      () => { this.restarting = false; this.expectedSince = this.opts.now(); },
      (err) => { this.restarting = false; this.expectedSince = this.opts.now(); this.opts.onTrouble?.(`watch of ${this.prefix}> failed to start`, err); },
    );
  }

  private async watch(): Promise<void> {
    const gen = ++this.generation;
    const iter = await this.kv.watch({ key: `${this.prefix}>` });
    if (gen !== this.generation) { iter.stop(); return; }
    this.iter = iter;
    void (async () => {
      try {
        for await (const e of iter) {
          if (gen !== this.generation) break;
          this.apply(e);
        }
      } catch (err) {
        if (gen === this.generation) this.opts.onTrouble?.(`watch of ${this.prefix}> ended`, err);
      }
      // An iterator that ends by itself (the consumer gave up) is replaced by the stall check or here.
      if (gen === this.generation && !this.stopped && !this.restarting) setTimeout(() => { if (gen === this.generation && !this.stopped) this.restart(); }, 250);
    })();
  }

  private apply(e: KvWatchEntry): void {
    if (e.revision > this.highest) this.highest = e.revision;
    const prev = this.keys.get(e.key);
    if (prev && prev.revision >= e.revision) return; // a replay after a restart, or older
    let value: T | undefined;
    if (e.operation === 'PUT') {
      try { value = this.opts.decode(e.value); } catch { value = undefined; }
    }
    const seen: Seen<T> = { key: e.key, value, revision: e.revision, seenAt: this.opts.now() };
    this.keys.set(e.key, seen);
    this.opts.onChange(seen, prev);
  }
}

/** Retries `fn` every 200 ms until it succeeds or `ms` pass (a stream still electing its leader). */
async function retry<R>(fn: () => Promise<R>, now: () => number, ms: number): Promise<R> {
  const deadline = now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
