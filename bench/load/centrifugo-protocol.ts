/**
 * Centrifugo's bidirectional client protocol, JSON flavour, as the load generator speaks it over plain `ws`
 * (the same way Socket.IO is spoken by hand, so every target costs the load generator alike).
 *
 * A WebSocket frame holds one or more JSON objects separated by '\n', in both directions. Commands carry an
 * `id` and one method (`connect`, `subscribe`, `publish`); replies echo the `id` with the method's result
 * or an `error`; a reply without `id` is an asynchronous push (a publication on a subscribed channel, an
 * unsubscribe, a disconnect), and an empty object `{}` is the server's ping, answered with `{}`.
 * Publication data is embedded as JSON (not base64) in this flavour.
 *
 * Pure: frame builders and parsers only, unit-tested in test/unit/bench-centrifugo.test.ts.
 */
import { createHmac } from 'node:crypto';

/** Namespace of the personal channels: `user:#<user>`, subscribable only by that user (user-limited). */
export const PERSONAL_NS = 'user';
/** Namespace of group channels: `group:<group>`, members subscribe and publish. */
export const GROUP_NS = 'group';

export const personalChannel = (user: string): string => `${PERSONAL_NS}:#${user}`;
export const groupChannel = (group: number): string => `${GROUP_NS}:${group}`;

const b64url = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

/** A JWT signed with HS256 (what the server checks against client.token.hmac_secret_key). */
export function signHs256(claims: Record<string, unknown>, secret: string): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/**
 * A user's connection token: `sub` is the user, valid from `nowS` for `ttlS` seconds. Signed by hand with
 * node:crypto: the repo has no JWT library, and one HMAC for a bench doesn't earn a dependency.
 */
export const connectToken = (user: string, secret: string, nowS: number, ttlS = 86_400): string =>
  signHs256({ sub: user, iat: nowS, exp: nowS + ttlS }, secret);

export const connectCommand = (id: number, token: string, name = 'parley-bench'): string =>
  JSON.stringify({ id, connect: { token, name } });

export const subscribeCommand = (id: number, channel: string): string => JSON.stringify({ id, subscribe: { channel } });

/** `data` must already be a JSON text: it goes into the frame as is. */
export const publishCommand = (id: number, channel: string, data: string): string =>
  `{"id":${id},"publish":{"channel":${JSON.stringify(channel)},"data":${data}}}`;

/** The pong: an empty object, the same as the server's ping. */
export const PONG = '{}';

/** What the bench puts in a publication: (stream, n) for the accounting, the intended send time (µs), a pad. */
export interface BenchPayload { s: number; n: number; t: number }

export const benchPayload = (s: number, n: number, tUs: number, pad: string): string =>
  `{"s":${s},"n":${n},"t":${Math.round(tUs)},"x":"${pad}"}`;

/** Pad length that makes a publish command to `channel` `frameBytes` long with 6-digit ids and a 13-digit time: about that, at most, in a run (at least 1 character). */
export function padFor(frameBytes: number, channel: string): number {
  const sample = publishCommand(100_000, channel, benchPayload(100_000, 100_000, 1e12, ''));
  return Math.max(1, frameBytes - sample.length);
}

export interface CfError { code: number; message: string; temporary?: boolean }

export type CfMessage =
  /** The answer to command `id`: `method` names the result it carries (undefined for an error). */
  | { type: 'reply'; id: number; method: 'connect' | 'subscribe' | 'publish' | 'other' | undefined; error?: CfError; result: Record<string, unknown> }
  | { type: 'publication'; channel: string; data: unknown; offset: number | undefined; user: string | undefined }
  | { type: 'ping' }
  | { type: 'unsubscribe'; channel: string; code: number; reason: string }
  | { type: 'disconnect'; code: number; reason: string }
  | { type: 'other'; raw: Record<string, unknown> };

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);

/** One JSON object of a server frame. Throws on text that isn't JSON (a protocol break, not load). */
export function parseMessage(line: string): CfMessage {
  const m = obj(JSON.parse(line));
  if (!m) return { type: 'other', raw: {} };
  const id = typeof m.id === 'number' ? m.id : 0;
  if (id > 0) {
    const error = obj(m.error);
    if (error) return { type: 'reply', id, method: undefined, error: { code: Number(error.code), message: String(error.message ?? ''), temporary: error.temporary === true }, result: {} };
    for (const method of ['connect', 'subscribe', 'publish'] as const) {
      const r = obj(m[method]);
      if (r) return { type: 'reply', id, method, result: r };
    }
    return { type: 'reply', id, method: 'other', result: m };
  }
  const push = obj(m.push);
  if (!push) return Object.keys(m).length === 0 ? { type: 'ping' } : { type: 'other', raw: m };
  const channel = typeof push.channel === 'string' ? push.channel : '';
  const pub = obj(push.pub);
  if (pub) {
    return { type: 'publication', channel, data: pub.data, offset: typeof pub.offset === 'number' ? pub.offset : undefined, user: obj(pub.info)?.user as string | undefined };
  }
  const unsub = obj(push.unsubscribe);
  if (unsub) return { type: 'unsubscribe', channel, code: Number(unsub.code ?? 0), reason: String(unsub.reason ?? '') };
  const disc = obj(push.disconnect);
  if (disc) return { type: 'disconnect', code: Number(disc.code ?? 0), reason: String(disc.reason ?? '') };
  return { type: 'other', raw: m };
}

/** Every object of a server frame (newline-separated; blank lines skipped). */
export function parseFrame(text: string): CfMessage[] {
  const out: CfMessage[] = [];
  let from = 0;
  while (from <= text.length) {
    let nl = text.indexOf('\n', from);
    if (nl < 0) nl = text.length;
    if (nl > from) out.push(parseMessage(text.slice(from, nl)));
    from = nl + 1;
  }
  return out;
}

/** The bench's (stream, n, t) out of a publication's data; undefined when it isn't one of ours. */
export function readPayload(data: unknown): BenchPayload | undefined {
  const d = obj(data);
  if (!d || typeof d.s !== 'number' || typeof d.n !== 'number' || typeof d.t !== 'number') return undefined;
  return { s: d.s, n: d.n, t: d.t };
}
