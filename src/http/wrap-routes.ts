import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';

const ROUTE_METHODS = new Set(['get', 'post', 'put', 'del', 'patch', 'options', 'head', 'any', 'connect', 'trace']);
export type Handler = (res: HttpResponse, req: HttpRequest) => void | Promise<void>;
type Route = (pattern: string, handler: Handler) => TemplatedApp;

/**
 * The app as the route files see it, with every HTTP route (get, post, … any) registered through `wrap`: a
 * concern that applies to all routes (a rate limit, timing) is done once here rather than in each route file.
 * Everything else (ws, listen, …) passes through.
 */
export function wrapRoutes(app: TemplatedApp, wrap: (pattern: string, method: string, handler: Handler) => Handler): TemplatedApp {
  const proxy: TemplatedApp = new Proxy(app, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (typeof prop === 'string' && ROUTE_METHODS.has(prop)) {
        const route = (value as Route).bind(target);
        return (pattern: string, handler: Handler) => (route(pattern, wrap(pattern, prop, handler)), proxy);
      }
      return (value as (...args: unknown[]) => unknown).bind(target);
    },
  });
  return proxy;
}
