import { unpack } from 'msgpackr';
import WebSocket from 'ws';
import { devSignIn, type SessionInfo } from '../../src/client/accounts-api.js';
import { ParleyClient, type ClientOptions } from '../../src/client/parley-client.js';
import type { Message, ServerFrame } from '../../src/protocol/frames.js';

export const API_KEY = 'parley-dev-key';
let phoneSeq = Math.floor(Math.random() * 1e6);
export const newPhone = (): string => `+1555${String(++phoneSeq).padStart(7, '0')}`;

/** A signed-in device with an open client that records everything it is told. */
export interface TestDevice {
  session: SessionInfo;
  /** The user id (session.user). */
  user: string;
  client: ParleyClient;
  phone: string;
  messages: Message[];
  /** Inbox pointers of `messages`, index for index. */
  ptrs: number[];
  /** Messages the client emitted as `late` (after a later one of their conversation). */
  late: Message[];
  frames: ServerFrame[];
  /** Every close the client saw, in order. */
  closes: { code: number; reason: string }[];
  /** Every `ws` socket the client opened, the current one last (for tests that misbehave on purpose). */
  sockets: WebSocket[];
  /**
   * What crossed its sockets, one line each (the last WIRE_LINES): opens and closes, deliveries and syncs in,
   * acks and syncs out, by socket. For a failing test to show where a message went missing.
   */
  wire: string[];
  /** Resolves with the first recorded item matching `pred`, waiting up to `ms`. */
  waitFor<T>(pick: () => T | undefined, ms?: number, what?: string): Promise<T>;
  /** Resolves with the first received message matching `pred`. */
  waitMessage(pred: (m: Message) => boolean, what?: string, ms?: number): Promise<Message>;
  /** Resolves with the first recorded frame matching `pred`. */
  waitFrame<F extends ServerFrame>(pred: (f: ServerFrame) => f is F, what?: string, ms?: number): Promise<F>;
  waitFrame(pred: (f: ServerFrame) => boolean, what?: string, ms?: number): Promise<ServerFrame>;
  /** Closes the client (no reconnect) and waits until the socket is closed. */
  close(): Promise<void>;
}

export async function signIn(url: string, phone = newPhone(), name = 'test'): Promise<{ session: SessionInfo; phone: string }> {
  return { session: await devSignIn(url, API_KEY, phone, { name, platform: 'test' }), phone };
}

/** A `ws` constructor that remembers every socket it makes. */
const WIRE_LINES = 2000;

/** A frame's line in `wire`, if it is one worth a line (msgpack only; JSON sockets leave none). */
function wireLine(data: unknown, dir: '<' | '>'): string | undefined {
  let f: { t?: string; ptr?: number; since?: number; more?: boolean; m?: { conv: string; seq: number } };
  try { f = unpack(data instanceof Uint8Array ? data : new Uint8Array(data as ArrayBuffer)) as typeof f; } catch { return undefined; }
  if (dir === '<' && (f.t === 'msg' || f.t === 'synced' || f.t === 'welcome')) return `< ${f.t} ptr ${f.ptr ?? '-'}${f.m ? ` ${f.m.conv}#${f.m.seq}` : ''}${f.more ? ' more' : ''}`;
  if (dir === '>' && (f.t === 'ack' || f.t === 'sync')) return `> ${f.t} ${f.ptr ?? f.since}`;
  return undefined;
}

function capturingWebSocket(into: WebSocket[], wire: string[]): ClientOptions['WebSocket'] {
  const note = (socket: number, line: string | undefined) => {
    if (line === undefined) return;
    if (wire.push(`${new Date().toISOString().slice(11, 23)} s${socket} ${line}`) > WIRE_LINES) wire.shift();
  };
  class Captured extends WebSocket {
    constructor(url: string) {
      super(url);
      into.push(this);
      const n = into.length;
      note(n, `open ${url.split('?')[0]}`); // not the token
      this.addEventListener('message', (e) => note(n, wireLine(e.data, '<')));
      this.addEventListener('close', (e) => note(n, `close ${e.code} ${e.reason}`));
    }

    override send(data: Parameters<WebSocket['send']>[0], ...rest: unknown[]): void {
      note(into.indexOf(this) + 1, wireLine(data, '>'));
      (super.send as (...a: unknown[]) => void)(data, ...rest);
    }
  }
  return Captured as unknown as ClientOptions['WebSocket'];
}

/**
 * Signs in (a new phone unless `phone` or `session` is given) and connects. Unlike the SDK's default, the
 * client does not reconnect by itself unless `reconnect: true` is passed. `connect: false` leaves it closed.
 */
export async function device(
  url: string,
  opts: Partial<ClientOptions> & { phone?: string; session?: SessionInfo; connect?: boolean } = {},
): Promise<TestDevice> {
  const { session, phone } = opts.session ? { session: opts.session, phone: opts.phone ?? '' } : await signIn(url, opts.phone);
  const sockets: WebSocket[] = [];
  const wire: string[] = [];
  const { connect = true, phone: _p, session: _s, ...clientOpts } = opts;
  const client = new ParleyClient({ url, token: session.token, reconnect: false, WebSocket: capturingWebSocket(sockets, wire), ...clientOpts });
  const messages: Message[] = [];
  const ptrs: number[] = [];
  const late: Message[] = [];
  const frames: ServerFrame[] = [];
  const closes: { code: number; reason: string }[] = [];
  client.on('message', (m, ptr) => { messages.push(m); ptrs.push(ptr); });
  client.on('late', (m) => late.push(m));
  client.on('close', (code, reason) => closes.push({ code, reason }));
  for (const ev of ['receipt', 'typing', 'presence', 'error', 'synced', 'welcome'] as const) {
    client.on(ev, ((f: ServerFrame | number) => frames.push(typeof f === 'number' ? { t: 'synced', ptr: f } : f)) as never);
  }
  const dev: TestDevice = {
    session, user: session.user, client, phone, messages, ptrs, late, frames, closes, sockets, wire,
    waitFor: (pick, ms = 5000, what = 'condition') => waitFor(pick, ms, what),
    waitMessage: (pred, what = 'message', ms = 5000) => waitFor(() => messages.find(pred), ms, what),
    waitFrame: ((pred: (f: ServerFrame) => boolean, what = 'frame', ms = 5000) => waitFor(() => frames.find(pred), ms, what)) as TestDevice['waitFrame'],
    async close() {
      client.close();
      await Promise.all(sockets.map(closedSocket));
    },
  };
  if (connect) await client.connect();
  return dev;
}

/** Resolves once a `ws` socket is closed. */
export function closedSocket(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => ws.once('close', () => resolve()));
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

/** Text bodies of the messages of one conversation, in arrival order. */
export const texts = (messages: Message[], conv?: string): string[] =>
  messages.filter((m) => m.kind === 'text' && (conv === undefined || m.conv === conv)).map((m) => (m.body as { text: string }).text);
