import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import webpush from 'web-push';
import { ApnsProvider } from '../../src/push/apns.js';
import { FcmProvider, type ServiceAccount } from '../../src/push/fcm.js';
import { WebPushProvider, webPushPayload } from '../../src/push/webpush.js';
import { WnsProvider } from '../../src/push/wns.js';
import { WebhookProvider } from '../../src/push/webhook.js';
import { PushDispatcher } from '../../src/push/dispatcher.js';
import { OutboxProvider } from '../../src/push/push-gateway.js';
import { pushConfig } from '../../src/push/push-config.js';
import { collapseIdOf, render, addToBurst, type Notification } from '../../src/push/policy.js';
import { Metrics } from '../../src/ops/metrics.js';
import { devCert } from '../helpers/tls.js';
import { ApnsMock, FcmMock, WebPushMock, WnsMock, apnsKeys } from '../helpers/push-mocks.js';

/**
 * Each provider against a local server that checks what its service checks (signatures, headers, payload
 * encryption) and answers as it documents; then the dispatcher's retries and breaker over them.
 */
const dir = mkdtempSync(join(tmpdir(), 'parley-push-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const cert = devCert(dir, 'apns');

/** Polls until `ok` holds (the dispatcher has handled an answer the mock already recorded). */
async function until(ok: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const TOKEN = 'ab'.repeat(32);
const to = { user: 'bob', device: 'phone' };

const note = (over: Partial<Notification> = {}): Notification => ({
  ...render(addToBurst(undefined, { conv: 'd.ann.bob', seq: 7, from: 'ann', kind: 'text', preview: 'hi <there> & "you"' }),
    { previews: true, senderName: 'Ann', mode: 'sender', ttlSec: 3600 }),
  ...over,
});
const wake = (): Notification => render(addToBurst(undefined, { conv: 'd.ann.bob', seq: 7, from: 'ann', kind: 'text' }), { previews: false, senderName: undefined, mode: 'wake', ttlSec: 60 });

t.test('APNs: HTTP/2, a provider JWT the server verifies, the documented headers, and its answers', async (t) => {
  const keys = apnsKeys();
  const mock = await ApnsMock.start(keys, 'com.example.parley', cert);
  t.teardown(() => mock.close());
  let now = Date.now();
  const apns = new ApnsProvider({
    url: mock.url, key: keys.privatePem, keyId: keys.keyId, teamId: keys.teamId, topic: 'com.example.parley',
    tokenRefreshMs: 40 * 60_000, ca: cert.ca.toString(), timeoutMs: 5000,
  }, () => now);
  t.teardown(() => apns.close());

  t.strictSame(await apns.send({ platform: 'apns', token: TOKEN }, note()), { kind: 'sent' });
  const [r] = mock.delivered();
  t.match(r!.headers, {
    'apns-topic': 'com.example.parley', 'apns-push-type': 'alert', 'apns-priority': '10',
    'apns-collapse-id': collapseIdOf('d.ann.bob'), 'apns-expiration': String(Math.floor(now / 1000) + 3600),
  });
  t.strictSame(r!.payload, {
    aps: { alert: { title: 'Ann', body: 'hi <there> & "you"' }, badge: 1, sound: 'default', 'thread-id': collapseIdOf('d.ann.bob'), 'mutable-content': 1 },
    conv: 'd.ann.bob', seq: 7, count: 1,
  });

  t.strictSame(await apns.send({ platform: 'apns', token: TOKEN, app: 'com.example.parley' }, wake()), { kind: 'sent' });
  t.match(mock.delivered()[1], { headers: { 'apns-push-type': 'background', 'apns-priority': '5' }, payload: { aps: { 'content-available': 1 } } },
    'a wake-up is a background push at priority 5, with no alert');
  t.notOk(JSON.stringify(mock.delivered()[1]!.payload).includes('hi'), 'and no text');

  const other = 'cd'.repeat(32);
  mock.unregistered.add(other);
  t.match(await apns.send({ platform: 'apns', token: other }, note()), { kind: 'dead', reason: 'apns 410 Unregistered' });
  mock.badTokens.add(other);
  t.match(await apns.send({ platform: 'apns', token: other }, note()), { kind: 'dead', reason: 'apns 400 BadDeviceToken' });
  t.match(await apns.send({ platform: 'apns', token: TOKEN, app: 'com.other.app' }, note()), { kind: 'failed', reason: 'apns 400 TopicDisallowed' },
    'a refusal a retry will not change is not retried');

  mock.script.push({ status: 429, reason: 'TooManyRequests', retryAfter: '3' });
  t.strictSame(await apns.send({ platform: 'apns', token: TOKEN }, note()), { kind: 'retry', reason: 'apns 429 TooManyRequests', retryAfterMs: 3000 });
  mock.script.push({ status: 503, reason: 'ServiceUnavailable' });
  t.match(await apns.send({ platform: 'apns', token: TOKEN }, note()), { kind: 'retry', outage: true });
  mock.script.push({ status: 413, reason: 'PayloadTooLarge' });
  t.match(await apns.send({ platform: 'apns', token: TOKEN }, note()), { kind: 'failed', reason: 'apns 413 PayloadTooLarge' });

  // The provider token: one for 40 minutes, then a new one; renewed early only when APNs calls it expired.
  t.equal(apns.signed, 1, 'every request so far used one provider token');
  now += 39 * 60_000;
  await apns.send({ platform: 'apns', token: TOKEN }, note());
  t.equal(apns.signed, 1, 'still the same after 39 minutes');
  now += 60_000;
  await apns.send({ platform: 'apns', token: TOKEN }, note());
  t.equal(apns.signed, 2, 'renewed at 40 minutes (Apple: between 20 and 60)');
  mock.expireIssuedBefore = Math.floor(now / 1000) + 1; // the server now refuses the current token as expired
  now += 2000;
  const before = mock.requests.length;
  t.strictSame(await apns.send({ platform: 'apns', token: TOKEN }, note()), { kind: 'sent' });
  t.equal(apns.signed, 3, 'ExpiredProviderToken: renewed once');
  t.strictSame(mock.requests.slice(before).map((x) => x.status), [403, 200], 'and the push sent again with it');
  mock.expireIssuedBefore = Math.floor(now / 1000) + 3600;
  const again = mock.requests.length;
  t.match(await apns.send({ platform: 'apns', token: TOKEN }, note()), { kind: 'failed', reason: 'apns 403 ExpiredProviderToken' }, 'refused again: not a loop');
  t.equal(mock.requests.length - again, 2, 'one renewal, no more');
  t.equal(new Set(mock.requests.map((x) => x.headers.authorization)).size, apns.signed + 0, 'each token signed was used');
});

t.test('APNs: a server that is down is a retry (an outage), and the next send connects again', async (t) => {
  const keys = apnsKeys();
  const mock = await ApnsMock.start(keys, 'com.example.parley', cert);
  const url = mock.url;
  await mock.close();
  const apns = new ApnsProvider({ url, key: keys.privatePem, keyId: keys.keyId, teamId: keys.teamId, topic: 'com.example.parley', tokenRefreshMs: 40 * 60_000, ca: cert.ca.toString(), timeoutMs: 2000 });
  t.teardown(() => apns.close());
  t.match(await apns.send({ platform: 'apns', token: TOKEN }, note()), { kind: 'retry', outage: true });
});

t.test('FCM v1: an OAuth2 token bought with a signed assertion and cached, the v1 message, and its answers', async (t) => {
  const mock = await FcmMock.start();
  t.teardown(() => mock.close());
  let now = Date.now();
  const fcm = new FcmProvider({ account: mock.serviceAccount as unknown as ServiceAccount, url: mock.url, tokenUrl: `${mock.url}/token`, timeoutMs: 5000 }, () => now);

  t.strictSame(await fcm.send({ platform: 'fcm', token: 'fcm-1' }, note()), { kind: 'sent' });
  t.strictSame(await fcm.send({ platform: 'fcm', token: 'fcm-1' }, wake()), { kind: 'sent' });
  t.equal(mock.tokenRequests, 1, 'one access token for both');
  const [alert, data] = mock.delivered();
  t.strictSame(alert!.payload, {
    message: {
      token: 'fcm-1', data: { conv: 'd.ann.bob', seq: '7', count: '1', type: 'alert' },
      notification: { title: 'Ann', body: 'hi <there> & "you"' },
      android: { priority: 'high', collapse_key: collapseIdOf('d.ann.bob'), ttl: '3600s', notification: { tag: collapseIdOf('d.ann.bob'), notification_count: 1 } },
    },
  });
  t.strictSame(data!.payload, { message: { token: 'fcm-1', data: { conv: 'd.ann.bob', seq: '7', count: '1', type: 'wake' }, android: { priority: 'high', collapse_key: collapseIdOf('d.ann.bob'), ttl: '60s' } } },
    'a wake-up is data only');

  mock.unregistered.add('fcm-gone');
  t.match(await fcm.send({ platform: 'fcm', token: 'fcm-gone' }, note()), { kind: 'dead', reason: 'fcm 404 UNREGISTERED' });
  mock.script.push({ status: 429, reason: 'QUOTA_EXCEEDED', retryAfter: '7' });
  t.strictSame(await fcm.send({ platform: 'fcm', token: 'fcm-1' }, note()), { kind: 'retry', reason: 'fcm 429 QUOTA_EXCEEDED', retryAfterMs: 7000 });
  mock.script.push({ status: 503, reason: 'UNAVAILABLE' });
  t.match(await fcm.send({ platform: 'fcm', token: 'fcm-1' }, note()), { kind: 'retry', outage: true });

  mock.revokeTokens();
  const before = mock.requests.length;
  t.strictSame(await fcm.send({ platform: 'fcm', token: 'fcm-1' }, note()), { kind: 'sent' }, '401: a new access token, once');
  t.equal(mock.tokenRequests, 2);
  t.strictSame(mock.requests.slice(before).map((r) => r.status), [401, 200]);

  // Cached until a minute before it expires.
  now += 3600_000 - 61_000;
  await fcm.send({ platform: 'fcm', token: 'fcm-1' }, note());
  t.equal(mock.tokenRequests, 2, 'still cached 59 minutes in');
  now += 2000;
  await fcm.send({ platform: 'fcm', token: 'fcm-1' }, note());
  t.equal(mock.tokenRequests, 3, 'renewed in its last minute');
});

t.test('Web Push: the payload decrypts with the subscription\'s private key (RFC 8291), VAPID verifies, and the answers', async (t) => {
  const vapid = webpush.generateVAPIDKeys();
  const mock = await WebPushMock.start(vapid.publicKey);
  t.teardown(() => mock.close());
  const wp = new WebPushProvider({ publicKey: vapid.publicKey, privateKey: vapid.privateKey, subject: 'mailto:ops@example.com', timeoutMs: 5000 });
  const sub = mock.add(mock.subscribe());
  const reg = { platform: 'webpush' as const, token: sub.endpoint, p256dh: sub.keys.p256dh, auth: sub.keys.auth };

  t.strictSame(await wp.send(reg, note()), { kind: 'sent' });
  const [r] = mock.delivered();
  t.strictSame(r!.payload, webPushPayload(note()), 'what the service worker decrypts is what was sent');
  t.match(r!.payload, { title: 'Ann', body: 'hi <there> & "you"', tag: collapseIdOf('d.ann.bob') });
  t.match(r!.headers, { ttl: '3600', urgency: 'high', topic: collapseIdOf('d.ann.bob'), 'content-encoding': 'aes128gcm' });

  const otherKeys = mock.subscribe(); // someone else's keys: the server can't decrypt what was encrypted for them
  mock.add({ ...otherKeys, endpoint: sub.endpoint.replace(/\/push\/.*/, '/push/mismatch') });
  const wrong = { ...reg, token: sub.endpoint.replace(/\/push\/.*/, '/push/mismatch') };
  t.match(await wp.send(wrong, note()), { kind: 'failed', reason: /^webpush 400/ }, 'encrypted for other keys: the push service can\'t decrypt it');

  mock.gone.add(new URL(sub.endpoint).pathname);
  t.match(await wp.send(reg, note()), { kind: 'dead', reason: 'webpush 410' });
  t.match(await wp.send({ ...reg, token: `${mock.url}/push/unknown` }, note()), { kind: 'dead', reason: 'webpush 404' });
  const live = mock.add(mock.subscribe());
  const liveReg = { platform: 'webpush' as const, token: live.endpoint, p256dh: live.keys.p256dh, auth: live.keys.auth };
  mock.script.push({ status: 429, retryAfter: '2' });
  t.strictSame(await wp.send(liveReg, note()), { kind: 'retry', reason: 'webpush 429', retryAfterMs: 2000 });

  const imposter = new WebPushProvider({ ...webpush.generateVAPIDKeys(), subject: 'mailto:x@example.com', timeoutMs: 5000 });
  t.match(await imposter.send(liveReg, note()), { kind: 'failed', reason: /^webpush 401/ }, 'a VAPID key the service does not know is refused');
});

t.test('WNS: client credentials, toast or raw with the X-WNS headers, and its answers', async (t) => {
  const mock = await WnsMock.start();
  t.teardown(() => mock.close());
  const wns = new WnsProvider({ clientId: WnsMock.clientId, clientSecret: WnsMock.clientSecret, tokenUrl: `${mock.url}/accesstoken.srf`, timeoutMs: 5000 });
  const channel = mock.channel();
  t.strictSame(await wns.send({ platform: 'wns', token: channel }, note()), { kind: 'sent' });
  t.strictSame(await wns.send({ platform: 'wns', token: channel }, wake()), { kind: 'sent' });
  t.equal(mock.tokenRequests, 1);
  const [toast, raw] = mock.delivered();
  t.match(toast!.headers, { 'x-wns-type': 'wns/toast', 'content-type': 'text/xml', 'x-wns-tag': collapseIdOf('d.ann.bob'), 'x-wns-ttl': '3600', 'x-wns-requestforstatus': 'true' });
  t.equal(toast!.payload, '<toast launch="conv=d.ann.bob&#38;seq=7"><visual><binding template="ToastGeneric"><text>Ann</text><text>hi &#60;there&#62; &#38; &#34;you&#34;</text></binding></visual></toast>',
    'the text is escaped into the toast XML');
  t.match(raw!.headers, { 'x-wns-type': 'wns/raw', 'content-type': 'application/octet-stream' });
  t.strictSame(raw!.payload, { conv: 'd.ann.bob', seq: 7, count: 1 });

  mock.revokeTokens();
  t.strictSame(await wns.send({ platform: 'wns', token: channel }, note()), { kind: 'sent' }, 'an expired token: a new one, once');
  t.equal(mock.tokenRequests, 2);
  const gone = mock.channel();
  mock.expired.add(new URL(gone).pathname);
  t.match(await wns.send({ platform: 'wns', token: gone }, note()), { kind: 'dead', reason: 'wns 410' });
  mock.script.push({ status: 406 });
  t.match(await wns.send({ platform: 'wns', token: channel }, note()), { kind: 'retry', reason: 'wns 406' }, '406: throttled');
  const bad = new WnsProvider({ clientId: WnsMock.clientId, clientSecret: 'wrong', tokenUrl: `${mock.url}/accesstoken.srf`, timeoutMs: 5000 });
  t.match(await bad.send({ platform: 'wns', token: channel }, note()), { kind: 'retry', reason: /invalid_client/ }, 'credentials refused: not sent');
});

t.test('the dispatcher over FCM: a 429 is retried after its Retry-After, one notification in the end', async (t) => {
  const mock = await FcmMock.start();
  t.teardown(() => mock.close());
  const fcm = new FcmProvider({ account: mock.serviceAccount as unknown as ServiceAccount, url: mock.url, tokenUrl: `${mock.url}/token`, timeoutMs: 5000 });
  const metrics = new Metrics();
  const d = new PushDispatcher({ ...pushConfig({}).dispatch, coalesceMs: 10, retryBaseMs: 10 }, {
    providers: { fcm }, fallback: new OutboxProvider(), metrics: metrics.pushSink(), senderName: async () => 'Ann', dead: () => undefined,
  });
  t.teardown(() => d.close());
  mock.script.push({ status: 429, reason: 'QUOTA_EXCEEDED', retryAfter: '1' });
  d.notify({ user: 'bob', device: 'phone', push: { platform: 'fcm', token: 'fcm-1' }, ptr: 1, conv: 'd.ann.bob', seq: 1, from: 'ann', kind: 'text' });
  const sent = await mock.waitFor((rs) => rs.find((r) => r.status === 200), 10_000, 'the retry');
  const first = mock.requests.find((r) => r.status === 429)!;
  t.ok(sent.at - first.at >= 1000, `the retry waited for Retry-After (${sent.at - first.at} ms)`);
  t.equal(mock.delivered().length, 1);
  await until(() => d.pending === 0, 'the dispatcher has the answer');
  const text = await metrics.render();
  t.match(text, /parley_push_events_total\{event="fcm_retried"\} 1\n/);
  t.match(text, /parley_push_events_total\{event="fcm_sent"\} 1\n/);
});

t.test('the dispatcher over APNs: a provider failing in a row opens its breaker; sends wait, then resume', async (t) => {
  const keys = apnsKeys();
  const mock = await ApnsMock.start(keys, 'com.example.parley', cert);
  t.teardown(() => mock.close());
  const apns = new ApnsProvider({ url: mock.url, key: keys.privatePem, keyId: keys.keyId, teamId: keys.teamId, topic: 'com.example.parley', tokenRefreshMs: 40 * 60_000, ca: cert.ca.toString(), timeoutMs: 5000 });
  const metrics = new Metrics();
  const d = new PushDispatcher({ ...pushConfig({}).dispatch, coalesceMs: 10, retryBaseMs: 5, retryMaxMs: 20, breakerFailures: 3, breakerOpenMs: 600, maxAttempts: 10 }, {
    providers: { apns }, fallback: new OutboxProvider(), metrics: metrics.pushSink(), senderName: async () => undefined, dead: () => undefined,
  });
  t.teardown(() => d.close());
  for (let i = 0; i < 3; i++) mock.script.push({ status: 503, reason: 'ServiceUnavailable' });
  d.notify({ user: 'bob', device: 'phone', push: { platform: 'apns', token: TOKEN }, ptr: 1, conv: 'd.ann.bob', seq: 1, from: 'ann', kind: 'text' });
  await mock.waitFor((rs) => rs.filter((r) => r.status === 503).length === 3, 10_000, 'three failures');
  await until(async () => /parley_push_apns_breaker_open 1/.test(await metrics.render()), 'the breaker opens');
  t.pass('the breaker is open (and shows in metrics)');
  const ok = await mock.waitFor((rs) => rs.find((r) => r.status === 200), 10_000, 'the send after the breaker');
  const third = mock.requests.filter((r) => r.status === 503)[2]!;
  t.ok(ok.at - third.at >= 550, `no send while it was open (${ok.at - third.at} ms)`);
  t.equal(mock.requests.length, 4, 'no retries were spent against it meanwhile');
  await until(() => d.pending === 0, 'the dispatcher has the answer');
  const text = await metrics.render();
  t.match(text, /parley_push_apns_breaker_open 0/);
  t.match(text, /parley_push_apns_breaker_trips 1/);
});

t.test('the dispatcher gives up after maxAttempts, and reports a dead registration once', async (t) => {
  const mock = await FcmMock.start();
  t.teardown(() => mock.close());
  const fcm = new FcmProvider({ account: mock.serviceAccount as unknown as ServiceAccount, url: mock.url, tokenUrl: `${mock.url}/token`, timeoutMs: 5000 });
  const metrics = new Metrics();
  const dead: string[] = [];
  const d = new PushDispatcher({ ...pushConfig({}).dispatch, coalesceMs: 5, retryBaseMs: 5, retryMaxMs: 10, maxAttempts: 3 }, {
    providers: { fcm }, fallback: new OutboxProvider(), metrics: metrics.pushSink(), senderName: async () => undefined, dead: (x) => dead.push(x.push.token),
  });
  t.teardown(() => d.close());
  for (let i = 0; i < 3; i++) mock.script.push({ status: 429, reason: 'QUOTA_EXCEEDED' });
  d.notify({ user: 'bob', device: 'phone', push: { platform: 'fcm', token: 'fcm-1' }, ptr: 1, conv: 'd.ann.bob', seq: 1, from: 'ann', kind: 'text' });
  await mock.waitFor((rs) => rs.length === 3, 5000, 'three attempts');
  mock.unregistered.add('fcm-gone');
  d.notify({ user: 'bob', device: 'tablet', push: { platform: 'fcm', token: 'fcm-gone' }, ptr: 2, conv: 'd.ann.bob', seq: 2, from: 'ann', kind: 'text' });
  await mock.waitFor((rs) => rs.some((r) => r.status === 404), 5000, 'the 404');
  await until(() => dead.length > 0, 'the dead registration is reported');
  t.strictSame(dead, ['fcm-gone']);
  d.notify({ user: 'bob', device: 'tablet', push: { platform: 'fcm', token: 'fcm-gone' }, ptr: 3, conv: 'd.ann.bob', seq: 3, from: 'ann', kind: 'text' });
  d.notify({ user: 'bob', device: 'phone', push: { platform: 'fcm', token: 'fcm-1' }, ptr: 4, conv: 'd.ann.bob', seq: 4, from: 'ann', kind: 'text' });
  await mock.waitFor((rs) => rs.some((r) => r.status === 200), 5000, 'the phone\'s next push');
  t.equal(mock.requests.filter((r) => r.token === 'fcm-gone').length, 1, 'a token called dead is not sent to again (the phone\'s push came after)');
  t.equal(mock.requests.filter((r) => r.token === 'fcm-1').length, 4, 'three attempts, then the next message\'s push');
  await until(() => d.pending === 0, 'the dispatcher has the answer');
  const text = await metrics.render();
  t.match(text, /parley_push_events_total\{event="fcm_failed"\} 1\n/);
  t.match(text, /parley_push_events_total\{event="fcm_removed"\} 1\n/);
});

t.test('the webhook: one signed JSON POST per notification; its answers as the others\'', async (t) => {
  const got: { body: string; sig: string | undefined }[] = [];
  const answers: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      got.push({ body, sig: req.headers['x-parley-signature'] as string | undefined });
      const status = answers.shift() ?? 204;
      res.writeHead(status, status === 429 ? { 'retry-after': '4' } : {});
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const secret = 'webhook-secret-0123456789';
  const hook = new WebhookProvider({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/push`, secret, timeoutMs: 5000 });
  const reg = { platform: 'fcm' as const, token: 'gw-token' };
  t.strictSame(await hook.send(reg, note(), to), { kind: 'sent' });
  const { body, sig } = got[0]!;
  t.equal(sig, `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`, 'signed with the shared secret over the exact body');
  t.strictSame(JSON.parse(body), { user: 'bob', device: 'phone', platform: 'fcm', token: 'gw-token', notification: note() });
  answers.push(410, 429, 500, 400);
  t.match(await hook.send(reg, note(), to), { kind: 'dead' });
  t.strictSame(await hook.send(reg, note(), to), { kind: 'retry', reason: 'webhook 429', retryAfterMs: 4000 });
  t.match(await hook.send(reg, note(), to), { kind: 'retry', outage: true });
  t.match(await hook.send(reg, note(), to), { kind: 'failed', reason: 'webhook 400' });
});
