import { parseRetryAfter } from './policy.js';

/**
 * What the HTTP providers share: a POST with a deadline, an OAuth2 access token cached until shortly before
 * it expires (FCM's, WNS's), and the answers every push service gives alike.
 */

export interface HttpAnswer { status: number; headers: Headers; text: string }

export async function post(url: string, headers: Record<string, string>, body: string | Uint8Array, timeoutMs: number): Promise<HttpAnswer> {
  const res = await fetch(url, { method: 'POST', headers, body: body as BodyInit, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

export const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString();

export function json(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export const retryAfter = (a: HttpAnswer): number | undefined => parseRetryAfter(a.headers.get('retry-after'), Date.now());

/** An access token and when to stop using it. */
export interface AccessToken { token: string; expiresAt: number }

/**
 * One OAuth2 access token at a time, fetched on first use and again a minute before it expires; concurrent
 * callers share one fetch. `invalidate` drops it when the service refused it (expired early, revoked).
 */
export class TokenCache {
  private current: AccessToken | undefined;
  private fetching: Promise<AccessToken> | undefined;
  /** Tokens fetched (a metric and a test's check that it is cached). */
  fetched = 0;

  constructor(private readonly fetchToken: () => Promise<AccessToken>, private readonly now: () => number = Date.now) {}

  async get(): Promise<string> {
    if (this.current && this.now() < this.current.expiresAt - 60_000) return this.current.token;
    this.fetching ??= this.fetchToken().then((t) => { this.fetched++; this.current = t; return t; }).finally(() => { this.fetching = undefined; });
    return (await this.fetching).token;
  }

  invalidate(token: string): void {
    if (this.current?.token === token) this.current = undefined;
  }
}

/**
 * A request with the cached access token; answered 401 (the token expired early or was revoked), once more
 * with a new one. A second 401 is the caller's to handle (credentials refused): never a loop.
 */
export async function withBearer(tokens: TokenCache, send: (bearer: string) => Promise<HttpAnswer>): Promise<HttpAnswer> {
  const first = await tokens.get();
  const a = await send(first);
  if (a.status !== 401) return a;
  tokens.invalidate(first);
  return send(await tokens.get());
}

/** An OAuth2 token endpoint's answer (RFC 6749 §5.1), or an error saying what was wrong with it. */
export function tokenAnswer(a: HttpAnswer, now: number, what: string): AccessToken {
  const body = json(a.text);
  if (a.status !== 200 || typeof body?.access_token !== 'string') {
    throw new Error(`${what} token endpoint answered ${a.status}: ${a.text.slice(0, 200)}`);
  }
  const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : Number(body.expires_in ?? 3600);
  return { token: body.access_token, expiresAt: now + (Number.isFinite(expiresIn) ? expiresIn : 3600) * 1000 };
}
