import { devSignIn, type SessionInfo } from '../../src/client/accounts-api.js';
import { ParleyClient, type ClientOptions } from '../../src/client/parley-client.js';
import type { Message, ServerFrame } from '../../src/protocol/frames.js';

export const API_KEY = 'parley-dev-key';
let phoneSeq = Math.floor(Math.random() * 1e6);
export const newPhone = (): string => `+1555${String(++phoneSeq).padStart(7, '0')}`;

/** A signed-in device with an open client that records everything it is told. */
export interface TestDevice {
  session: SessionInfo;
  client: ParleyClient;
  phone: string;
  messages: Message[];
  frames: ServerFrame[];
  /** Resolves with the first recorded item matching `pred`, waiting up to `ms`. */
  waitFor<T>(pick: () => T | undefined, ms?: number, what?: string): Promise<T>;
}

export async function signIn(url: string, phone = newPhone(), name = 'test'): Promise<{ session: SessionInfo; phone: string }> {
  return { session: await devSignIn(url, API_KEY, phone, { name, platform: 'test' }), phone };
}

export async function device(url: string, opts: Partial<ClientOptions> & { phone?: string; session?: SessionInfo } = {}): Promise<TestDevice> {
  const { session, phone } = opts.session ? { session: opts.session, phone: opts.phone ?? '' } : await signIn(url, opts.phone);
  const client = new ParleyClient({ url, token: session.token, ...opts });
  const messages: Message[] = [];
  const frames: ServerFrame[] = [];
  client.on('message', (m) => messages.push(m));
  for (const ev of ['receipt', 'typing', 'presence', 'error', 'synced', 'welcome'] as const) {
    client.on(ev, ((f: ServerFrame | number) => frames.push(typeof f === 'number' ? { t: 'synced', ptr: f } : f)) as never);
  }
  const dev: TestDevice = {
    session, client, phone, messages, frames,
    waitFor: (pick, ms = 5000, what = 'condition') => waitFor(pick, ms, what),
  };
  await client.connect();
  return dev;
}

export async function waitFor<T>(pick: () => T | undefined, ms = 5000, what = 'condition'): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = pick();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
