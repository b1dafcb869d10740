import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNodeProcess, type RunningNode } from '../helpers/node-process.js';
import { WEB_CSP } from '../../src/http/web-routes.js';

/** Issue #17: the node serves the web client at / (dist/web, built by `npm run build`), with sane headers. */

let node: RunningNode;
t.before(async () => { node = await startNodeProcess(); });
t.teardown(() => node.destroy());

t.test('/ is the page; its script and styles are hashed, typed and cached for a year', async (t) => {
  const res = await fetch(`${node.url}/`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
  t.equal(res.headers.get('cache-control'), 'no-cache', 'the page is revalidated: it names the current bundle');
  t.equal(res.headers.get('x-content-type-options'), 'nosniff');
  const csp = res.headers.get('content-security-policy')!;
  t.equal(csp, WEB_CSP.replace("img-src 'self' blob: data:", "img-src 'self' blob: data: https://tile.openstreetmap.org"), 'images also from the map tile server, only');
  t.match(csp, /script-src 'self'/);
  t.notMatch(csp, /unsafe-inline|unsafe-eval|\*/, 'no inline script or style, no wildcard');
  t.equal(res.headers.get('x-frame-options'), 'DENY');
  const html = await res.text();
  const js = /src="\/(app-[A-Z0-9]{8}\.js)"/.exec(html)?.[1];
  const css = /href="\/(app-[A-Z0-9]{8}\.css)"/.exec(html)?.[1];
  t.ok(js && css, 'the page names a hashed script and stylesheet');

  const script = await fetch(`${node.url}/${js}`);
  t.equal(script.status, 200);
  t.equal(script.headers.get('content-type'), 'text/javascript; charset=utf-8');
  t.equal(script.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  t.equal(script.headers.get('x-content-type-options'), 'nosniff');
  t.ok((await script.text()).length > 1000);
  const style = await fetch(`${node.url}/${css}`);
  t.equal(style.headers.get('content-type'), 'text/css; charset=utf-8');
  const images = [...(await style.text()).matchAll(/url\("?\/([\w-]+\.png)"?\)/g)].map((m) => m[1]!);
  t.ok(images.length >= 3, "the stylesheet's images (Leaflet's) are in the bundle");
  for (const name of images) {
    const img = await fetch(`${node.url}/${name}`);
    t.equal(img.headers.get('content-type'), 'image/png', name);
    t.equal(img.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  }
});

t.test('the page learns its API key, whether the dev outbox shows codes, and its map tile server', async (t) => {
  const res = await fetch(`${node.url}/v1/web/config`);
  t.equal(res.status, 200);
  t.same(await res.json(), {
    apiKey: 'parley-dev-key', devOutbox: true,
    map: { tiles: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png', attribution: '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors' },
  });
});

t.test('a file that is not in the bundle is the API 404, not a page', async (t) => {
  const res = await fetch(`${node.url}/app-NOPE1234.js`);
  t.equal(res.status, 404);
  t.equal((await res.json() as { error: { code: string } }).error.code, 'not_found');
});

t.test('a node without a bundle answers / with a page that says to build it', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'parley-noweb-'));
  const bare = await startNodeProcess({ PARLEY_WEB_DIR: empty });
  t.teardown(async () => { await bare.destroy(); rmSync(empty, { recursive: true, force: true }); });
  const res = await fetch(`${bare.url}/`);
  t.equal(res.status, 404);
  t.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
  t.match(await res.text(), /npm run build/);
  t.equal((await fetch(`${bare.url}/healthz`)).status, 200, 'and the node is up');
});
