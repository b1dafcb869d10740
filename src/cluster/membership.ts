import type { KV } from '@nats-io/kv';
import { KvView, type Seen } from './kv-view.js';

/** A node of the cluster, as it announces itself. */
export interface Member {
  node: string;
  /** Where clients may reach it (for a client handed over, and the operator's view). */
  wsUrl: string;
  /** Wall-clock ms when it started: for people to read, never compared across machines. */
  startedAt: number;
  /**
   * Stopping: still live (its links work, what passes through it still gets where it goes) but it takes no
   * shards, so the ring gives its shards to the others while it drains them.
   */
  leaving?: boolean;
}

export interface Membership {
  readonly self: string;
  start(): Promise<void>;
  /** The members this node believes alive, itself included, sorted by name. */
  live(): readonly Member[];
  /** The live set changed; `gone` names the members that left or were declared down in this change. */
  onChange(fn: (live: readonly Member[], gone: readonly string[]) => void): void;
  /** From now on our record says `leaving`: the others' rings leave us out, and we stay live until leave(). */
  announceLeaving(): Promise<void>;
  /** Deletes our record, so the others see us gone at once, and stops heartbeating. */
  leave(): Promise<void>;
  /** No heartbeat of ours has been acked for `downAfterMs`: the others may already count us gone. */
  isolated(): boolean;
}

/** What a node writes under `m.<node>`: the member, the shard count it runs with, and a beat counter. */
export interface MemberRecord extends Member {
  shards: number;
  beat: number;
}

/** Refused to join: another member runs with a different shard count (placement would disagree). */
export class ShardCountMismatch extends Error {
  constructor(readonly ours: number, readonly theirs: number, readonly node: string) {
    super(`cluster member ${node} runs with ${theirs} shards, this node with ${ours}: PARLEY_SHARDS must be the same on every node`);
    this.name = 'ShardCountMismatch';
  }
}

export interface Timing {
  /** How often a node writes its record (ms). */
  heartbeatMs: number;
  /** A member whose record this node hasn't seen change for this long is gone (ms). */
  downAfterMs: number;
}

export const DEFAULT_MEMBERSHIP_TIMING: Timing = { heartbeatMs: 500, downAfterMs: 2_500 };

/**
 * The failure detector, pure: when each member's record last changed by this node's monotonic clock, and
 * who is therefore live at a given time. Nothing here reads a clock of another machine: the record's
 * arrival, seen here, is the only evidence. KV TTLs are not used for liveness (measured 2–6 s late).
 */
export class Liveness {
  private readonly seen = new Map<string, { at: number; member: Member; live: boolean }>();

  constructor(private readonly downAfterMs: number) {}

  /** A record of `member` arrived at `now`; true when that makes it live (new, or back). */
  saw(member: Member, now: number): boolean {
    const prev = this.seen.get(member.node);
    this.seen.set(member.node, { at: now, member, live: true });
    return !prev || !prev.live || !!prev.member.leaving !== !!member.leaving;
  }

  /** Its record was deleted (a graceful leave): gone at once. True if it was live. */
  left(node: string): boolean {
    const prev = this.seen.get(node);
    this.seen.delete(node);
    return !!prev?.live;
  }

  /**
   * Members unseen for longer than downAfterMs before `asOf` become gone; returns those that did just now.
   * `asOf` is the send time of our own newest record that our watch has delivered back: the watch is in
   * stream order, so anything another member wrote before that was delivered before it. A stalled watch
   * thus declares nobody gone (it would otherwise declare everyone).
   */
  sweep(asOf: number): string[] {
    const now = asOf;
    const gone: string[] = [];
    for (const [node, s] of this.seen) {
      if (s.live && now - s.at > this.downAfterMs) {
        s.live = false;
        gone.push(node);
      }
    }
    return gone.sort();
  }

  isLive(node: string): boolean {
    return this.seen.get(node)?.live ?? false;
  }

  live(): Member[] {
    return [...this.seen.values()].filter((s) => s.live).map((s) => s.member).sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }
}

export interface KvMembershipOptions extends Partial<Timing> {
  kv: KV;
  self: Member;
  shards: number;
  /** Monotonic ms; performance.now unless a test injects one. */
  now?: () => number;
  log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

const PREFIX = 'm.';
const keyOf = (node: string): string => `${PREFIX}${node}`;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A node name must be a valid KV key token. */
export function checkNodeName(node: string): void {
  if (!/^[A-Za-z0-9_=-]+$/.test(node)) throw new Error(`node name ${JSON.stringify(node)}: use letters, digits, -, _ and = only (it is a NATS KV key)`);
}

function decodeRecord(bytes: Uint8Array): MemberRecord | undefined {
  const v = JSON.parse(decoder.decode(bytes)) as Partial<MemberRecord>;
  if (typeof v.node !== 'string' || typeof v.shards !== 'number') return undefined;
  return { node: v.node, wsUrl: String(v.wsUrl ?? ''), startedAt: Number(v.startedAt ?? 0), shards: v.shards, beat: Number(v.beat ?? 0), ...(v.leaving === true ? { leaving: true } : {}) };
}

/**
 * Membership over a JetStream KV bucket (`parley_members`, replicated on 3 servers): each node puts its
 * record every heartbeatMs; every node watches the bucket and declares a member gone when it hasn't seen
 * its record change for downAfterMs (2.5 s: five missed beats, so one slow put or a reconnect to another
 * NATS server is no failure, and a killed node's shards can still be taken over within 5 s). A graceful
 * leave deletes the record: gone at once.
 */
export class KvMembership implements Membership {
  readonly self: string;
  private readonly timing: Timing;
  private readonly now: () => number;
  private readonly liveness: Liveness;
  private readonly view: KvView<MemberRecord>;
  private readonly listeners: ((live: readonly Member[], gone: readonly string[]) => void)[] = [];
  private timer?: ReturnType<typeof setInterval>;
  private beat = 0;
  /** Send time of the newest heartbeat that was acked (monotonic), for isolated(). */
  private lastAcked = -Infinity;
  /** Send times of our heartbeats by beat, until the watch delivers them back. */
  private readonly sentAt = new Map<number, number>();
  /** Send time of our newest heartbeat the watch has delivered: how fresh our view of the others is. */
  private freshAsOf = -Infinity;
  private inFlight = false;
  private started = false;
  private leaving = false;
  /** announceLeaving was called: our record says `leaving` from then on. */
  private stopping = false;

  constructor(private readonly opts: KvMembershipOptions) {
    checkNodeName(opts.self.node);
    this.self = opts.self.node;
    this.timing = { ...DEFAULT_MEMBERSHIP_TIMING, ...definedOnly({ heartbeatMs: opts.heartbeatMs, downAfterMs: opts.downAfterMs }) };
    if (this.timing.downAfterMs < 2 * this.timing.heartbeatMs) throw new Error('membership: downAfterMs must be at least twice heartbeatMs');
    this.now = opts.now ?? (() => performance.now());
    this.liveness = new Liveness(this.timing.downAfterMs);
    this.view = new KvView<MemberRecord>(opts.kv, PREFIX, {
      now: this.now,
      stallMs: Math.max(this.timing.heartbeatMs * 2, 1_000),
      decode: decodeRecord,
      onChange: (seen) => this.changed(seen),
      onTrouble: (what, err) => this.opts.log?.('warn', what, { error: err instanceof Error ? err.message : err }),
    });
  }

  get timings(): Timing {
    return { ...this.timing };
  }

  async start(): Promise<void> {
    await this.view.start();
    // Refuse to join a cluster whose members place shards differently. Any record counts: a dead node's
    // record is dropped by the bucket's max age within a minute, and until then nobody can tell it dead.
    for (const s of this.view.all()) {
      if (s.value && s.value.node !== this.self && s.value.shards !== this.opts.shards) {
        this.view.stop();
        throw new ShardCountMismatch(this.opts.shards, s.value.shards, s.value.node);
      }
    }
    // A bucket just created elects its stream leader first (no responders until then): retry, bounded.
    const deadline = this.now() + 30_000;
    for (;;) {
      try {
        await this.heartbeat(true);
        break;
      } catch (err) {
        if (this.now() > deadline) { this.view.stop(); throw err; }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    this.started = true;
    this.liveness.saw(this.opts.self, this.now());
    this.timer = setInterval(() => this.tick(), this.timing.heartbeatMs);
    this.timer.unref?.();
    this.emit([]);
  }

  live(): readonly Member[] {
    const live = this.liveness.live();
    // We count ourselves live while we run, whatever our own watch says.
    if (this.started && !this.leaving && !live.some((m) => m.node === this.self)) {
      return [...live, { ...this.opts.self, ...(this.stopping ? { leaving: true } : {}) }].sort((a, b) => (a.node < b.node ? -1 : 1));
    }
    return live;
  }

  onChange(fn: (live: readonly Member[], gone: readonly string[]) => void): void {
    this.listeners.push(fn);
  }

  isolated(): boolean {
    return this.now() - this.lastAcked > this.timing.downAfterMs;
  }

  async announceLeaving(): Promise<void> {
    if (this.stopping || this.leaving) return;
    this.stopping = true;
    this.liveness.saw({ ...this.opts.self, leaving: true }, this.now());
    this.emit([]);
    await this.heartbeat(false).catch(() => undefined);
  }

  async leave(): Promise<void> {
    if (this.leaving) return;
    this.leaving = true;
    clearInterval(this.timer);
    try {
      await this.opts.kv.delete(keyOf(this.self));
    } catch (err) {
      this.opts.log?.('warn', 'membership: could not delete our record; the others will count us gone after downAfterMs', { error: (err as Error).message });
    }
    this.view.stop();
  }

  /** Stops heartbeating and watching without a word (tests: a node that dies). */
  abandon(): void {
    this.leaving = true;
    clearInterval(this.timer);
    this.view.stop();
  }

  private tick(): void {
    if (this.leaving) return;
    void this.heartbeat(false);
    const gone = this.liveness.sweep(this.freshAsOf).filter((n) => n !== this.self);
    if (gone.length) this.emit(gone);
  }

  /** One put of our record; `first` waits for it and throws if it fails. */
  private async heartbeat(first: boolean): Promise<void> {
    if (this.inFlight && !first) return; // one at a time: a put stuck on a dead server is not piled onto
    this.inFlight = true;
    const sentAt = this.now();
    const record: MemberRecord = { ...this.opts.self, ...(this.stopping ? { leaving: true } : {}), shards: this.opts.shards, beat: ++this.beat };
    this.sentAt.set(record.beat, sentAt);
    try {
      const rev = await this.opts.kv.put(keyOf(this.self), encoder.encode(JSON.stringify(record)), { timeout: this.timing.heartbeatMs * 2 });
      if (sentAt > this.lastAcked) this.lastAcked = sentAt;
      this.view.expect(rev);
    } catch (err) {
      if (first) throw err;
    } finally {
      this.inFlight = false;
    }
  }

  private changed(seen: Seen<MemberRecord>): void {
    const node = seen.key.slice(PREFIX.length);
    if (node === this.self) {
      const beat = seen.value?.beat ?? 0;
      const at = this.sentAt.get(beat);
      if (at !== undefined && at > this.freshAsOf) this.freshAsOf = at;
      for (const b of this.sentAt.keys()) if (b <= beat) this.sentAt.delete(b);
      return;
    }
    const rec = seen.value;
    if (!rec) {
      if (this.liveness.left(node) && this.started) this.emit([node]);
      return;
    }
    if (rec.shards !== this.opts.shards) {
      this.opts.log?.('warn', 'membership: ignoring a member that runs with another shard count', { node, shards: rec.shards, ours: this.opts.shards });
      return;
    }
    const member: Member = { node: rec.node, wsUrl: rec.wsUrl, startedAt: rec.startedAt, ...(rec.leaving ? { leaving: true } : {}) };
    if (this.liveness.saw(member, seen.seenAt) && this.started) this.emit([]);
  }

  private emit(gone: readonly string[]): void {
    const live = this.live();
    for (const fn of this.listeners) fn(live, gone);
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
