import { createHmac, timingSafeEqual } from 'node:crypto';
import { isId, type UserId } from '../protocol/ids.js';

/**
 * Short-lived, single-purpose media URLs, for <img>/<video> tags that can't send an Authorization header:
 * `/v1/media/<id>?u=<user>&exp=<ms>&sig=<HMAC-SHA256>`. The signature names the media, the user and the
 * expiry, so a URL that leaks (history, logs, a Referer) opens that one file, as that user, for minutes —
 * never a session. The MAC input starts with its own label, so it can't be confused with a session token's.
 */
export class MediaUrlSigner {
  constructor(private readonly secret: Buffer, readonly ttlMs: number) {}

  sign(media: string, user: UserId, now = Date.now()): { url: string; expiresAt: number } {
    const exp = now + this.ttlMs;
    return { url: `/v1/media/${media}?u=${user}&exp=${exp}&sig=${this.mac(media, user, exp)}`, expiresAt: exp };
  }

  /** The user a URL's query grants the media to; undefined if forged, altered, for other media, or expired. */
  verify(media: string, query: URLSearchParams, now = Date.now()): UserId | undefined {
    const user = query.get('u');
    const expText = query.get('exp') ?? '';
    const sig = query.get('sig');
    if (!isId(user) || !/^\d{1,16}$/.test(expText) || !sig) return undefined;
    const exp = Number(expText);
    const expected = Buffer.from(this.mac(media, user, exp));
    const given = Buffer.from(sig);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    return exp > now ? user : undefined;
  }

  private mac(media: string, user: UserId, exp: number): string {
    return createHmac('sha256', this.secret).update(`parley-media-url\u0000v1\u0000${media}\u0000${user}\u0000${exp}`).digest('base64url');
  }
}
