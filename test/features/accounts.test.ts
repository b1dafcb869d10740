import t from 'tap';
import { Fixture, http } from '../helpers/fixture.js';
import { API_KEY, newPhone } from '../helpers/clients.js';
import { randomBytes } from 'node:crypto';
import { uploadMedia } from '../../src/client/accounts-api.js';

/** Issue #2 §1: phone-number accounts over HTTP, and the profile over the WebSocket. */

const MAX_ATTEMPTS = 3;
let f: Fixture;
t.before(async () => { f = await Fixture.start({ PARLEY_OTP_MAX_ATTEMPTS: String(MAX_ATTEMPTS) }); });
t.teardown(() => f.destroy());

const key = { 'x-api-key': API_KEY };
const requestCode = (phone: unknown, headers: Record<string, string> = key) => http(f.url, '/v1/accounts/code', { method: 'POST', headers, json: { phone } });
const verify = (phone: unknown, code: unknown, device?: unknown, headers: Record<string, string> = key) =>
  http(f.url, '/v1/accounts/verify', { method: 'POST', headers, json: { phone, code, ...(device ? { device } : {}) } });
const outboxCode = async (phone: string): Promise<string> => {
  const r = await http(f.url, `/v1/dev/otp?phone=${encodeURIComponent(phone)}`);
  if (r.status !== 200) throw new Error(`no code in the dev outbox for ${phone}: ${r.status}`);
  return r.json.code as string;
};
const wrongCode = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

t.test('a new number registers: user, device and token, created:true; the token validates', async (t) => {
  const phone = newPhone();
  const sent = await requestCode(phone);
  t.equal(sent.status, 200);
  t.equal(sent.json.sent, true);
  t.ok(sent.json.ttlMs > 0, 'the answer says how long the code lives');
  const code = await outboxCode(phone);
  t.match(code, /^\d{6}$/, 'a six-digit code went out by SMS');

  const v = await verify(phone, code, { name: 'Pixel', platform: 'android' });
  t.equal(v.status, 200);
  t.equal(v.json.created, true);
  t.match(v.json, { user: /^[a-z2-7]+$/, device: /^[a-z2-7]+$/, token: /^v1\./ });

  const me = await http(f.url, '/v1/accounts/me', { headers: { authorization: `Bearer ${v.json.token}` } });
  t.equal(me.status, 200);
  t.same(me.json, { valid: true, user: v.json.user, device: v.json.device, phone, name: phone });

  t.equal((await verify(phone, code)).json.error?.code, 'otp_expired', 'a code works once');
});

t.test('the same number on a second device logs in to the same user with a new device and token', async (t) => {
  const phone = newPhone();
  await requestCode(phone);
  const first = await verify(phone, await outboxCode(phone));
  await requestCode(phone);
  const second = await verify(phone, await outboxCode(phone));
  t.equal(second.status, 200);
  t.equal(second.json.created, false);
  t.equal(second.json.user, first.json.user, 'same user');
  t.not(second.json.device, first.json.device, 'new device');
  t.not(second.json.token, first.json.token);
  for (const s of [first.json, second.json]) {
    const me = await http(f.url, '/v1/accounts/me', { headers: { authorization: `Bearer ${s.token}` } });
    t.same([me.json.user, me.json.device], [s.user, s.device], 'each token names its own device');
  }
  // Both devices are really usable at once.
  const a = await f.device(t, { session: first.json, phone });
  const b = await f.device(t, { session: second.json, phone });
  t.equal(a.client.user, b.client.user);
  t.not(a.client.device, b.client.device);
});

t.test('a wrong code is otp_invalid; after the maximum of wrong codes the number is locked until a new code', async (t) => {
  const phone = newPhone();
  await requestCode(phone);
  const code = await outboxCode(phone);
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const r = await verify(phone, wrongCode(code));
    t.equal(r.status, 401, `wrong code ${i + 1} is 401`);
    t.equal(r.json.error.code, 'otp_invalid');
    t.equal(r.json.error.retryable, false);
  }
  const locked = await verify(phone, code);
  t.equal(locked.status, 429, 'even the right code is refused once locked');
  t.equal(locked.json.error.code, 'otp_locked');

  await requestCode(phone);
  const fresh = await outboxCode(phone);
  const ok = await verify(phone, fresh);
  t.equal(ok.status, 200, 'a new code unlocks');
  t.equal(ok.json.created, true);
});

t.test('no code pending is otp_expired', async (t) => {
  const r = await verify(newPhone(), '123456');
  t.equal(r.status, 401);
  t.equal(r.json.error.code, 'otp_expired');
});

t.test('a missing or unknown API key is 401 and sends no code', async (t) => {
  const phone = newPhone();
  for (const headers of [{}, { 'x-api-key': 'not-the-key' }] as Record<string, string>[]) {
    const r = await requestCode(phone, headers);
    t.equal(r.status, 401);
    t.equal(r.json.error.code, 'unauthorized');
  }
  t.equal((await http(f.url, `/v1/dev/otp?phone=${encodeURIComponent(phone)}`)).status, 404, 'nothing went out');

  await requestCode(phone);
  const v = await verify(phone, await outboxCode(phone), undefined, { 'x-api-key': 'nope' });
  t.equal(v.status, 401);
  t.equal(v.json.error.code, 'unauthorized');
});

t.test('a phone number not in E.164 form is 400 invalid', async (t) => {
  for (const phone of ['12345', '+0123456789', 'call me', '', 42, null, '+1' + '2'.repeat(20)]) {
    const r = await requestCode(phone);
    t.equal(r.status, 400, `phone ${JSON.stringify(phone)}`);
    t.equal(r.json.error.code, 'invalid');
  }
  const r = await verify('555', '123456');
  t.equal(r.status, 400);
  t.equal(r.json.error.code, 'invalid');
  const notJson = await http(f.url, '/v1/accounts/code', { method: 'POST', headers: { ...key, 'content-type': 'application/json' }, body: '{nope' });
  t.equal(notJson.status, 400);
  t.equal(notJson.json.error.code, 'bad_frame');
});

t.test('GET /v1/accounts/me refuses missing, forged and malformed tokens', async (t) => {
  const phone = newPhone();
  await requestCode(phone);
  const { token } = (await verify(phone, await outboxCode(phone))).json;
  const [v, body, mac] = token.split('.');
  const forgedBody = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), u: 'aaaaaaaaaaaaaaaa' })).toString('base64url');
  for (const authorization of [undefined, 'Bearer ', 'Bearer nope', `Bearer ${v}.${forgedBody}.${mac}`, `Basic ${token}`]) {
    const r = await http(f.url, '/v1/accounts/me', { headers: authorization === undefined ? {} : { authorization } });
    t.equal(r.status, 401, `authorization ${JSON.stringify(authorization?.slice(0, 20))}`);
    t.equal(r.json.error.code, 'unauthorized');
  }
});

t.test('profile set and get over the WebSocket', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const initial = await bob.client.getProfile(alice.user);
  t.equal(initial.id, alice.user);
  t.equal(initial.name, alice.phone, 'a new user is named by its number');

  const pic = (await uploadMedia(f.url, alice.session.token, randomBytes(200), 'image/jpeg')).id; // a profile picture is an upload of hers
  const set = await alice.client.setProfile({ name: 'Alice', avatar: pic });
  t.match(set, { id: alice.user, name: 'Alice', avatar: pic });
  const seen = await bob.client.getProfile(alice.user);
  t.match(seen, { id: alice.user, name: 'Alice', avatar: pic });
  t.equal(seen.createdAt, initial.createdAt);

  await alice.client.setProfile({ name: 'Alice L.' });
  t.match(await bob.client.getProfile(alice.user), { name: 'Alice L.', avatar: pic }, 'a partial update keeps the rest');

  const me = await http(f.url, '/v1/accounts/me', { headers: { authorization: `Bearer ${alice.session.token}` } });
  t.equal(me.json.name, 'Alice L.', '/me shows the profile name');

  await t.rejects(bob.client.getProfile('zzzzzzzzzzzzzzzz'), { code: 'not_found' }, 'no such user');
  await t.rejects(alice.client.setProfile({ name: 'x'.repeat(65) }), { code: 'invalid' }, 'names are at most 64 characters');
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
