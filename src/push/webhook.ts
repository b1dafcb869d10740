import { createHmac } from 'node:crypto';
import type { DeviceId, UserId } from '../protocol/ids.js';
import type { PushRegistration } from '../store/store.js';
import type { Notification } from './policy.js';
import type { PushProvider, SendResult } from './push-gateway.js';
import { post, retryAfter } from './http.js';

/**
 * A generic webhook for what no provider here covers (an in-house gateway, an SMS fallback): the platforms
 * without credentials go to it instead of the dev outbox. Each notification is one JSON POST, signed with
 * HMAC-SHA256 over the body (`x-parley-signature: sha256=<hex>`) so the receiver can tell it came from the node.
 */
export interface WebhookConfig { url: string; secret: string; timeoutMs: number }

export const signature = (secret: string, body: string): string => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

export class WebhookProvider implements PushProvider {
  readonly name = 'webhook';
  constructor(private readonly cfg: WebhookConfig) {}

  async send(push: PushRegistration, n: Notification, to: { user: UserId; device: DeviceId }): Promise<SendResult> {
    const body = JSON.stringify({ user: to.user, device: to.device, platform: push.platform, token: push.token, ...(push.app ? { app: push.app } : {}), notification: n });
    try {
      const a = await post(this.cfg.url, { 'content-type': 'application/json', 'x-parley-signature': signature(this.cfg.secret, body) }, body, this.cfg.timeoutMs);
      const after = retryAfter(a);
      const wait = after !== undefined ? { retryAfterMs: after } : {};
      const r = `webhook ${a.status}`;
      if (a.status >= 200 && a.status < 300) return { kind: 'sent' };
      if (a.status === 404 || a.status === 410) return { kind: 'dead', reason: r }; // the gateway says this address is gone
      if (a.status === 429) return { kind: 'retry', reason: r, ...wait };
      if (a.status >= 500) return { kind: 'retry', reason: r, outage: true, ...wait };
      return { kind: 'failed', reason: r };
    } catch (err) {
      return { kind: 'retry', reason: `webhook: ${String(err)}`, outage: true };
    }
  }
}
