import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { WebMap } from '../config.js';
import { sendJson, track } from './http-io.js';

/**
 * The web client (web/, built into dist/web by `npm run build`), served at `/`:
 *   GET /                  index.html (never cached: it names the current hashed bundle)
 *   GET /<name>            the bundle's other files; hashed names are cached for a year
 *   GET /ops               the ops console (web/ops): the supervision tree, live charts and analytics; it asks for the
 *                          admin key and reads the operator routes with it (src/http/ops-routes.ts)
 *   GET /sw.js             the service worker that shows Web Push notifications (not hashed: its URL is its identity)
 *   GET /v1/web/config     {apiKey, devOutbox, vapidPublicKey?, map?}: what the page signs in and subscribes to push with,
 *                          and the tile server its location messages draw a map from
 * Without a bundle, `/` answers a 404 page that says how to build it.
 */

const IMG_SRC = "img-src 'self' blob: data:";
/** Only the node itself: no inline script or style, no frames, no plugins. Media and sockets are same-origin. */
export const WEB_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", IMG_SRC, "media-src 'self' blob:",
  "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');
/** With a map, its tile server's origin may serve images too: that origin only, nothing else. */
export const webCsp = (tileOrigin?: string): string => (tileOrigin ? WEB_CSP.replace(IMG_SRC, `${IMG_SRC} ${tileOrigin}`) : WEB_CSP);

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.map': 'application/json', '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
};
/** esbuild's `[hash]` in a name (app-ABCD1234.js): its content never changes under that name. */
const HASHED = /-[A-Z0-9]{8}\.[a-z]+$/;

interface WebFile { body: Buffer; type: string; cache: string }

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>Parley: web client not built</title>
<h1>The web client is not built</h1><p>This node has no web bundle. Run <code>npm run build</code> (or <code>npm start</code>,
which builds it) and restart the node.</p>`;

/** The bundle's files, read once when the node mounts its routes (the bundle is built before the node starts). */
export function readWebBundle(dir: string): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  if (!existsSync(join(dir, 'index.html'))) return files;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const cache = HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache';
    files.set(name, { body: readFileSync(path), type: TYPES[extname(name)] ?? 'application/octet-stream', cache });
  }
  return files;
}

function send(res: HttpResponse, status: string, f: WebFile, csp = WEB_CSP): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', f.type).writeHeader('cache-control', f.cache)
      .writeHeader('x-content-type-options', 'nosniff').writeHeader('content-security-policy', csp)
      .writeHeader('referrer-policy', 'no-referrer').writeHeader('x-frame-options', 'DENY')
      .end(f.body);
  });
}

export function mountWeb(app: TemplatedApp, deps: { files: Map<string, WebFile>; apiKey: string; devOutbox: boolean; vapidPublicKey?: string; map?: WebMap }): void {
  const index = deps.files.get('index.html');
  const csp = webCsp(deps.map?.origin);
  app.get('/', (res) => send(res, index ? '200 OK' : '404 Not Found', index ?? { body: Buffer.from(NOT_BUILT), type: TYPES['.html']!, cache: 'no-cache' }, csp));
  // The console draws no map: the base policy.
  const ops = deps.files.get('ops.html');
  if (ops) app.get('/ops', (res) => send(res, '200 OK', ops));
  for (const [name, f] of deps.files) if (!name.endsWith('.html')) app.get(`/${name}`, (res) => send(res, '200 OK', f, csp));
  const map = deps.map ? { map: { tiles: deps.map.tiles, attribution: deps.map.attribution } } : {};
  const config = { apiKey: deps.apiKey, devOutbox: deps.devOutbox, ...(deps.vapidPublicKey ? { vapidPublicKey: deps.vapidPublicKey } : {}), ...map };
  app.get('/v1/web/config', (res) => sendJson(track(res), 200, config, { 'cache-control': 'no-cache' }));
}
