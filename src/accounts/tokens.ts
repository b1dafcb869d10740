import { createHmac, timingSafeEqual } from 'node:crypto';
import type { DeviceId, UserId } from '../protocol/ids.js';

/** A session token names one device of one user: `v1.<base64url claims>.<base64url HMAC-SHA256>`. */
export interface Claims { u: UserId; d: DeviceId; iat: number; exp: number }

/** A token in use is renewed once it is a day old (or half its lifetime, if that is less). */
export const RENEW_AFTER_MS = 86_400_000;

/**
 * Whether a token presented now should be swapped for a fresh one: tokens are long-lived and revocable
 * (the device record is read on every use), and renewing them while in use makes their lifetime a sliding
 * window, so only a device left unused for a whole lifetime has to sign in again.
 */
export function renewalDue(c: Pick<Claims, 'iat' | 'exp'>, now: number): boolean {
  return now - c.iat >= Math.min(RENEW_AFTER_MS, (c.exp - c.iat) / 2);
}

export class TokenSigner {
  constructor(private readonly secret: Buffer) {}

  sign(user: UserId, device: DeviceId, ttlMs: number, now = Date.now()): string {
    const body = Buffer.from(JSON.stringify({ u: user, d: device, iat: now, exp: now + ttlMs } satisfies Claims)).toString('base64url');
    return `v1.${body}.${this.mac(body)}`;
  }

  /** The claims of a well-formed, authentic, unexpired token; otherwise undefined. */
  verify(token: string, now = Date.now()): Claims | undefined {
    const [v, body, mac] = token.split('.');
    if (v !== 'v1' || !body || !mac) return undefined;
    const expected = Buffer.from(this.mac(body));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    try {
      const c = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Claims;
      return typeof c.u === 'string' && typeof c.d === 'string' && c.exp > now ? c : undefined;
    } catch {
      return undefined;
    }
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest('base64url');
  }
}
