import { ParleyError } from '../protocol/errors.js';
import type { DeviceId, UserId } from '../protocol/ids.js';
import type { PushPlatform } from '../protocol/frames.js';
import type { PushMark, PushRegistration } from '../store/store.js';
import { log } from '../log.js';
import { Breaker } from './breaker.js';
import { addToBurst, mergeBursts, render, retryDelay, type Burst } from './policy.js';
import { endpointAllowed, tokenKey } from './registration.js';
import type { PushGateway, PushNotice, PushProvider, SendResult } from './push-gateway.js';

/** The clock and timers the dispatcher runs on: the real ones, or a fake clock's in unit tests. */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface DispatcherConfig {
  /** A device's first message waits this long for the rest of its burst; the burst goes as one notification. */
  coalesceMs: number;
  /** Devices with a notification waiting, at most; past it the oldest waiting one is dropped (a later one covers it). */
  maxPending: number;
  /** Sends in flight per provider. */
  concurrency: number;
  /** Sends of one notification at most (the first and its retries). */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  ttlSec: number;
  mode: 'sender' | 'wake';
  /** Failed sends in a row (outages: 5xx, network) that open a provider's breaker, and how long it stays open. */
  breakerFailures: number;
  breakerOpenMs: number;
  /** Origins a client's URL may name (a Web Push endpoint, a WNS channel): src/push/registration.ts. */
  origins: { webpush: readonly string[]; wns: readonly string[] };
}

export interface DispatcherDeps {
  /** The providers configured; a platform without one goes to `fallback` (the dev outbox). */
  providers: Partial<Record<PushPlatform, PushProvider>>;
  fallback: PushProvider;
  /** The display name of a sender, for "New message from X"; undefined when unknown. */
  senderName(user: UserId): Promise<string | undefined>;
  /** The registration is dead (the service said so): the user entity is told, and removes it in its turn. */
  dead(to: { user: UserId; device: DeviceId; push: PushRegistration }): void;
  metrics?: { count(name: string, by?: number): void; gauge(name: string, read: () => number): void };
  /** Where a device owed a notification is marked durably (the store's push marks), so a restart sends it. */
  marks?: { put(device: string, mark: PushMark): Promise<void>; delete(device: string): Promise<void> };
  timers?: Timers;
  random?: () => number;
}

/** One device with a notification waiting, in flight, or waiting to retry. */
interface Slot {
  key: string;
  user: UserId;
  device: DeviceId;
  push: PushRegistration;
  /** Messages not sent yet (a retry's too). */
  burst: Burst | undefined;
  timer: unknown;
  /** In its provider's queue. */
  queued: boolean;
  /** The burst being sent now. */
  sending: Burst | undefined;
  /** Sends of the pending notification so far (it counts retries). */
  attempts: number;
  /** Settles when the send in flight has ended. */
  sent: Promise<void> | undefined;
}

const NAMES_MAX = 10_000;
const NAME_TTL_MS = 10 * 60_000;
const DEAD_MAX = 10_000;

/**
 * Pushes outside the entities. `notify` is called in a user entity's turn and only records: per device the
 * messages of a burst are coalesced for `coalesceMs` into one notification (with a count and a collapse id),
 * which then waits in its provider's queue; each provider sends `concurrency` at a time, so a group message to
 * 1,000 offline members is queued, never sent inline, and delivery to the online ones doesn't wait on it.
 * Memory is bounded by `maxPending` devices. Retries (429, 5xx, network) back off honouring Retry-After,
 * merged with anything newer for the device, up to `maxAttempts`; a provider that keeps failing opens its
 * breaker. A dead registration is reported to its user entity (`dead`), which removes it in its own turn.
 */
export class PushDispatcher implements PushGateway {
  private readonly slots = new Map<string, Slot>();
  private readonly queues = new Map<string, string[]>();
  private readonly inFlight = new Map<string, number>();
  private readonly breakers = new Map<string, Breaker>();
  private readonly breakerTimers = new Map<string, unknown>();
  private readonly names = new Map<UserId, { name: string | undefined; at: number }>();
  /** Tokens a service called dead, until their user entity has removed them (notices may still name them). */
  private readonly deadTokens = new Set<string>();
  private readonly timers: Timers;
  private readonly random: () => number;
  private closed = false;

  constructor(private readonly cfg: DispatcherConfig, private readonly deps: DispatcherDeps) {
    this.timers = deps.timers ?? realTimers;
    this.random = deps.random ?? Math.random;
    const m = deps.metrics;
    if (m) {
      m.gauge('push_pending', () => this.slots.size);
      for (const p of this.allProviders()) {
        m.gauge(`push_${p.name}_breaker_open`, () => (this.breaker(p.name).isOpen(this.timers.now()) ? 1 : 0));
        m.gauge(`push_${p.name}_breaker_trips`, () => this.breaker(p.name).trips);
      }
    }
  }

  /** Devices with something waiting or in flight (for tests and the gauge). */
  get pending(): number { return this.slots.size; }

  check(push: PushRegistration): void {
    if (push.platform === 'webpush' || push.platform === 'wns') {
      if (!endpointAllowed(push.token, this.cfg.origins[push.platform])) {
        throw new ParleyError('invalid', `this node does not send ${push.platform} notifications to ${new URL(push.token).origin}`);
      }
    }
    this.deadTokens.delete(tokenKey(push)); // registered again: the device says it is live
  }

  notify(n: PushNotice): void {
    if (this.closed || this.deadTokens.has(tokenKey(n.push))) return;
    const key = `${n.user}.${n.device}`;
    let slot = this.slots.get(key);
    if (!slot) {
      if (this.slots.size >= this.cfg.maxPending) this.dropOldest();
      slot = { key, user: n.user, device: n.device, push: n.push, burst: undefined, timer: undefined, queued: false, sending: undefined, attempts: 0, sent: undefined };
      this.slots.set(key, slot);
      const { user, device, ptr, conv, seq, from, kind } = n; // no preview: message text stays out of the table
      this.deps.marks?.put(key, { user, device, ptr, conv, seq, from, kind }).catch((err: unknown) => log('warn', 'push mark not stored', { error: String(err) }));
    }
    slot.push = n.push; // the newest registration (a new token replaces the old one)
    slot.burst = addToBurst(slot.burst, n);
    this.count('push_notices');
    if (!slot.timer && !slot.queued) this.arm(slot, this.cfg.coalesceMs);
  }

  withdraw(user: UserId, device: DeviceId): Promise<void> {
    const slot = this.slots.get(`${user}.${device}`);
    if (!slot) return Promise.resolve();
    if (slot.timer) this.timers.clearTimeout(slot.timer);
    slot.timer = undefined;
    this.forget(slot.key); // a queued key whose slot is gone is skipped; an in-flight send's end finds it gone
    return slot.sent ?? Promise.resolve();
  }

  release(users: (user: UserId) => boolean): void {
    for (const slot of [...this.slots.values()]) {
      if (!users(slot.user)) continue;
      if (slot.timer) this.timers.clearTimeout(slot.timer);
      slot.timer = undefined;
      this.slots.delete(slot.key); // not forget(): the mark is the next owner's
    }
  }

  close(): void {
    this.closed = true;
    for (const s of this.slots.values()) if (s.timer) this.timers.clearTimeout(s.timer);
    for (const t of this.breakerTimers.values()) this.timers.clearTimeout(t);
    this.slots.clear();
    for (const p of this.allProviders()) p.close?.();
  }

  private allProviders(): PushProvider[] {
    return [...new Set([...Object.values(this.deps.providers), this.deps.fallback])];
  }

  private provider(push: PushRegistration): PushProvider {
    return this.deps.providers[push.platform] ?? this.deps.fallback;
  }

  private breaker(name: string): Breaker {
    let b = this.breakers.get(name);
    if (!b) this.breakers.set(name, (b = new Breaker(this.cfg.breakerFailures, this.cfg.breakerOpenMs)));
    return b;
  }

  private count(name: string): void { this.deps.metrics?.count(name); }

  private arm(slot: Slot, ms: number): void {
    if (slot.timer) this.timers.clearTimeout(slot.timer);
    slot.timer = this.timers.setTimeout(() => this.due(slot), ms);
  }

  /** Its wait is over: into its provider's queue (unless a send for it is in flight: that one's end queues it). */
  private due(slot: Slot): void {
    slot.timer = undefined;
    if (this.slots.get(slot.key) !== slot || slot.sending || !slot.burst) return;
    this.enqueue(slot);
  }

  private enqueue(slot: Slot): void {
    const name = this.provider(slot.push).name;
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = []));
    q.push(slot.key);
    slot.queued = true;
    this.pump(name);
  }

  /** The oldest waiting device's notification goes (never one in flight): a later notice for it covers it. */
  private dropOldest(): void {
    for (const s of this.slots.values()) {
      if (s.sending) continue;
      if (s.timer) this.timers.clearTimeout(s.timer);
      this.forget(s.key); // a queued key whose slot is gone is skipped
      this.count('push_dropped');
      return;
    }
  }

  private pump(name: string): void {
    const q = this.queues.get(name);
    if (!q) return;
    const b = this.breaker(name);
    while (q.length && (this.inFlight.get(name) ?? 0) < this.cfg.concurrency) {
      const slot = this.slots.get(q[0]!);
      if (!slot || !slot.queued) { q.shift(); continue; }
      const now = this.timers.now();
      if (!b.allows(now)) {
        if (!this.breakerTimers.has(name)) {
          this.breakerTimers.set(name, this.timers.setTimeout(() => { this.breakerTimers.delete(name); this.pump(name); }, Math.max(1, b.reopensAt() - now)));
        }
        return;
      }
      q.shift();
      slot.queued = false;
      this.start(slot, name);
    }
  }

  private start(slot: Slot, name: string): void {
    const burst = slot.burst!;
    slot.burst = undefined;
    slot.sending = burst;
    slot.attempts++;
    this.inFlight.set(name, (this.inFlight.get(name) ?? 0) + 1);
    const push = slot.push;
    const provider = this.provider(push);
    slot.sent = this.senderNameOf(burst.from)
      .then((senderName) => render(burst, { previews: push.previews === true, senderName, mode: this.cfg.mode, ttlSec: this.cfg.ttlSec }))
      .then((n) => provider.send(push, n, { user: slot.user, device: slot.device }))
      .catch((err: unknown): SendResult => ({ kind: 'retry', reason: `network: ${String(err)}`, outage: true }))
      .then((r) => this.finish(slot, name, push, burst, r));
  }

  private finish(slot: Slot, name: string, push: PushRegistration, burst: Burst, r: SendResult): void {
    this.inFlight.set(name, (this.inFlight.get(name) ?? 1) - 1);
    slot.sending = undefined;
    slot.sent = undefined;
    if (this.closed) return;
    const b = this.breaker(name);
    const now = this.timers.now();
    if (r.kind === 'retry' && r.outage) b.failure(now); else b.success();
    const live = this.slots.get(slot.key) === slot;
    switch (r.kind) {
      case 'sent':
        this.count(`push_${name}_sent`);
        slot.attempts = 0;
        break;
      case 'dead':
        this.count(`push_${name}_removed`);
        log('info', 'push registration dead; removing it', { provider: name, user: slot.user, device: slot.device, reason: r.reason });
        if (this.deadTokens.size >= DEAD_MAX) this.deadTokens.delete(this.deadTokens.values().next().value!);
        this.deadTokens.add(tokenKey(push));
        this.deps.dead({ user: slot.user, device: slot.device, push });
        slot.attempts = 0;
        if (slot.push.token === push.token) slot.burst = undefined; // what came meanwhile was for the same dead token
        break;
      case 'failed':
        this.count(`push_${name}_failed`);
        log('warn', 'push refused; not retried', { provider: name, user: slot.user, device: slot.device, reason: r.reason });
        slot.attempts = 0;
        break;
      case 'retry':
        if (slot.attempts >= this.cfg.maxAttempts) {
          this.count(`push_${name}_failed`);
          log('warn', 'push failed; giving up', { provider: name, user: slot.user, device: slot.device, attempts: slot.attempts, reason: r.reason });
          slot.attempts = 0;
          break;
        }
        this.count(`push_${name}_retried`);
        if (live) {
          slot.burst = slot.burst ? mergeBursts(burst, slot.burst) : burst;
          this.arm(slot, retryDelay(slot.attempts, r.retryAfterMs, this.cfg.retryBaseMs, this.cfg.retryMaxMs, this.random()));
        }
        break;
    }
    if (live) {
      if (slot.burst && !slot.timer && !slot.queued) this.enqueue(slot); // came during the send, its wait over
      else if (!slot.burst && !slot.timer && !slot.queued) this.forget(slot.key);
    }
    this.pump(name);
  }

  /** Nothing more is owed to the device: its slot and its mark go. */
  private forget(key: string): void {
    this.slots.delete(key);
    this.deps.marks?.delete(key).catch((err: unknown) => log('warn', 'push mark not deleted', { error: String(err) }));
  }

  private async senderNameOf(user: UserId): Promise<string | undefined> {
    if (this.cfg.mode === 'wake') return undefined;
    const now = this.timers.now();
    const hit = this.names.get(user);
    if (hit && now - hit.at < NAME_TTL_MS) return hit.name;
    const name = await this.deps.senderName(user).catch(() => undefined);
    if (this.names.size >= NAMES_MAX) this.names.delete(this.names.keys().next().value!);
    this.names.set(user, { name, at: now });
    return name;
  }
}
