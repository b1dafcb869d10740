import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { PushRegistration } from '../store/store.js';
import type { Notification } from './policy.js';
import type { PushProvider, SendResult } from './push-gateway.js';
import { TokenCache, form, json, post, retryAfter, tokenAnswer, withBearer, type HttpAnswer } from './http.js';

/**
 * Firebase Cloud Messaging, HTTP v1: messages:send with an OAuth2 access token that a service account's
 * RS256-signed JWT assertion buys (RFC 7523), cached until a minute before it expires. Google's own Node
 * libraries need Node 22 in their current majors; this is the two documented requests, by hand.
 * Answers: firebase.google.com, "FCM error codes" (ErrorCode in error.details).
 */
export interface ServiceAccount { client_email: string; private_key: string; private_key_id?: string; project_id: string; token_uri?: string }

export interface FcmConfig {
  account: ServiceAccount;
  /** https://fcm.googleapis.com */
  url: string;
  /** The OAuth2 token endpoint: the service account's token_uri, https://oauth2.googleapis.com/token. */
  tokenUrl: string;
  timeoutMs: number;
}

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

/** The v1 message: a notification with Android's collapse key and TTL, or a data-only wake-up. */
export function fcmMessage(token: string, n: Notification): Record<string, unknown> {
  const data = { conv: n.conv, seq: String(n.seq), count: String(n.count), type: n.type };
  const android: Record<string, unknown> = { priority: 'high', collapse_key: n.collapseId, ttl: `${n.ttlSec}s` };
  if (n.type === 'wake') return { message: { token, data, android } };
  android.notification = { tag: n.collapseId, notification_count: n.count };
  const notification = n.title !== undefined ? { title: n.title, body: n.body } : { body: n.body };
  return { message: { token, data, notification, android } };
}

export class FcmProvider implements PushProvider {
  readonly name = 'fcm';
  private readonly key: KeyObject;
  readonly tokens: TokenCache;

  constructor(private readonly cfg: FcmConfig, private readonly now: () => number = Date.now) {
    this.key = createPrivateKey(cfg.account.private_key);
    this.tokens = new TokenCache(() => this.fetchToken(), now);
  }

  async send(push: PushRegistration, n: Notification): Promise<SendResult> {
    try {
      return classify(await withBearer(this.tokens, (bearer) => this.sendOnce(push, n, bearer)));
    } catch (err) {
      return { kind: 'retry', reason: `fcm: ${String(err)}`, outage: true };
    }
  }

  private sendOnce(push: PushRegistration, n: Notification, bearer: string): Promise<HttpAnswer> {
    const url = `${this.cfg.url}/v1/projects/${encodeURIComponent(this.cfg.account.project_id)}/messages:send`;
    return post(url, { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, JSON.stringify(fcmMessage(push.token, n)), this.cfg.timeoutMs);
  }

  private async fetchToken() {
    const now = Math.floor(this.now() / 1000);
    const { client_email, private_key_id } = this.cfg.account;
    const assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(private_key_id ? { kid: private_key_id } : {}) })
      .setIssuer(client_email)
      .setAudience(this.cfg.tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(this.key);
    const a = await post(this.cfg.tokenUrl, { 'content-type': 'application/x-www-form-urlencoded' },
      form({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }), this.cfg.timeoutMs);
    return tokenAnswer(a, this.now(), 'fcm');
  }
}

/** The ErrorCode FCM v1 puts in error.details (type …FcmError), else the error's status. */
export function fcmErrorCode(text: string): string {
  const err = json(text)?.error as { status?: string; details?: { '@type'?: string; errorCode?: string }[] } | undefined;
  const detail = err?.details?.find((d) => typeof d?.errorCode === 'string');
  return detail?.errorCode ?? err?.status ?? '';
}

export function classify(a: HttpAnswer): SendResult {
  const code = fcmErrorCode(a.text);
  const r = `fcm ${a.status}${code ? ` ${code}` : ''}`;
  const after = retryAfter(a);
  const wait = after !== undefined ? { retryAfterMs: after } : {};
  if (a.status === 200) return { kind: 'sent' };
  // UNREGISTERED: the app was uninstalled or the token expired; SENDER_ID_MISMATCH: the token is another project's.
  if (a.status === 404 || code === 'UNREGISTERED' || code === 'SENDER_ID_MISMATCH') return { kind: 'dead', reason: r };
  if (a.status === 429) return { kind: 'retry', reason: r, ...wait };
  if (a.status >= 500) return { kind: 'retry', reason: r, outage: true, ...wait };
  return { kind: 'failed', reason: r }; // 400 INVALID_ARGUMENT, 401 after a renewal, 403 THIRD_PARTY_AUTH_ERROR
}
