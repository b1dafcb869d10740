import type { TemplatedApp } from 'uWebSockets.js';
import { rateLimited } from '../protocol/errors.js';
import { remoteAddress, sendError, track } from '../http/http-io.js';
import type { Metrics } from '../ops/metrics.js';
import type { KeyedLimiter } from './rate-limit.js';
import { ipKey } from './ip-key.js';
import { wrapRoutes, type Handler } from '../http/wrap-routes.js';

/**
 * The app as the route files see it: every HTTP route it is given (get, post, … any) first takes one token
 * from the caller's address budget, and past it answers 429 `rate_limited` with Retry-After without running
 * the route. Done here, once, rather than in each route file. Patterns in `exempt` run unlimited (/healthz:
 * load balancers poll it, and it must answer fast). WebSocket upgrades have budgets of their own (ws-gateway).
 */
export function limitRoutesByIp(app: TemplatedApp, limiter: KeyedLimiter, exempt: ReadonlySet<string>, metrics?: Metrics): TemplatedApp {
  const guard = (handler: Handler): Handler => (res, req) => {
    const wait = limiter.take(ipKey(remoteAddress(res)), Date.now());
    if (wait === 0) return handler(res, req);
    metrics?.count('http_rate_limited');
    sendError(track(res), rateLimited('too many requests from your address', wait));
  };
  return wrapRoutes(app, (pattern, _method, handler) => (exempt.has(pattern) ? handler : guard(handler)));
}
