import { rateLimited, ParleyError } from '../protocol/errors.js';
import type { DeviceId, UserId } from '../protocol/ids.js';
import type { DeviceKeyInfo, KeysPublishFrame } from '../protocol/frames.js';
import type { Store } from '../store/store.js';
import type { PubSub } from '../routing/gateway.js';
import { KeyedLimiter } from '../transport/rate-limit.js';
import { KEY_LIMITS } from './key-limits.js';

/** KeyPackages one user may claim at once, and per second after that (each is a device's one-time key spent). */
export const CLAIM_RATE = { burst: 200, perSecond: 2 };

/**
 * The server's part of end-to-end encryption for keys: devices upload opaque MLS KeyPackages, others claim
 * them, each one-time package exactly once (the store's claim is atomic), the last resort when none is left.
 * Claims are charged to the fetcher, a package per device, so nobody drains someone's one-time packages
 * (past the budget they get `rate_limited`, and a drained device still answers with its last resort).
 */
export class KeyDirectory {
  constructor(
    private readonly store: Store,
    private readonly pubsub: PubSub,
    private readonly claims = new KeyedLimiter(CLAIM_RATE),
  ) {}

  /**
   * Stores the upload; the user's other devices hear of a device's first one, or of one with a new identity
   * (to add it to their groups, or replace its leaf).
   */
  async publish(user: UserId, device: DeviceId, f: KeysPublishFrame): Promise<{ count: number }> {
    const e2e = this.store.e2e;
    const stored = (await e2e.keyDevices(user)).find((k) => k.device === device);
    let known = stored !== undefined;
    // A new identity (the app reinstalled, its state lost): the old keys are useless to anyone, and go.
    if (stored && f.identity && !sameBytes(stored.identity, f.identity)) {
      await e2e.dropDeviceKeys(user, device);
      known = false;
    }
    if (!known && !(f.identity && f.lastResort)) throw new ParleyError('invalid', 'a device\'s first upload carries its identity and a last-resort package');
    const held = f.oneTime?.length ? await e2e.countKeys(user, device) : 0;
    if (held + (f.oneTime?.length ?? 0) > KEY_LIMITS.oneTimeHeld) {
      throw new ParleyError('invalid', `a device holds at most ${KEY_LIMITS.oneTimeHeld} one-time packages (${held} held)`);
    }
    await e2e.publishKeys(user, device, { ...(f.identity ? { identity: f.identity } : {}), ...(f.lastResort ? { lastResort: f.lastResort } : {}), oneTime: f.oneTime ?? [] });
    if (!known) this.pubsub.publish(user, { t: 'keys', event: 'published', device });
    return { count: await e2e.countKeys(user, device) };
  }

  /** A package of every device of `users` that has keys (of `only`, when given; never the asking device's own). */
  async claim(fetcher: UserId, asker: DeviceId, users: UserId[], only?: DeviceId[]): Promise<{ devices: DeviceKeyInfo[] }> {
    const e2e = this.store.e2e;
    const listed = (await Promise.all(users.map((u) => e2e.keyDevices(u))))
      .flatMap((ds) => ds.slice(0, KEY_LIMITS.devicesPerUser))
      .filter((k) => !(k.user === fetcher && k.device === asker) && (!only || only.includes(k.device)));
    const wait = this.claims.take(fetcher, Date.now(), listed.length);
    if (wait) throw rateLimited(`over your key-claim budget (${CLAIM_RATE.burst} packages, ${CLAIM_RATE.perSecond}/s)`, wait);
    const claimed = await Promise.all(listed.map((k) => e2e.claimKey(k.user, k.device)));
    const devices: DeviceKeyInfo[] = [];
    for (const c of claimed) {
      if (!c) continue; // its keys were dropped meanwhile (signed out)
      devices.push({ user: c.user, device: c.device, identity: c.identity, keyPackage: c.keyPackage, ...(c.lastResort ? { lastResort: true as const } : {}) });
    }
    return { devices };
  }

  /** The identities of the users' devices: what a safety number is computed from. Claims nothing. */
  async list(users: UserId[]): Promise<{ devices: DeviceKeyInfo[] }> {
    const all = await Promise.all(users.map((u) => this.store.e2e.keyDevices(u)));
    return { devices: all.flat().map((k) => ({ user: k.user, device: k.device, identity: k.identity })) };
  }

  async count(user: UserId, device: DeviceId): Promise<{ count: number; lastResort: boolean }> {
    const [count, devices] = await Promise.all([this.store.e2e.countKeys(user, device), this.store.e2e.keyDevices(user)]);
    return { count, lastResort: devices.some((k) => k.device === device && k.hasLastResort) };
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
