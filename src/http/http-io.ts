import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { ParleyError, toErrorBody, type ErrorBody } from '../protocol/errors.js';
import { log } from '../log.js';
import { clientAddress, trustedProxies, type TrustedProxies } from '../transport/client-address.js';
import { currentRequest, withRequest } from '../ops/trace.js';

/**
 * Small helpers over uWebSockets.js HTTP: a response may be aborted at any time, and after that it must not
 * be touched; every write after an await is corked.
 */
export interface Reply {
  readonly aborted: boolean;
  res: HttpResponse;
  /** Runs if the client goes away before the answer is done (uWS keeps one abort handler per response). */
  onAbort?: () => void;
}

export function track(res: HttpResponse, onAbort?: () => void): Reply {
  const r: Reply & { aborted: boolean } = { aborted: false, res, onAbort };
  res.onAborted(() => { r.aborted = true; r.onAbort?.(); });
  return r;
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 206: 'Partial Content', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
  404: 'Not Found', 408: 'Request Timeout', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};
export const statusLine = (code: number): string => `${code} ${STATUS_TEXT[code] ?? ''}`.trim();

/** `close`: the connection is closed after the answer (a request body still coming is never read). */
export function sendJson(r: Reply, status: number, body: unknown, extra?: Record<string, string>, close = false): void {
  if (r.aborted) return;
  r.res.cork(() => {
    r.res.writeStatus(statusLine(status)).writeHeader('content-type', 'application/json');
    // The id its log lines carry (src/ops/http-timing.ts), so a client's report names them.
    const id = (r.res as HttpResponse & { requestId?: string }).requestId;
    if (id) r.res.writeHeader('x-request-id', id);
    if (extra) for (const k in extra) r.res.writeHeader(k, extra[k]!);
    r.res.end(JSON.stringify(body), close);
  });
}

let errorCount: ((code: string) => void) | undefined;

/** Set once when the node starts: where HTTP error answers are counted by code (parley_errors_total). */
export function countHttpErrors(f: (code: string) => void): void {
  errorCount = f;
}

export function sendError(r: Reply, err: unknown, close = false): void {
  const body: ErrorBody = toErrorBody(err);
  errorCount?.(body.code);
  if (!(err instanceof ParleyError)) log('error', 'http handler failed', { error: (err as Error)?.stack ?? String(err) });
  const retryAfter = body.retryAfterMs === undefined ? undefined : { 'retry-after': String(Math.ceil(body.retryAfterMs / 1000)) };
  sendJson(r, err instanceof ParleyError ? err.status : 500, { error: body }, retryAfter, close);
}

let proxies: TrustedProxies | undefined;

/** Set once when the node starts: the load balancers whose PROXY protocol header is believed (PARLEY_TRUST_PROXY). */
export function trustProxies(entries: readonly string[]): void {
  proxies = trustedProxies(entries);
}

/**
 * The client's address, read before the first await (uWS frees the request after the callback): the one a
 * trusted proxy passed with the PROXY protocol, else the peer's (src/transport/client-address.ts).
 */
export function remoteAddress(res: HttpResponse): string {
  const peer = Buffer.from(res.getRemoteAddressAsText()).toString();
  return clientAddress(peer, proxies ? Buffer.from(res.getProxiedRemoteAddressAsText()).toString() : '', proxies);
}

/** Reads the whole body, refusing more than `limit` bytes as soon as it is exceeded. */
export function readBody(r: Reply, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    r.res.onData((chunk, isLast) => {
      size += chunk.byteLength;
      if (size > limit) {
        reject(new ParleyError('too_large', `body is over the limit of ${limit} bytes`));
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0))); // uWS reuses the chunk's memory
      if (isLast) resolve(Buffer.concat(chunks));
    });
  });
}

export async function readJson(r: Reply, limit = 16 * 1024): Promise<Record<string, unknown>> {
  const buf = await readBody(r, limit);
  try {
    const v = JSON.parse(buf.toString('utf8') || '{}') as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new ParleyError('bad_frame', 'body must be a JSON object');
  }
}

/** Reads what a handler needs from the request before the first await: uWS frees it after the callback. */
export function headers(req: HttpRequest, ...names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) out[n] = req.getHeader(n);
  return out;
}

export const bearer = (authorization: string): string | undefined =>
  authorization.toLowerCase().startsWith('bearer ') ? authorization.slice(7).trim() : undefined;

/** Runs an async handler, turning anything it throws into an error response. */
export function handle(res: HttpResponse, f: (r: Reply) => Promise<void>): void {
  const r = track(res);
  // The request's id, for the error's log line after the handler's awaits (src/ops/trace.ts).
  const id = currentRequest();
  f(r).catch((err) => (id ? withRequest(id, () => sendError(r, err)) : sendError(r, err)));
}
