import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { KvView, type Seen } from './kv-view.js';
import type { Membership } from './membership.js';
import { Ring } from './placement.js';

/** Who holds a shard, under which epoch (raised by every acquisition; the store's claims fence on it). */
export interface ShardLease {
  shard: number;
  node: string;
  epoch: number;
}

/** The value under `s.<n>`: `node` is '' once released (the epoch stays, so epochs only ever grow). */
export interface LeaseValue {
  node: string;
  epoch: number;
}

export interface LeaseTiming {
  /** A held shard is renewed this often (ms). */
  renewMs: number;
  /** Another node may take a gone node's shard once it has seen its key unchanged this long (ms). */
  leaseMs: number;
  /** A holder stops serving `marginMs` before that: no acked renewal for leaseMs - marginMs (ms). */
  marginMs: number;
  /** How long onRelease (the data plane's drain) may take before the shard is released anyway (ms). */
  releaseTimeoutMs: number;
  /** How often the table is looked at (lapses, renewals, acquisitions) (ms). */
  tickMs: number;
}

export const DEFAULT_LEASE_TIMING: LeaseTiming = { renewMs: 1_000, leaseMs: 4_000, marginMs: 500, releaseTimeoutMs: 5_000, tickMs: 100 };

/** What the acquisition rule needs to know about one shard, as this node sees it. */
export interface AcquireContext {
  self: string;
  now: number;
  leaseMs: number;
  /** The epoch of this shard that this incarnation last wrote, if any (it identifies our own writes). */
  mine: number | undefined;
  isLive(node: string): boolean;
}

/** A compare-and-set to try: expected revision (0 = the key must not exist) and the new epoch. */
export interface Attempt {
  revision: number;
  epoch: number;
}

/**
 * Whether this node may acquire a shard it wants, pure. It may when the key is absent or released; when
 * the key names this very incarnation (a write of ours whose answer was lost, or a lease we let lapse and
 * stopped serving); and when its holder is gone by membership AND this node has seen the key unchanged for
 * leaseMs. The last rule is what makes takeover safe without trusting any other clock: the holder stopped
 * serving leaseMs - marginMs after *sending* its last acked renewal, which reached the KV (and so us) no
 * earlier. A key naming our own name but written by an earlier process waits leaseMs too.
 */
export function acquireAttempt(seen: Seen<LeaseValue> | undefined, ctx: AcquireContext): Attempt | undefined {
  if (!seen) return { revision: 0, epoch: 1 };
  const v = seen.value;
  if (!v) return { revision: seen.revision, epoch: 1 }; // deleted by hand: the epoch restarts (the store's fence still rises)
  if (v.node === '') return { revision: seen.revision, epoch: v.epoch + 1 };
  if (v.node === ctx.self && ctx.mine === v.epoch) return { revision: seen.revision, epoch: v.epoch + 1 };
  const unchangedFor = ctx.now - seen.seenAt;
  if (unchangedFor < ctx.leaseMs) return undefined;
  if (v.node !== ctx.self && ctx.isLive(v.node)) return undefined;
  return { revision: seen.revision, epoch: v.epoch + 1 };
}

/** A held lease has lapsed: no acked write for leaseMs - marginMs since the last acked one was sent. */
export const lapsed = (okAt: number, now: number, t: Pick<LeaseTiming, 'leaseMs' | 'marginMs'>): boolean => now >= okAt + t.leaseMs - t.marginMs;

interface Held {
  shard: number;
  epoch: number;
  /** The key's revision after our last acked write. */
  revision: number;
  /** Send time (monotonic) of our last acked write of the key. */
  okAt: number;
  nextRenewAt: number;
  renewing?: Promise<void>;
  releasing: boolean;
}

export interface ShardLeasesOptions extends Partial<LeaseTiming> {
  kv: KV;
  membership: Membership;
  shards: number;
  vnodes?: number;
  now?: () => number;
  log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

const PREFIX = 's.';
const keyOf = (shard: number): string => `${PREFIX}${shard}`;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function decodeLease(bytes: Uint8Array): LeaseValue | undefined {
  const v = JSON.parse(decoder.decode(bytes)) as Partial<LeaseValue>;
  return typeof v.node === 'string' && typeof v.epoch === 'number' ? { node: v.node, epoch: v.epoch } : undefined;
}

const wrongRevision = (err: unknown): boolean =>
  err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);

/**
 * The shard table over a JetStream KV bucket (`parley_shards`, replicated on 3 servers): key `s.<n>`,
 * value `{node, epoch}`. Every node watches it (owner, onChange: what routing goes by) and keeps exactly the
 * shards the ring gives it over the live members: it acquires them by compare-and-set on the revision it
 * saw, renews them every renewMs by compare-and-set, releases those the ring gives to another live node
 * after the data plane drained them (onRelease), and drops at once (onLost) any whose renewal was refused
 * or that went leaseMs - marginMs without an acked renewal by its own monotonic clock.
 *
 * Timing (defaults): a killed node's last renewal is at most renewMs (1 s) old; the others see its
 * membership gone 2.5 s after its last heartbeat and its keys unchanged for leaseMs (4 s) after its last
 * renewal, so its shards are taken over 3–4.1 s after the kill (within 5 s). The holder itself stops
 * serving at 3.5 s without an acked renewal, 0.5 s before anyone can take over (the margin covers the
 * tick, a late timer and clock-rate drift). A JetStream KV can't be written while its stream elects a new
 * leader (4–9 s after its leader's server dies, fixed in nats-server): holders then lapse and re-acquire
 * their own shards, with a new epoch, as soon as the bucket answers.
 */
export class ShardLeases {
  readonly self: string;
  private readonly timing: LeaseTiming;
  private readonly now: () => number;
  private readonly view: KvView<LeaseValue>;
  private readonly held = new Map<number, Held>();
  private readonly acquiring = new Map<number, Promise<void>>();
  /** The epoch of each shard this incarnation last wrote. */
  private readonly mine = new Map<number, number>();
  private readonly changeFns: ((shard: number, lease: ShardLease | undefined) => void)[] = [];
  private readonly acquiredFns: ((lease: ShardLease) => void)[] = [];
  private readonly lostFns: ((shard: number) => void)[] = [];
  private readonly releaseFns: ((shard: number) => Promise<void>)[] = [];
  private ring?: { key: string; ring: Ring };
  private timer?: ReturnType<typeof setInterval>;
  private scheduled = false;
  private stopping = false;
  private stopped = false;

  constructor(private readonly opts: ShardLeasesOptions) {
    this.self = opts.membership.self;
    const t = { ...DEFAULT_LEASE_TIMING };
    for (const k of Object.keys(t) as (keyof LeaseTiming)[]) if (opts[k] !== undefined) t[k] = opts[k]!;
    if (t.marginMs <= 0 || t.marginMs >= t.leaseMs) throw new Error('shard leases: marginMs must be above 0 and below leaseMs');
    if (t.renewMs * 2 > t.leaseMs - t.marginMs) throw new Error('shard leases: leaseMs - marginMs must leave room for two renewals (renewMs)');
    this.timing = t;
    this.now = opts.now ?? (() => performance.now());
    this.view = new KvView<LeaseValue>(opts.kv, PREFIX, {
      now: this.now,
      stallMs: Math.max(t.renewMs, 500),
      decode: decodeLease,
      onChange: (seen) => this.keyChanged(seen),
      onTrouble: (what, err) => this.opts.log?.('warn', what, { error: err instanceof Error ? err.message : err }),
    });
    opts.membership.onChange(() => this.schedule());
  }

  get timings(): LeaseTiming {
    return { ...this.timing };
  }

  /** Starts watching the table (resolves once it is read whole) and taking this node's shards. */
  async start(): Promise<void> {
    await this.view.start();
    this.timer = setInterval(() => this.tick(), this.timing.tickMs);
    this.timer.unref?.();
    this.tick();
  }

  /** Who holds `shard` by the table as this node last saw it (released or never taken: undefined). */
  owner(shard: number): ShardLease | undefined {
    const v = this.view.get(keyOf(shard))?.value;
    return v && v.node !== '' ? { shard, node: v.node, epoch: v.epoch } : undefined;
  }

  /** Whether this node serves `shard` now: held and not lapsed, checked against the clock at the call. */
  holds(shard: number): boolean {
    const h = this.held.get(shard);
    return !!h && !lapsed(h.okAt, this.now(), this.timing);
  }

  /** The leases this node holds, by shard. */
  leases(): ShardLease[] {
    return [...this.held.values()].sort((a, b) => a.shard - b.shard).map((h) => ({ shard: h.shard, node: this.self, epoch: h.epoch }));
  }

  /** The shards the ring gives this node over the live members (what it wants to hold). */
  wanted(): number[] {
    return this.currentRing().owned(this.self, this.opts.shards);
  }

  onChange(fn: (shard: number, lease: ShardLease | undefined) => void): void { this.changeFns.push(fn); }
  /** A shard is ours: start serving it (activate its entities with this epoch). */
  onAcquired(fn: (lease: ShardLease) => void): void { this.acquiredFns.push(fn); }
  /** A shard lapsed or was taken: stop serving it now, no drain (another node may hold it already, or soon). */
  onLost(fn: (shard: number) => void): void { this.lostFns.push(fn); }
  /**
   * The ring gives a shard of ours to another live node: drain it (passivate its entities, finish writes
   * in flight); the lease is renewed meanwhile and released when the promise settles, or after
   * releaseTimeoutMs. If the lease is lost meanwhile, onLost fires as well.
   */
  onRelease(fn: (shard: number) => Promise<void>): void { this.releaseFns.push(fn); }

  /**
   * Graceful: announces that this node is leaving (the others' rings leave it out), then releases every held
   * shard (each drained through onRelease, all in parallel). It is still a member afterwards, so what passes
   * through it reaches the new owners; Membership.leave, then close, end it.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.opts.membership.announceLeaving();
    await Promise.all([...this.acquiring.values()]);
    await Promise.all([...this.held.values()].filter((h) => !h.releasing).map((h) => this.release(h)));
    // Releases already under way when stop began.
    while (this.held.size) await new Promise((r) => setTimeout(r, 20));
    clearInterval(this.timer);
    this.stopped = true;
  }

  /**
   * Stops watching the table (after stop): until then a stopped node still sees who took its shards, so what
   * passes through it on its way out goes to them.
   */
  close(): void {
    this.view.stop();
  }

  /** Stops renewing and watching without releasing or leaving (tests: a node that dies). */
  abandon(): void {
    this.stopping = true;
    this.stopped = true;
    clearInterval(this.timer);
    this.view.stop();
  }

  private currentRing(): Ring {
    // A member that is leaving keeps its links but takes no shards.
    const members = this.opts.membership.live().filter((m) => !m.leaving).map((m) => m.node);
    const key = members.join('\n');
    if (this.ring?.key !== key) this.ring = { key, ring: new Ring(members, this.opts.vnodes) };
    return this.ring.ring;
  }

  /** A tick soon (after a key or the membership changed), coalesced. */
  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    queueMicrotask(() => { this.scheduled = false; this.tick(); });
  }

  private tick(): void {
    if (this.stopped) return;
    const now = this.now();
    for (const h of [...this.held.values()]) {
      if (lapsed(h.okAt, now, this.timing)) { this.lose(h, 'lapsed'); continue; }
      if (!h.renewing && now >= h.nextRenewAt) this.renew(h);
    }
    if (this.stopping) return;
    const membership = this.opts.membership;
    // Cut off from NATS: nothing can be taken; what we hold lapses by itself.
    if (membership.isolated()) return;
    const ring = this.currentRing();
    const live = new Set(membership.live().map((m) => m.node));
    for (let s = 0; s < this.opts.shards; s++) {
      const owner = ring.owner(s);
      const h = this.held.get(s);
      if (owner === this.self) {
        if (h || this.acquiring.has(s)) continue;
        const attempt = acquireAttempt(this.view.get(keyOf(s)), { self: this.self, now, leaseMs: this.timing.leaseMs, mine: this.mine.get(s), isLive: (n) => live.has(n) });
        if (attempt) this.acquire(s, attempt);
      } else if (owner !== undefined) {
        if (h) { if (!h.releasing) void this.release(h); continue; }
        // A write of ours that landed after we stopped holding (its answer lost): hand it on.
        const seen = this.view.get(keyOf(s));
        if (seen?.value?.node === this.self && this.mine.get(s) === seen.value.epoch && !this.acquiring.has(s)) this.writeReleased(s, seen.value.epoch, seen.revision);
      }
    }
  }

  private acquire(shard: number, attempt: Attempt): void {
    const sentAt = this.now();
    this.mine.set(shard, attempt.epoch);
    const value: LeaseValue = { node: this.self, epoch: attempt.epoch };
    const p = this.opts.kv.put(keyOf(shard), encoder.encode(JSON.stringify(value)), { previousSeq: attempt.revision, timeout: this.timing.renewMs }).then(
      (revision) => {
        this.view.expect(revision);
        const h: Held = { shard, epoch: attempt.epoch, revision, okAt: sentAt, nextRenewAt: sentAt + this.timing.renewMs, releasing: false };
        if (this.stopping) return this.writeReleased(shard, attempt.epoch, revision);
        if (lapsed(sentAt, this.now(), this.timing)) return undefined; // answered too late to serve: taken again next tick
        this.held.set(shard, h);
        const lease: ShardLease = { shard, node: this.self, epoch: attempt.epoch };
        for (const fn of this.acquiredFns) this.call(() => fn(lease));
        return undefined;
      },
      (err) => {
        if (!wrongRevision(err)) this.opts.log?.('info', 'shard leases: acquire failed', { shard, error: (err as Error).message });
        return undefined;
      },
    ).finally(() => { this.acquiring.delete(shard); });
    this.acquiring.set(shard, p);
  }

  private renew(h: Held): void {
    const sentAt = this.now();
    const value: LeaseValue = { node: this.self, epoch: h.epoch };
    h.renewing = this.opts.kv.put(keyOf(h.shard), encoder.encode(JSON.stringify(value)), { previousSeq: h.revision, timeout: this.timing.renewMs }).then(
      (revision) => {
        h.revision = revision;
        if (sentAt > h.okAt) h.okAt = sentAt;
        h.nextRenewAt = sentAt + this.timing.renewMs;
        this.view.expect(revision);
      },
      async (err) => {
        if (!wrongRevision(err)) { h.nextRenewAt = this.now() + this.timing.renewMs / 4; return; }
        // The revision moved: taken by another node, or a renewal of ours whose answer was lost landed.
        const e = await this.opts.kv.get(keyOf(h.shard)).catch(() => undefined);
        if (e === undefined) { h.nextRenewAt = this.now() + this.timing.renewMs / 4; return; }
        const v = e?.operation === 'PUT' ? decodeLease(e.value) : undefined;
        if (e && v?.node === this.self && v.epoch === h.epoch && e.revision > h.revision) { h.revision = e.revision; h.nextRenewAt = this.now(); return; }
        if (this.held.get(h.shard) === h) this.lose(h, 'taken');
      },
    ).finally(() => { h.renewing = undefined; });
  }

  private lose(h: Held, why: 'lapsed' | 'taken'): void {
    if (this.held.get(h.shard) !== h) return;
    this.held.delete(h.shard);
    this.opts.log?.('warn', `shard leases: shard ${h.shard} ${why}: stopped serving it`, { shard: h.shard, epoch: h.epoch });
    for (const fn of this.lostFns) this.call(() => fn(h.shard));
  }

  private async release(h: Held): Promise<void> {
    h.releasing = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((r) => { timer = setTimeout(r, this.timing.releaseTimeoutMs); });
    const drained = Promise.all(this.releaseFns.map((fn) => Promise.resolve().then(() => fn(h.shard)).catch((err) => {
      this.opts.log?.('warn', 'shard leases: onRelease failed; releasing anyway', { shard: h.shard, error: (err as Error).message });
    })));
    await Promise.race([drained, bound]);
    clearTimeout(timer);
    if (this.held.get(h.shard) !== h) return; // lost while draining: onLost has fired
    this.held.delete(h.shard);
    if (h.renewing) await h.renewing;
    await this.writeReleased(h.shard, h.epoch, h.revision);
  }

  private async writeReleased(shard: number, epoch: number, revision: number): Promise<void> {
    const value: LeaseValue = { node: '', epoch };
    try {
      const rev = await this.opts.kv.put(keyOf(shard), encoder.encode(JSON.stringify(value)), { previousSeq: revision, timeout: this.timing.renewMs });
      this.mine.delete(shard);
      this.view.expect(rev);
    } catch (err) {
      // Not released: the next owner takes it once it has seen the key unchanged for leaseMs (or our tick
      // finds the key still ours and releases it again).
      if (!wrongRevision(err)) this.opts.log?.('info', 'shard leases: release write failed', { shard, error: (err as Error).message });
    }
  }

  private keyChanged(seen: Seen<LeaseValue>): void {
    const shard = Number(seen.key.slice(PREFIX.length));
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.opts.shards) return;
    const v = seen.value;
    const lease = v && v.node !== '' ? { shard, node: v.node, epoch: v.epoch } : undefined;
    // Someone else holds what we think we hold: our renewal will be refused; stop serving now.
    const h = this.held.get(shard);
    if (h && lease && (lease.node !== this.self || lease.epoch !== h.epoch) && seen.revision > h.revision) this.lose(h, 'taken');
    for (const fn of this.changeFns) this.call(() => fn(shard, lease));
    this.schedule();
  }

  private call(fn: () => void): void {
    try { fn(); } catch (err) { this.opts.log?.('warn', 'shard leases: a listener threw', { error: (err as Error).message }); }
  }
}
