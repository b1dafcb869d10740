import t from 'tap';
import webpush from 'web-push';
import type { Browser } from 'playwright-core';
import { startNodeProcess, type RunningNode } from '../helpers/node-process.js';
import { launchBrowser, signInInBrowser, type BrowserUser } from '../helpers/browser.js';

/**
 * Issue #17: browser notifications through Web Push. A real subscription needs the browser vendor's push
 * service, which this machine can't reach (and Debian's chromium has no keys for): the page says so. The
 * service worker's half is driven for real: chromium delivers a push to it (DevTools), and it shows it.
 */

const vapid = webpush.generateVAPIDKeys();
let node: RunningNode;
let browser: Browser;
let alice: BrowserUser;

t.before(async () => {
  [node, browser] = await Promise.all([
    startNodeProcess({ PARLEY_VAPID_PUBLIC_KEY: vapid.publicKey, PARLEY_VAPID_PRIVATE_KEY: vapid.privateKey, PARLEY_VAPID_SUBJECT: 'mailto:ops@example.com' }),
    launchBrowser(),
  ]);
  alice = await signInInBrowser(browser, node.url);
  await alice.context.grantPermissions(['notifications'], { origin: node.url });
});
t.teardown(async () => {
  await browser?.close();
  await node?.destroy();
});

t.test('the page learns the VAPID key; turning notifications on registers the worker and says how it went', async (t) => {
  t.match(await (await fetch(`${node.url}/v1/web/config`)).json(), { apiKey: 'parley-dev-key', devOutbox: true, vapidPublicKey: vapid.publicKey });
  const sw = await fetch(`${node.url}/sw.js`);
  t.equal(sw.headers.get('content-type'), 'text/javascript; charset=utf-8');
  t.equal(sw.headers.get('cache-control'), 'no-cache', 'a new worker is picked up at once');

  await alice.page.getByRole('button', { name: 'Settings' }).click();
  await alice.page.getByRole('button', { name: 'Turn on notifications' }).click();
  const state = await alice.page.getByTestId('push-state').textContent();
  t.match(state, /^(Notifications are on\.|The browser's push service did not answer .*)$/, `the page says: ${state}`);
  t.ok(await alice.page.evaluate(async () => !!(await navigator.serviceWorker.getRegistration('/'))), 'the worker is registered');
});

t.test('the worker shows a pushed notification', async (t) => {
  const cdp = await alice.context.newCDPSession(alice.page);
  const registration = new Promise<string>((resolve) => {
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: { registrationId: string; scopeURL: string; isDeleted: boolean }[] }) => {
      const r = e.registrations.find((x) => x.scopeURL.startsWith(node.url) && !x.isDeleted);
      if (r) resolve(r.registrationId);
    });
  });
  await cdp.send('ServiceWorker.enable');
  const payload = { conv: 'd.aaaa.bbbb', seq: 7, count: 2, type: 'alert', title: 'Bob', body: '2 new messages from Bob', tag: 'd.aaaa.bbbb' };
  await cdp.send('ServiceWorker.deliverPushMessage', { origin: node.url, registrationId: await registration, data: JSON.stringify(payload) });
  const shown = await alice.page.waitForFunction(async () => {
    const n = await (await navigator.serviceWorker.ready).getNotifications();
    return n.length ? n.map((x) => ({ title: x.title, body: x.body, tag: x.tag })) : undefined;
  });
  t.same(await shown.jsonValue(), [{ title: 'Bob', body: '2 new messages from Bob', tag: 'd.aaaa.bbbb' }]);
});
