import t from 'tap';
import { addToBurst, collapseIdOf, mergeBursts, mutedAt, MUTED_FOREVER, parseRetryAfter, previewOf, pushable, render, retryDelay, PREVIEW_CHARS } from '../../src/push/policy.js';
import { endpointAllowed, parseRegistration, sameAddress, tokenKey } from '../../src/push/registration.js';
import { Breaker } from '../../src/push/breaker.js';
import { ParleyError } from '../../src/protocol/errors.js';
import { validateClientFrame } from '../../src/protocol/validate.js';
import { DEFAULT_LIMITS } from '../../src/protocol/limits.js';

const HEX = 'ab'.repeat(32);
const P256DH = `B${'A'.repeat(86)}`;
const AUTH = 'A'.repeat(22);

const code = (f: () => unknown): string | undefined => {
  try { f(); return undefined; } catch (e) { return e instanceof ParleyError ? `${e.code}: ${e.message}` : String(e); }
};

t.test('registrations: each platform\'s shape, and each rule refused with invalid naming the field', async (t) => {
  t.strictSame(parseRegistration({ platform: 'apns', token: HEX.toUpperCase(), app: 'com.example.chat', previews: true }),
    { platform: 'apns', token: HEX, app: 'com.example.chat', previews: true }, 'an APNs token is hex, kept lower-case');
  t.strictSame(parseRegistration({ platform: 'fcm', token: 'dGVzdA:APA91b-x_y' }), { platform: 'fcm', token: 'dGVzdA:APA91b-x_y' }, 'previews off unless asked for');
  t.strictSame(parseRegistration({ platform: 'wns', token: 'https://db5.notify.windows.com/?token=AwYAAAB' }), { platform: 'wns', token: 'https://db5.notify.windows.com/?token=AwYAAAB' });
  t.strictSame(parseRegistration({ platform: 'webpush', endpoint: 'https://fcm.googleapis.com/fcm/send/abc', keys: { p256dh: P256DH, auth: AUTH } }),
    { platform: 'webpush', token: 'https://fcm.googleapis.com/fcm/send/abc', p256dh: P256DH, auth: AUTH }, 'the endpoint is the token');
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown platform', { platform: 'pager', token: 'x' }, /platform must be one of apns, fcm, webpush, wns/],
    ['an APNs token that is not hex', { platform: 'apns', token: 'z'.repeat(64) }, /hex digits/],
    ['a short APNs token', { platform: 'apns', token: 'ab' }, /64\.\.200 hex/],
    ['an FCM token with spaces', { platform: 'fcm', token: 'a b' }, /FCM token/],
    ['an FCM token too long', { platform: 'fcm', token: 'a'.repeat(4097) }, /1\.\.4096/],
    ['no token', { platform: 'fcm' }, /token must be a string/],
    ['a WNS channel that is not a URL', { platform: 'wns', token: 'channel' }, /token must be a URL/],
    ['a URL with credentials', { platform: 'wns', token: 'https://u:p@x.notify.windows.com/' }, /https URL/],
    ['a file: URL', { platform: 'wns', token: 'file:///etc/passwd' }, /https URL/],
    ['webpush without keys', { platform: 'webpush', endpoint: 'https://fcm.googleapis.com/x' }, /keys must be/],
    ['webpush with a short p256dh', { platform: 'webpush', endpoint: 'https://fcm.googleapis.com/x', keys: { p256dh: 'BAAA', auth: AUTH } }, /p256dh/],
    ['webpush with a bad auth', { platform: 'webpush', endpoint: 'https://fcm.googleapis.com/x', keys: { p256dh: P256DH, auth: '!'.repeat(22) } }, /auth/],
    ['webpush with a token', { platform: 'webpush', token: 'x', endpoint: 'https://a/', keys: {} }, /not token/],
    ['apns with keys', { platform: 'apns', token: HEX, keys: {} }, /not endpoint or keys/],
    ['previews not a boolean', { platform: 'apns', token: HEX, previews: 'yes' }, /previews must be true or false/],
    ['an app id with a slash', { platform: 'apns', token: HEX, app: 'a/b' }, /app must be/],
    ['an endpoint too long', { platform: 'webpush', endpoint: `https://a.b/${'x'.repeat(2048)}`, keys: { p256dh: P256DH, auth: AUTH } }, /at most 2048/],
  ];
  for (const [what, v, re] of bad) t.match(code(() => parseRegistration(v)), new RegExp(`^invalid: .*${re.source}`), what);
  t.match(code(() => validateClientFrame({ t: 'push.register', rid: 'r', platform: 'apns', token: 'nothex' }, DEFAULT_LIMITS)), /^invalid:/, 'the frame validator applies them');
  t.strictSame(validateClientFrame({ t: 'mute', rid: 'r', conv: 'g.abcdefgh' }, DEFAULT_LIMITS), { t: 'mute', rid: 'r', conv: 'g.abcdefgh' });
  t.match(code(() => validateClientFrame({ t: 'mute', rid: 'r', conv: 'nope' }, DEFAULT_LIMITS)), /^invalid: conv/);
  t.match(code(() => validateClientFrame({ t: 'mute', rid: 'r', conv: 'g.abcdefgh', until: -1 }, DEFAULT_LIMITS)), /^invalid: until/);
});

t.test('endpoint origins: exact, or any subdomain of a *. pattern; scheme and port must match', async (t) => {
  const allowed = ['https://fcm.googleapis.com', 'https://*.notify.windows.com', 'http://127.0.0.1:9999'];
  t.ok(endpointAllowed('https://fcm.googleapis.com/fcm/send/x', allowed));
  t.ok(endpointAllowed('https://db5.notify.windows.com/?token=1', allowed));
  t.ok(endpointAllowed('http://127.0.0.1:9999/push/1', allowed));
  t.notOk(endpointAllowed('https://notify.windows.com.evil.example/', allowed), 'a suffix is not a subdomain');
  t.notOk(endpointAllowed('https://evilnotify.windows.com/', allowed));
  t.notOk(endpointAllowed('http://fcm.googleapis.com/x', allowed), 'the scheme counts');
  t.notOk(endpointAllowed('http://127.0.0.1:8080/v1/admin', allowed), 'the port counts');
  t.notOk(endpointAllowed('not a url', allowed));
});

t.test('token keys: one per platform and token, whatever else the registration says', async (t) => {
  const a = { platform: 'apns' as const, token: HEX };
  t.equal(tokenKey(a), tokenKey({ ...a, previews: true, app: 'x' }));
  t.not(tokenKey(a), tokenKey({ platform: 'fcm', token: HEX }));
  t.equal(tokenKey(a).length, 43, 'a sha-256, base64url');
  t.ok(sameAddress(a, { ...a, previews: true }));
  t.notOk(sameAddress(a, undefined));
});

t.test('what pushes, and what a notification may show', async (t) => {
  t.ok(pushable('text') && pushable('image') && pushable('reaction'));
  t.notOk(pushable('edit') || pushable('delete') || pushable('system'), 'edits, deletes and system lines do not notify');
  t.equal(previewOf('text', { text: '  hello\n  there ' }), 'hello there');
  t.equal(previewOf('text', new Uint8Array([1, 2, 3])), undefined, 'ciphertext is never looked into');
  t.equal(previewOf('image', { media: 'x' }), 'Photo');
  const long = previewOf('text', { text: '😀'.repeat(500) })!;
  t.equal([...long].length, PREVIEW_CHARS, 'cut to the limit, by characters');
  t.ok(long.endsWith('…'));
  t.ok(mutedAt(MUTED_FOREVER, Date.now()));
  t.notOk(mutedAt(1000, 1000), 'a mute ends at its time');
  t.notOk(mutedAt(undefined, 0));
});

t.test('a burst renders as one notification: a count, a collapse id per conversation, text only with previews', async (t) => {
  let b = addToBurst(undefined, { conv: 'd.a.b', seq: 1, from: 'a', kind: 'text', preview: 'one' });
  b = addToBurst(b, { conv: 'd.a.b', seq: 2, from: 'a', kind: 'text', preview: 'two' });
  const o = { previews: false, senderName: 'Ann', mode: 'sender' as const, ttlSec: 60 };
  t.strictSame(render(b, o), { type: 'alert', count: 2, collapseId: collapseIdOf('d.a.b'), conv: 'd.a.b', seq: 2, ttlSec: 60, body: '2 new messages from Ann' });
  t.match(render(b, { ...o, previews: true }), { title: 'Ann', body: 'two (+1 more)' }, 'the newest text, with previews');
  t.match(render(addToBurst(undefined, { conv: 'd.a.b', seq: 1, from: 'a', kind: 'text' }), { ...o, previews: true }), { body: 'New message from Ann' },
    'previews allowed but no plaintext: who wrote only');
  t.match(render(addToBurst(undefined, { conv: 'd.a.b', seq: 1, from: 'a', kind: 'text' }), { ...o, senderName: undefined }), { body: 'New message' });
  const two = addToBurst(b, { conv: 'g.grp', seq: 9, from: 'c', kind: 'image' });
  t.match(render(two, o), { body: '3 new messages in 2 chats', conv: 'g.grp', collapseId: collapseIdOf('g.grp') });
  const wake = render(b, { ...o, previews: true, mode: 'wake' });
  t.strictSame(wake, { type: 'wake', count: 2, collapseId: collapseIdOf('d.a.b'), conv: 'd.a.b', seq: 2, ttlSec: 60 }, 'wake: no text at all');
  t.equal(collapseIdOf('d.a.b').length, 16);
  t.match(mergeBursts(b, addToBurst(undefined, { conv: 'g.grp', seq: 3, from: 'c', kind: 'text' })), { count: 3, seq: 3, convs: ['d.a.b', 'g.grp'] }, 'a retry merged into what came after it');
});

t.test('retry waits: Retry-After when given, else exponential with jitter, capped', async (t) => {
  t.equal(retryDelay(1, 7000, 1000, 60_000, 0.5), 7000, 'the service\'s Retry-After wins');
  t.equal(retryDelay(1, undefined, 1000, 60_000, 0), 500);
  t.equal(retryDelay(1, undefined, 1000, 60_000, 0.999), 999);
  t.equal(retryDelay(3, undefined, 1000, 60_000, 0), 2000, 'doubling: 4 s at attempt 3, half of it fixed');
  t.equal(retryDelay(20, undefined, 1000, 60_000, 0.999), 59_970, 'capped');
  t.equal(parseRetryAfter('120', 0), 120_000);
  t.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10_000, 'an HTTP date');
  t.equal(parseRetryAfter('soon', 0), undefined);
  t.equal(parseRetryAfter(null, 0), undefined);
});

t.test('the breaker opens after failures in a row, lets one probe through after its wait, and closes on success', async (t) => {
  const b = new Breaker(3, 1000);
  b.failure(0); b.failure(0);
  t.ok(b.allows(0), 'two failures: still closed');
  b.success();
  b.failure(0); b.failure(0); b.failure(10);
  t.notOk(b.allows(500), 'three in a row: open');
  t.ok(b.isOpen(500));
  t.equal(b.reopensAt(), 1010);
  t.ok(b.allows(1010), 'after the wait, one probe');
  t.notOk(b.allows(1010), 'only one at a time');
  b.failure(1020);
  t.notOk(b.allows(1500), 'the probe failed: open again');
  t.equal(b.trips, 2);
  t.ok(b.allows(2020));
  b.success();
  t.ok(b.allows(2020) && b.allows(2020), 'closed');
  t.notOk(b.isOpen(2020));
});
