import { connect, constants, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { PushRegistration } from '../store/store.js';
import type { Notification } from './policy.js';
import { parseRetryAfter } from './policy.js';
import type { PushProvider, SendResult } from './push-gateway.js';
import { json } from './http.js';

/**
 * Apple Push Notification service, token-based: HTTP/2 to api.push.apple.com (one session, many streams),
 * each request authorized by an ES256 JWT signed with the team's .p8 key. Apple refuses a token older than an
 * hour and one renewed more often than every 20 minutes (TooManyProviderTokenUpdates), so one token serves
 * `tokenRefreshMs` (20–60 minutes) and is renewed early only when APNs calls it expired.
 * Answers: developer.apple.com, "Handling notification responses from APNs".
 */
export interface ApnsConfig {
  /** https://api.push.apple.com, or https://api.sandbox.push.apple.com for development builds. */
  url: string;
  /** The .p8 signing key (PEM). */
  key: string;
  keyId: string;
  teamId: string;
  /** The app's bundle id, for registrations that name none. */
  topic: string;
  tokenRefreshMs: number;
  /** Extra CA certificates to trust (PEM): a TLS-inspecting proxy's, or a local test server's. */
  ca?: string;
  timeoutMs: number;
}

export const APNS_REFRESH_MIN_MS = 20 * 60_000;
export const APNS_REFRESH_MAX_MS = 60 * 60_000;

/** The JSON APNs delivers to the app: an alert with a badge, or a content-free background wake-up. */
export function apnsPayload(n: Notification): Record<string, unknown> {
  const data = { conv: n.conv, seq: n.seq, count: n.count };
  if (n.type === 'wake') return { aps: { 'content-available': 1 }, ...data };
  const alert = n.title !== undefined ? { title: n.title, body: n.body } : { body: n.body };
  return { aps: { alert, badge: n.count, sound: 'default', 'thread-id': n.collapseId, 'mutable-content': 1 }, ...data };
}

interface Answer { status: number; headers: IncomingHttpHeaders; body: string }

export class ApnsProvider implements PushProvider {
  readonly name = 'apns';
  private readonly key: KeyObject;
  private session: ClientHttp2Session | undefined;
  private jwt: { token: string; at: number } | undefined;
  /** Provider tokens signed so far (a test checks the refresh interval). */
  signed = 0;

  constructor(private readonly cfg: ApnsConfig, private readonly now: () => number = Date.now) {
    this.key = createPrivateKey(cfg.key);
  }

  async send(push: PushRegistration, n: Notification): Promise<SendResult> {
    try {
      let jwt = await this.providerToken(false);
      let a = await this.request(push, n, jwt);
      if (a.status === 403 && reason(a) === 'ExpiredProviderToken') {
        // Renewed once; a second refusal is a configuration problem, not something a retry fixes.
        if (this.jwt?.token === jwt) this.jwt = undefined;
        jwt = await this.providerToken(true);
        a = await this.request(push, n, jwt);
      }
      return classify(a);
    } catch (err) {
      this.drop();
      return { kind: 'retry', reason: `apns: ${String(err)}`, outage: true };
    }
  }

  close(): void { this.drop(); }

  private async providerToken(renew: boolean): Promise<string> {
    const now = this.now();
    if (!renew && this.jwt && now - this.jwt.at < this.cfg.tokenRefreshMs) return this.jwt.token;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: this.cfg.keyId })
      .setIssuer(this.cfg.teamId)
      .setIssuedAt(Math.floor(now / 1000))
      .sign(this.key);
    this.signed++;
    this.jwt = { token, at: now };
    return token;
  }

  private connection(): ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const fresh = connect(this.cfg.url, this.cfg.ca ? { ca: this.cfg.ca } : {});
    // A session that fails or is told to go away is replaced on the next send; requests on it fail and retry.
    const forget = () => { if (this.session === fresh) this.session = undefined; };
    fresh.on('error', forget);
    fresh.on('close', forget);
    fresh.on('goaway', forget);
    fresh.unref();
    this.session = fresh;
    return fresh;
  }

  private drop(): void {
    const s = this.session;
    this.session = undefined;
    s?.close();
  }

  private request(push: PushRegistration, n: Notification, jwt: string): Promise<Answer> {
    const body = JSON.stringify(apnsPayload(n));
    const headers = {
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: `/3/device/${push.token}`,
      authorization: `bearer ${jwt}`,
      'apns-topic': push.app ?? this.cfg.topic,
      'apns-push-type': n.type === 'alert' ? 'alert' : 'background',
      // Background pushes must be priority 5 (Apple throttles or drops them otherwise).
      'apns-priority': n.type === 'alert' ? '10' : '5',
      'apns-expiration': String(Math.floor(this.now() / 1000) + n.ttlSec),
      'apns-collapse-id': n.collapseId,
      'content-type': 'application/json',
    };
    return new Promise<Answer>((resolve, reject) => {
      const req = this.connection().request(headers);
      let status = 0;
      let resHeaders: IncomingHttpHeaders = {};
      let text = '';
      req.setEncoding('utf8');
      req.setTimeout(this.cfg.timeoutMs, () => req.close(constants.NGHTTP2_CANCEL));
      req.on('response', (h) => { resHeaders = h; status = Number(h[constants.HTTP2_HEADER_STATUS]); });
      req.on('data', (chunk: string) => { if (text.length < 4096) text += chunk; });
      req.on('end', () => (status ? resolve({ status, headers: resHeaders, body: text }) : reject(new Error('stream ended without a response'))));
      req.on('error', reject);
      req.on('close', () => { if (!status) reject(new Error(`stream closed (code ${req.rstCode})`)); });
      req.end(body);
    });
  }
}

const reason = (a: Answer): string => String(json(a.body)?.reason ?? '');

/** APNs answers (status and `reason`) as the dispatcher handles them. */
export function classify(a: Answer): SendResult {
  const why = reason(a);
  const after = parseRetryAfter(typeof a.headers['retry-after'] === 'string' ? a.headers['retry-after'] : undefined, Date.now());
  const r = `apns ${a.status}${why ? ` ${why}` : ''}`;
  if (a.status === 200) return { kind: 'sent' };
  if (a.status === 410 || why === 'BadDeviceToken' || why === 'DeviceTokenNotForTopic' || why === 'Unregistered' || why === 'ExpiredToken') return { kind: 'dead', reason: r };
  if (a.status === 429) return { kind: 'retry', reason: r, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  if (a.status >= 500) return { kind: 'retry', reason: r, outage: true, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  return { kind: 'failed', reason: r }; // 400 (a bad request of ours), 403 (credentials), 413 PayloadTooLarge
}
