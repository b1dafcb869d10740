/**
 * Request ids for log lines: the frame or HTTP request being handled right now, synchronously, on this
 * thread. Every log line written inside that stretch carries `req` (and `conn` for a frame), so an error
 * logged while handling a frame names the frame. Not AsyncLocalStorage: on Node 20 it hooks every promise,
 * a cost on the whole message path; so the id reaches what the handler does before its first await, and
 * further only where it is passed on by hand (src/http/http-io.ts `handle`: the error answer's log line).
 *
 * A frame's id is its `rid`, else its `cid`, else made from the node, the socket and the frame's number on
 * it; made only when a line is written, so a frame costs three assignments. An HTTP request's id is the
 * client's `x-request-id` when it is a plain token, else made from a counter, and is sent back in that header.
 */
let node = 'n';
let kind: 0 | 1 | 2 = 0; // none, frame, http
let conn = 0;
let frameNo = 0;
let given: string | undefined;
let httpCount = 0;

/** Set once at start: made ids name the node, so they are unique across a cluster's logs. */
export function traceNode(id: string): void {
  node = id;
}

/** Handling frame `n` of socket `c` starts (its rid/cid are not known before it is decoded). */
export function enterFrame(c: number, n: number): void {
  kind = 1;
  conn = c;
  frameNo = n;
  given = undefined;
}

/** The decoded frame's own id, when it has one. */
export function frameId(id: string | undefined): void {
  given = id;
}

export function leave(): void {
  kind = 0;
  given = undefined;
}

const TOKEN = /^[\w.:-]{1,64}$/;

/** The id of an HTTP request: the client's `x-request-id` if it is a short plain token, else a new one. */
export function httpRequestId(header: string): string {
  return TOKEN.test(header) ? header : `${node}.h${(++httpCount).toString(36)}`;
}

/** Runs `f` (synchronous) as the handling of request `id`. */
export function withRequest<T>(id: string, f: () => T): T {
  const prev = { kind, conn, frameNo, given };
  kind = 2;
  given = id;
  try {
    return f();
  } finally {
    ({ kind, conn, frameNo, given } = prev);
  }
}

/** The current request's id, if a request is being handled. */
export function currentRequest(): string | undefined {
  if (kind === 0) return undefined;
  return given ?? `${node}.w${conn}.${frameNo}`;
}

/** What each log line gets: `req`, and `conn` while a frame is handled. */
export function traceFields(): { req?: string; conn?: number } {
  if (kind === 0) return {};
  return kind === 1 ? { req: currentRequest(), conn } : { req: given };
}
