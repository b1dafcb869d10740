import { ParleyError } from '../protocol/errors.js';
import { newId, type DeviceId, type UserId } from '../protocol/ids.js';
import type { Store, UserRecord } from '../store/store.js';
import type { Config } from '../config.js';
import type { SmsGateway } from './sms-gateway.js';
import { renewalDue, type TokenSigner } from './tokens.js';
import { log } from '../log.js';
import { OneTimeCodes, type RequestSource } from './otp.js';

const PHONE_RE = /^\+[1-9]\d{6,14}$/;

export interface Session { user: UserId; device: DeviceId; token: string; expiresAt: number; created: boolean }
/** An authenticated request: whose device, and when its token was issued and expires. */
export interface AuthSession { user: UserId; device: DeviceId; issuedAt: number; expiresAt: number }

/**
 * Accounts by phone number and one-time code. Registering and logging in are one flow: a code goes to the
 * phone; the right code creates the user if the number is new, and a device with a session token either way.
 */
export class Accounts {
  private readonly codes: OneTimeCodes;

  constructor(
    private readonly store: Store,
    sms: SmsGateway,
    private readonly tokens: TokenSigner,
    secret: Buffer,
    private readonly cfg: Pick<Config, 'otp' | 'tokenTtlMs' | 'apiKeys'>,
    /**
     * Told when an existing user gets a new device, so a live user entity starts filling its inbox; resolves
     * once the entity knows it (and so do the sessions of the user's other devices).
     */
    private readonly onDeviceAdded?: (user: UserId, device: DeviceId) => Promise<unknown>,
    /** Told once per account created (analytics' sign-ups). */
    private readonly onSignup?: (user: UserId) => void,
  ) {
    this.codes = new OneTimeCodes(store, sms, secret, cfg.otp);
  }

  checkApiKey(key: string | undefined): void {
    if (!key || !this.cfg.apiKeys.includes(key)) throw new ParleyError('unauthorized', 'missing or unknown API key');
  }

  /** Sends a one-time code by SMS; `from` is who asks (limits per address and app key, src/accounts/otp.ts). */
  async requestCode(phoneRaw: unknown, from: RequestSource): Promise<{ ttlMs: number }> {
    return this.codes.send(normalizePhone(phoneRaw), from);
  }

  async verify(phoneRaw: unknown, codeRaw: unknown, deviceInfo: { name?: unknown; platform?: unknown }, from: RequestSource): Promise<Session> {
    const phone = normalizePhone(phoneRaw);
    await this.codes.check(phone, codeRaw, from);

    let user: UserRecord | undefined;
    const existing = await this.store.userByPhone(phone);
    if (existing) user = await this.store.getUser(existing);
    // Its erasure has begun: no new device, and once it is done the number makes a new account.
    if (existing && (await this.store.getErasure(existing))) throw new ParleyError('conflict', 'this account is being deleted; try again in a minute');
    const created = !user;
    // No name until the user sets one (the number is not shown to strangers), presence for contacts only.
    const fresh = newId();
    user ??= await this.store.createUser({ id: fresh, phone, name: '', createdAt: Date.now(), lastSeenPrivacy: 'contacts' });
    // A racing sign-in that lost the phone's claim gets the winner's account: only the winner signed up.
    if (user.id === fresh) this.onSignup?.(user.id);
    const device = newId(8);
    await this.store.putDevice({
      user: user.id, id: device, createdAt: Date.now(), acked: 0,
      name: clip(deviceInfo.name, 64) ?? 'device', platform: clip(deviceInfo.platform, 32) ?? 'unknown',
    });
    // A failure here is logged, not returned: the device is stored, and an entity that missed it loads it.
    // Except a sign-out everywhere that the entity ordered before this sign-in: no token for a dead device.
    if (!created) {
      await this.onDeviceAdded?.(user.id, device).catch((err) => {
        if (err instanceof ParleyError && err.code === 'signed_out') throw new ParleyError('signed_out', 'this device was signed out while signing in; sign in again');
        log('warn', 'device not announced', { user: user.id, error: String(err) });
      });
    }
    return { user: user.id, device, ...this.issue(user.id, device), created };
  }

  /** Checks a one-time code sent to the user's own phone (a fresh code confirms an account's erasure). */
  async confirmCode(user: UserId, codeRaw: unknown, from: RequestSource): Promise<void> {
    const u = await this.store.getUser(user);
    if (!u) throw new ParleyError('not_found', 'no such user');
    await this.codes.check(u.phone, codeRaw, from);
  }

  /** A fresh token for an authenticated device (the sliding window: see renewalDue). */
  issue(user: UserId, device: DeviceId, now = Date.now()): { token: string; expiresAt: number } {
    return { token: this.tokens.sign(user, device, this.cfg.tokenTtlMs, now), expiresAt: now + this.cfg.tokenTtlMs };
  }

  /** A renewed token when the one presented is due for it, else undefined. */
  renewal(s: AuthSession, now = Date.now()): { token: string; expiresAt: number } | undefined {
    return renewalDue({ iat: s.issuedAt, exp: s.expiresAt }, now) ? this.issue(s.user, s.device, now) : undefined;
  }

  /** The session behind a token, if the token is authentic and its device still exists. */
  async authenticate(token: string | undefined): Promise<AuthSession> {
    const claims = token ? this.tokens.verify(token) : undefined;
    if (!claims) throw new ParleyError('unauthorized', 'missing, invalid or expired token');
    // Read on every use: a sign-out is immediate, on every node.
    const device = await this.store.getDevice(claims.u, claims.d);
    if (!device) throw new ParleyError('signed_out', 'this device was signed out; sign in again');
    return { user: claims.u, device: claims.d, issuedAt: claims.iat, expiresAt: claims.exp };
  }

  /** Contact discovery (the Directory of client sessions). */
  async lookup(phones: string[]): Promise<Record<string, UserId>> {
    const out: Record<string, UserId> = {};
    await Promise.all(phones.map(async (raw) => {
      let phone: string;
      try { phone = normalizePhone(raw); } catch { return; }
      const user = await this.store.userByPhone(phone);
      if (user) out[raw] = user;
    }));
    return out;
  }
}

export function normalizePhone(raw: unknown): string {
  const phone = typeof raw === 'string' ? raw.replace(/[\s().-]/g, '') : '';
  if (!PHONE_RE.test(phone)) throw new ParleyError('invalid', 'phone must be in E.164 form, like +14155550123');
  return phone;
}

const clip = (v: unknown, max: number): string | undefined => (typeof v === 'string' && v.length ? v.slice(0, max) : undefined);
