import type { PushRegistration } from '../store/store.js';
import type { Notification } from './policy.js';
import type { PushProvider, SendResult } from './push-gateway.js';
import { TokenCache, form, post, retryAfter, tokenAnswer, withBearer, type HttpAnswer } from './http.js';

/**
 * Windows Push Notification Services: an access token by OAuth client credentials (the app's package SID
 * and secret), then a POST to the device's channel URI: a toast (XML) to show, or raw bytes for the app to
 * wake on. Answers: learn.microsoft.com, "Push notification service request and response headers".
 */
export interface WnsConfig {
  clientId: string;
  clientSecret: string;
  /** https://login.live.com/accesstoken.srf */
  tokenUrl: string;
  timeoutMs: number;
}

export const WNS_SCOPE = 'notify.windows.com';

const xml = (s: string): string => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A ToastGeneric toast whose launch argument names the conversation to open. */
export function wnsToast(n: Notification): string {
  const lines = [n.title, n.body].filter((x): x is string => x !== undefined).map((x) => `<text>${xml(x)}</text>`).join('');
  return `<toast launch="${xml(`conv=${n.conv}&seq=${n.seq}`)}"><visual><binding template="ToastGeneric">${lines}</binding></visual></toast>`;
}

export class WnsProvider implements PushProvider {
  readonly name = 'wns';
  readonly tokens: TokenCache;

  constructor(private readonly cfg: WnsConfig, now: () => number = Date.now) {
    this.tokens = new TokenCache(async () => tokenAnswer(await post(cfg.tokenUrl, { 'content-type': 'application/x-www-form-urlencoded' },
      form({ grant_type: 'client_credentials', client_id: cfg.clientId, client_secret: cfg.clientSecret, scope: WNS_SCOPE }), cfg.timeoutMs), now(), 'wns'), now);
  }

  async send(push: PushRegistration, n: Notification): Promise<SendResult> {
    try {
      return classify(await withBearer(this.tokens, (bearer) => this.sendOnce(push, n, bearer)));
    } catch (err) {
      return { kind: 'retry', reason: `wns: ${String(err)}`, outage: true };
    }
  }

  private sendOnce(push: PushRegistration, n: Notification, bearer: string): Promise<HttpAnswer> {
    const toast = n.type === 'alert';
    const headers = {
      authorization: `Bearer ${bearer}`,
      'x-wns-type': toast ? 'wns/toast' : 'wns/raw',
      'content-type': toast ? 'text/xml' : 'application/octet-stream',
      'x-wns-tag': n.collapseId,
      'x-wns-ttl': String(n.ttlSec),
      'x-wns-requestforstatus': 'true',
    };
    const body = toast ? wnsToast(n) : JSON.stringify({ conv: n.conv, seq: n.seq, count: n.count });
    return post(push.token, headers, body, this.cfg.timeoutMs);
  }
}

export function classify(a: HttpAnswer): SendResult {
  const status = a.headers.get('x-wns-notificationstatus');
  const r = `wns ${a.status}${status ? ` ${status}` : ''}`;
  const after = retryAfter(a);
  const wait = after !== undefined ? { retryAfterMs: after } : {};
  if (a.status === 200) return { kind: 'sent' };
  // 404: the channel is not valid; 410: it expired. Either way the app must get a new one.
  if (a.status === 404 || a.status === 410) return { kind: 'dead', reason: r };
  if (a.status === 406 || a.status === 429) return { kind: 'retry', reason: r, ...wait }; // 406: throttled
  if (a.status >= 500) return { kind: 'retry', reason: r, outage: true, ...wait };
  return { kind: 'failed', reason: r }; // 400, 401 after a renewal, 403 (the channel is another app's), 413
}
