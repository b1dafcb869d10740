import webpush from 'web-push';
import type { PushRegistration } from '../store/store.js';
import type { Notification } from './policy.js';
import type { PushProvider, SendResult } from './push-gateway.js';
import { post, retryAfter, type HttpAnswer } from './http.js';

/**
 * Web Push (RFC 8030) to a browser's push service: the payload encrypted for the subscription (RFC 8291,
 * aes128gcm) and the request signed with the node's VAPID key (RFC 8292), both by the `web-push` package;
 * the request itself goes out here, so its answer is handled like every other provider's.
 */
export interface WebPushConfig {
  /** VAPID keys (base64url, as `web-push generate-vapid-keys` prints them) and the contact (mailto: or https:). */
  publicKey: string;
  privateKey: string;
  subject: string;
  timeoutMs: number;
}

/** What the service worker receives (decrypted): what a notification shows, or only what to sync. */
export function webPushPayload(n: Notification): Record<string, unknown> {
  const data = { conv: n.conv, seq: n.seq, count: n.count, type: n.type };
  return n.type === 'wake' ? data : { ...data, ...(n.title !== undefined ? { title: n.title } : {}), body: n.body, tag: n.collapseId };
}

export class WebPushProvider implements PushProvider {
  readonly name = 'webpush';
  constructor(private readonly cfg: WebPushConfig) {}

  async send(push: PushRegistration, n: Notification): Promise<SendResult> {
    try {
      const d = webpush.generateRequestDetails(
        { endpoint: push.token, keys: { p256dh: push.p256dh ?? '', auth: push.auth ?? '' } },
        JSON.stringify(webPushPayload(n)),
        {
          vapidDetails: { subject: this.cfg.subject, publicKey: this.cfg.publicKey, privateKey: this.cfg.privateKey },
          TTL: n.ttlSec,
          urgency: n.type === 'alert' ? 'high' : 'normal',
          // A newer message with the same Topic replaces one the service still holds.
          topic: n.collapseId,
          contentEncoding: 'aes128gcm',
        },
      );
      const headers = Object.fromEntries(Object.entries(d.headers).map(([k, v]) => [k, String(v)]));
      return classify(await post(d.endpoint, headers, d.body ?? new Uint8Array(), this.cfg.timeoutMs));
    } catch (err) {
      return { kind: 'retry', reason: `webpush: ${String(err)}`, outage: true };
    }
  }
}

export function classify(a: HttpAnswer): SendResult {
  const r = `webpush ${a.status}`;
  const after = retryAfter(a);
  const wait = after !== undefined ? { retryAfterMs: after } : {};
  if (a.status >= 200 && a.status < 300) return { kind: 'sent' };
  // The subscription expired or was unsubscribed (RFC 8030 §7.3: 404 and 410).
  if (a.status === 404 || a.status === 410) return { kind: 'dead', reason: r };
  if (a.status === 429) return { kind: 'retry', reason: r, ...wait };
  if (a.status >= 500) return { kind: 'retry', reason: r, outage: true, ...wait };
  return { kind: 'failed', reason: `${r} ${a.text.slice(0, 120)}` }; // 400, 401/403 (VAPID), 413 (payload too large)
}
