import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { isIPv4, isIPv6 } from 'node:net';
import { rateLimited } from '../protocol/errors.js';
import { remoteAddress, sendError, track } from '../http/http-io.js';
import type { Metrics } from '../ops/metrics.js';
import type { KeyedLimiter } from './rate-limit.js';

/**
 * The key a client address is limited by: an IPv4 address as is, an IPv6 address by its /64 (one host is
 * routinely given a whole /64, so per address it would have 2^64 budgets), an IPv4-mapped IPv6 address as
 * the IPv4 one. Anything else (a Unix socket, garbage from a proxy header) is its own key.
 */
export function ipKey(address: string): string {
  const a = address.trim().toLowerCase();
  if (isIPv4(a)) return a;
  if (!isIPv6(a)) return a;
  const groups = expandIPv6(a);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address ("::" expanded, a dotted IPv4 tail converted). */
function expandIPv6(a: string): number[] {
  let s = a.replace(/%.*$/, ''); // a zone id names an interface, not a host
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const [b0, b1, b2, b3] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    s = `${s.slice(0, -v4[1]!.length)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array.from({ length: 8 - h.length - t.length }, () => '0');
  return [...h, ...zeros, ...t].map((g) => parseInt(g, 16));
}

const ROUTE_METHODS = new Set(['get', 'post', 'put', 'del', 'patch', 'options', 'head', 'any', 'connect', 'trace']);
type Handler = (res: HttpResponse, req: HttpRequest) => void | Promise<void>;
type Route = (pattern: string, handler: Handler) => TemplatedApp;

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
  const proxy: TemplatedApp = new Proxy(app, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (typeof prop === 'string' && ROUTE_METHODS.has(prop)) {
        const route = (value as Route).bind(target);
        return (pattern: string, handler: Handler) => (route(pattern, exempt.has(pattern) ? handler : guard(handler)), proxy);
      }
      return (value as (...args: unknown[]) => unknown).bind(target);
    },
  });
  return proxy;
}
