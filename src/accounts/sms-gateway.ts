import { log } from '../log.js';

/** Sends one-time codes. The dev provider keeps them in an outbox; the HTTP provider posts them to a gateway. */
export interface SmsGateway {
  send(phone: string, text: string): Promise<void>;
}

export class DevOutboxSms implements SmsGateway {
  private readonly outbox = new Map<string, { text: string; at: number }[]>();
  async send(phone: string, text: string): Promise<void> {
    const list = this.outbox.get(phone) ?? [];
    list.push({ text, at: Date.now() });
    this.outbox.set(phone, list.slice(-10));
    log('info', 'sms (dev outbox)', { phone, text });
  }
  last(phone: string): { text: string; at: number } | undefined {
    return this.outbox.get(phone)?.at(-1);
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
