import t from 'tap';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { Fixture } from '../helpers/fixture.js';
import { scanLmdb } from '../helpers/store-scan.js';
import { launchBrowser } from '../helpers/browser.js';

/**
 * The SDK's end-to-end encryption in a real browser (Chromium through playwright-core): a page bundled by
 * esbuild chats encrypted with a Node client through a real node, and the store holds only ciphertext.
 */
let f: Fixture;
let server: Server;
let browser: Browser;
let origin = '';

t.before(async () => {
  // The bundle is built from the TypeScript sources (dist/test/browser → the repository root).
  const root = join(__dirname, '..', '..', '..');
  const out = await build({
    entryPoints: [join(root, 'test/browser/e2e-page.ts')], bundle: true, write: false, format: 'iife', platform: 'browser', target: 'es2022',
    external: ['ws'], logLevel: 'silent',
    plugins: [{ name: 'node-crypto', setup(b) { b.onResolve({ filter: /^(node:)?crypto$/ }, () => ({ path: join(root, 'test/browser/crypto-shim.ts') })); } }],
  });
  const js = out.outputFiles[0]!.text;
  server = createServer((req, res) => {
    if (req.url === '/bundle.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script src="/bundle.js"></script>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  f = await Fixture.start({ PARLEY_ALLOWED_ORIGINS: origin });
  browser = await launchBrowser();
});
t.teardown(async () => {
  await browser?.close();
  server?.close();
  await f?.destroy();
});

t.test('a browser and a Node client chat end-to-end encrypted', async (t) => {
  const page = await browser.newPage();
  t.teardown(() => page.close());
  await page.goto(origin);
  const bob = await f.device(t, { e2e: true });
  await bob.client.e2e!.start();
  const signedIn = await f.signInOnly();
  const me = await page.evaluate(([url, token]) => (window as never as { parley: { connect(u: string, k: string): Promise<{ user: string }> } }).parley.connect(url!, token!), [f.url, signedIn.session.token]);
  t.equal(me.user, signedIn.user);

  const secret = `from-the-browser-${Date.now()}`;
  await page.evaluate(([to, text]) => (window as never as { parley: { text(a: string, b: string): Promise<number> } }).parley.text(to!, text!), [bob.user, secret]);
  const m = await bob.waitMessage((x) => (x.body as { text?: string })?.text === secret, 'the browser\'s message', 15_000);
  t.equal((m as { e2e?: boolean }).e2e, true);

  const answer = `from-node-${Date.now()}`;
  await bob.client.text({ to: signedIn.user }, answer);
  const got = await page.waitForFunction((text) => (window as never as { parley: { received(): { text?: string; e2e?: boolean }[] } }).parley.received().find((x) => x.text === text), answer, { timeout: 15_000 });
  t.match(await got.jsonValue(), { kind: 'text', text: answer, e2e: true }, 'the page decrypted it');
  const sn = await page.evaluate((other) => (window as never as { parley: { safetyNumber(o: string): Promise<string> } }).parley.safetyNumber(other), bob.user);
  t.equal(sn, await bob.client.safetyNumber(signedIn.user), 'the same safety number on both sides');
  t.strictSame(await scanLmdb(f, [secret, answer]), [], 'no plaintext in the store');
});
