import { log } from '../log.js';
import { pack, unpack } from '../protocol/codec.js';
import type { Store } from '../store/store.js';

/** Sends one-time codes. The dev provider keeps them in an outbox; the HTTP provider posts them to a gateway. */
export interface SmsGateway {
  send(phone: string, text: string): Promise<void>;
}

/**
 * The development provider: codes are kept in the store's dev outbox (box `sms`, by phone), so that on a
 * cluster any node's GET /v1/dev/otp finds a code whichever node sent it. A code the store could not keep
 * is a send that failed (retryable), as with a real gateway.
 */
export class DevOutboxSms implements SmsGateway {
  constructor(private readonly store: Pick<Store, 'devOutboxAdd' | 'devOutboxList'>) {}
  async send(phone: string, text: string): Promise<void> {
    await this.store.devOutboxAdd('sms', phone, pack({ text }));
    log('info', 'sms (dev outbox)', { phone, text });
  }
  async last(phone: string): Promise<{ text: string; at: number } | undefined> {
    const e = (await this.store.devOutboxList('sms', phone)).at(-1);
    return e && { text: String((unpack(e.data) as { text?: unknown }).text), at: e.at };
  }
}

/** POSTs `{"to": phone, "text": text}` as JSON; any non-2xx answer is a failure the client sees as retryable. */
export class HttpSms implements SmsGateway {
  constructor(private readonly url: string, private readonly timeoutMs = 5000) {}
  async send(phone: string, text: string): Promise<void> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: phone, text }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) throw new Error(`sms gateway answered ${res.status}`);
  }
}
