import { createHash } from 'node:crypto';
import { ParleyError } from '../protocol/errors.js';
import { PUSH_PLATFORMS, type PushPlatform } from '../protocol/frames.js';
import type { PushRegistration } from '../store/store.js';

/**
 * A push registration as a client sends it, checked field by field (pure). The limits are in
 * docs/protocol.md ("Push"). Where a token is a URL the node will POST to (a WNS channel, a Web Push
 * endpoint), its origin must also be one the node allows (`endpointAllowed`): else any client could make
 * the node send requests to an address of its choosing.
 */

export const PUSH_LIMITS = {
  /** APNs device tokens are hex; 32 bytes today, Apple says to expect them to grow. */
  apnsTokenMin: 64, apnsTokenMax: 200,
  /** FCM registration tokens (~160 characters today; no documented maximum). */
  fcmTokenMax: 4096,
  /** WNS channel URIs and Web Push endpoints. */
  urlMax: 2048,
  /** A Web Push subscription's p256dh (65 bytes) and auth (16 bytes), base64url. */
  p256dhChars: 87, authChars: 22,
  /** The app id / APNs topic. */
  appMax: 255,
} as const;

type Obj = Record<string, unknown>;
const invalid = (message: string): never => { throw new ParleyError('invalid', message); };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const B64URL = /^[A-Za-z0-9_-]+$/;

/** The registration fields of a `push.register` frame (or HTTP body): a PushRegistration, or `invalid` naming the field. */
export function parseRegistration(v: Obj): PushRegistration {
  const platform = v.platform as PushPlatform;
  if (!PUSH_PLATFORMS.includes(platform)) invalid(`platform must be one of ${PUSH_PLATFORMS.join(', ')}`);
  if (v.previews !== undefined && typeof v.previews !== 'boolean') invalid('previews must be true or false');
  const previews = v.previews === true;
  let app: string | undefined;
  if (v.app !== undefined) {
    if (typeof v.app !== 'string' || !/^[A-Za-z0-9._-]+$/.test(v.app) || v.app.length > PUSH_LIMITS.appMax) {
      invalid(`app must be 1..${PUSH_LIMITS.appMax} letters, digits, dots, dashes or underscores`);
    }
    app = v.app as string;
  }
  const base = { ...(app ? { app } : {}), ...(previews ? { previews } : {}) };
  if (platform === 'webpush') {
    if (v.token !== undefined) invalid('a webpush registration has endpoint and keys, not token');
    const endpoint = url(v.endpoint, 'endpoint');
    const keys = v.keys;
    if (!isObj(keys)) return invalid('keys must be {p256dh, auth}');
    const p256dh = keys.p256dh;
    const auth = keys.auth;
    if (typeof p256dh !== 'string' || p256dh.length !== PUSH_LIMITS.p256dhChars || !B64URL.test(p256dh) || !p256dh.startsWith('B')) {
      invalid('keys.p256dh must be an uncompressed P-256 public key, base64url (87 characters)');
    }
    if (typeof auth !== 'string' || auth.length !== PUSH_LIMITS.authChars || !B64URL.test(auth)) {
      invalid('keys.auth must be a 16-byte secret, base64url (22 characters)');
    }
    return { platform, token: endpoint, p256dh: p256dh as string, auth: auth as string, ...base };
  }
  if (v.endpoint !== undefined || v.keys !== undefined) invalid(`a ${platform} registration has a token, not endpoint or keys`);
  const token = v.token;
  if (typeof token !== 'string' || token.length === 0) return invalid('token must be a string');
  switch (platform) {
    case 'apns':
      if (token.length < PUSH_LIMITS.apnsTokenMin || token.length > PUSH_LIMITS.apnsTokenMax || !/^[0-9a-fA-F]+$/.test(token)) {
        invalid(`an APNs token is ${PUSH_LIMITS.apnsTokenMin}..${PUSH_LIMITS.apnsTokenMax} hex digits`);
      }
      return { platform, token: token.toLowerCase(), ...base };
    case 'fcm':
      if (token.length > PUSH_LIMITS.fcmTokenMax || !/^[A-Za-z0-9_:.-]+$/.test(token)) {
        invalid(`an FCM token is 1..${PUSH_LIMITS.fcmTokenMax} letters, digits and _:.-`);
      }
      return { platform, token, ...base };
    default: // wns: the channel URI
      return { platform, token: url(token, 'token'), ...base };
  }
}

function url(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length > PUSH_LIMITS.urlMax) return invalid(`${field} must be a URL of at most ${PUSH_LIMITS.urlMax} characters`);
  let u: URL;
  try { u = new URL(v); } catch { return invalid(`${field} must be a URL`); }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username || u.password) invalid(`${field} must be an https URL`);
  return v;
}

/**
 * An allowed origin pattern: `https://host[:port]`, where host may start with `*.` (any subdomain). The
 * defaults are the push services' own (config.ts); tests add their local servers.
 */
export function endpointAllowed(endpoint: string, patterns: readonly string[]): boolean {
  let u: URL;
  try { u = new URL(endpoint); } catch { return false; }
  const origin = `${u.protocol}//${u.host}`.toLowerCase();
  return patterns.some((p) => {
    const m = /^(https?:\/\/)\*\.(.+)$/.exec(p.toLowerCase());
    if (!m) return origin === p.toLowerCase();
    return origin.startsWith(m[1]!) && origin.slice(m[1]!.length).endsWith(`.${m[2]}`);
  });
}

/** The token index key: a hash, so the index holds no token and every key has one size. */
export const tokenKey = (r: PushRegistration): string => createHash('sha256').update(`${r.platform}\u0000${r.token}`).digest('base64url');

/** Two registrations name the same push address (the other fields may differ). */
export const sameAddress = (a: PushRegistration | undefined, b: PushRegistration | undefined): boolean =>
  a !== undefined && b !== undefined && a.platform === b.platform && a.token === b.token;
