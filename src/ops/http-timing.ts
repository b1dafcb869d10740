import { performance } from 'node:perf_hooks';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { LatencyHistogram } from './latency-histogram.js';
import { httpRequestId, withRequest } from './trace.js';
import { log } from '../log.js';
import { wrapRoutes, type Handler } from '../http/wrap-routes.js';

/** A status line's class for the label: 2xx … 5xx (a handful of values, never the code itself). */
export const statusClass = (status: string): string => (/^[1-5]\d\d/.test(status) ? `${status[0]}xx` : 'other');

/**
 * The app as the route files see it: every HTTP route it is given is timed from the request's arrival to
 * the end of its answer (`end`, a `tryEnd` that finished, `endWithoutBody`, `close`; a client gone first is
 * `status="aborted"`) into `parley_http_request_seconds{route, method, status}`, where `route` is the
 * pattern the route was registered with (never the raw path, so the label is bounded by the routes) and
 * `method` the one it was registered for (`any` stays `any`). Each request also gets its id
 * (src/ops/trace.ts): log lines written while its handler runs carry it, `res.requestId` holds it, and at
 * debug level each answered request is logged (`http request`: route, method, status class, ms).
 */
export function timeRoutes(app: TemplatedApp, histogram: LatencyHistogram<'route' | 'method' | 'status'>): TemplatedApp {
  const timed = (pattern: string, method: string, handler: Handler): Handler => (res, req) => {
    const start = performance.now();
    const id = httpRequestId(req.getHeader('x-request-id'));
    instrument(res, (status) => {
      const ms = performance.now() - start;
      histogram.child(pattern, method, status).observe(ms / 1000);
      // An access log at debug, under the request's id (its answer may end after the handler's awaits).
      withRequest(id, () => log('debug', 'http request', { route: pattern, method, status, ms: Math.round(ms * 10) / 10 }));
    });
    (res as HttpResponse & { requestId?: string }).requestId = id;
    return withRequest(id, () => handler(res, req));
  };
  return wrapRoutes(app, timed);
}

/** Calls `finished(statusClass)` once, when the answer ends or the client goes away. */
function instrument(res: HttpResponse, finished: (status: string) => void): void {
  let status = '200';
  let done = false;
  const finish = (s: string) => { if (!done) { done = true; finished(s); } };
  const r = res as unknown as Record<string, (...args: unknown[]) => unknown>;
  const wrap = (name: string, after: (result: unknown) => void) => {
    const original = r[name]!;
    r[name] = function (this: unknown, ...args: unknown[]) {
      const result = original.apply(res, args);
      after(result);
      return result;
    };
  };
  const writeStatus = r.writeStatus!;
  r.writeStatus = function (this: unknown, s: unknown) { status = String(s); return writeStatus.call(res, s); };
  wrap('end', () => finish(statusClass(status)));
  wrap('endWithoutBody', () => finish(statusClass(status)));
  wrap('tryEnd', (result) => { if ((result as [boolean, boolean])[1]) finish(statusClass(status)); });
  wrap('close', () => finish('aborted'));
  // uWS keeps one abort handler per response: the route's own is wrapped, not replaced.
  const onAborted = r.onAborted!;
  r.onAborted = function (this: unknown, handler: unknown) {
    return onAborted.call(res, () => { finish('aborted'); (handler as () => void)(); });
  };
}
