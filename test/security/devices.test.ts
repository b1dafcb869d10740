import t from 'tap';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Fixture, http, type HasTeardown } from '../helpers/fixture.js';
import { API_KEY, newPhone, signIn, texts, type TestDevice } from '../helpers/clients.js';
import { devSignIn } from '../../src/client/accounts-api.js';
import type { ClientOptions } from '../../src/client/parley-client.js';
import { TokenSigner } from '../../src/accounts/tokens.js';
import { LmdbStore } from '../../src/store/lmdb/lmdb-store.js';
import { deviceKey } from '../../src/protocol/ids.js';
import type { DeviceInfo } from '../../src/protocol/frames.js';
import type { TapTest } from '../store/conformance.js';

/**
 * Security issue #10, part 6: devices and sessions. A user's devices are listed and signed out (one, this,
 * every other, all) over HTTP and the socket; a signed-out device's token is refused at once (`signed_out`),
 * its socket closes with 4401, its inbox, acked pointer and push registration are gone. Other devices are
 * told when one is added (live, or after their next sync) and removed. Tokens renew while in use.
 */

const SECRET = 'devices-test-secret-0123456789abcdef';
const DAY = 86_400_000;
let f: Fixture;
t.before(async () => { f = await Fixture.start({ PARLEY_SECRET: SECRET }); });
t.teardown(() => f.destroy());

/** Devices signed out (whose store rows and inboxes must be gone) and devices kept, checked at the end. */
const signedOut: { user: string; device: string }[] = [];
const kept: { user: string; device: string; inbox?: number }[] = [];

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const me = (token: string) => http(f.url, '/v1/accounts/me', { headers: auth(token) });
const listHttp = (token: string) => http(f.url, '/v1/devices', { headers: auth(token) });
const signOutHttp = (token: string, body: unknown = {}) => http(f.url, '/v1/devices/signout', { method: 'POST', headers: auth(token), json: body });

/** Tries a WebSocket upgrade with the token; the HTTP answer when refused. */
function upgrade(token: string): Promise<{ opened: boolean; status?: number; code?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${f.url.replace(/^http/, 'ws')}/v1/ws?token=${encodeURIComponent(token)}`);
    ws.on('open', () => { ws.close(); resolve({ opened: true }); });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ opened: false, status: res.statusCode, code: (JSON.parse(body) as { error: { code: string } }).error.code }));
    });
    ws.on('error', () => undefined);
  });
}

/** Every device event, sync and sign-out a client reports, in order. */
type Event = { e: 'added' | 'removed'; device: DeviceInfo; time: number } | { e: 'synced' } | { e: 'signedOut' };
function record(d: TestDevice): Event[] {
  const out: Event[] = [];
  d.client.on('deviceAdded', (device, time) => out.push({ e: 'added', device, time }));
  d.client.on('deviceRemoved', (device, time) => out.push({ e: 'removed', device, time }));
  d.client.on('synced', () => out.push({ e: 'synced' }));
  d.client.on('signedOut', () => out.push({ e: 'signedOut' }));
  return out;
}

/** A user with one connected device (more come through f.secondDevice). */
async function user(t: HasTeardown, name = 'phone'): Promise<TestDevice> {
  const { session, phone } = await signIn(f.url, newPhone(), name);
  return f.device(t, { session, phone });
}

/** A device of `of`'s user signed in (named, as an app would), connected unless `connect: false`. */
async function another(t: HasTeardown, of: TestDevice, name: string, connect = true, opts: Partial<ClientOptions> = {}): Promise<TestDevice> {
  const session = await devSignIn(f.url, API_KEY, of.phone, { name, platform: `${name}-os` });
  return f.device(t, { ...opts, session, phone: of.phone, connect });
}

const closedWith = (d: TestDevice, code: number) => d.waitFor(() => d.closes.find((c) => c.code === code), 5000, `close ${code}`);

t.test('the device list: every device, oldest first, this one current, online or when last active', async (t) => {
  const a = await user(t, 'pixel');
  const b = await another(t, a, 'laptop');
  const c = await another(t, a, 'tablet', false);
  const viaSocket = await a.client.listDevices();
  t.same(viaSocket.map((d) => d.id), [a.session.device, b.session.device, c.session.device], 'oldest first');
  t.match(viaSocket, [
    { id: a.session.device, name: 'pixel', platform: 'test', online: true, current: true },
    { id: b.session.device, name: 'laptop', platform: 'laptop-os', online: true },
    { id: c.session.device, name: 'tablet', platform: 'tablet-os', online: false },
  ]);
  t.notOk(viaSocket[1]!.current, 'only the asker is current');
  t.notOk('lastActive' in viaSocket[2]!, 'never connected: no last active');
  for (const d of viaSocket) t.ok(d.createdAt > Date.now() - 60_000 && d.createdAt <= Date.now(), 'signed in just now');

  const viaHttp = await listHttp(b.session.token);
  t.equal(viaHttp.status, 200);
  t.same(viaHttp.json.devices.map((d: DeviceInfo) => [d.id, d.current === true]),
    [[a.session.device, false], [b.session.device, true], [c.session.device, false]], 'over HTTP, the caller is current');

  const before = Date.now();
  await b.close();
  const listed = await pollList(a, (ds) => ds.find((d) => d.id === b.session.device)?.online === false);
  const laptop = listed.find((d) => d.id === b.session.device)!;
  t.ok(laptop.lastActive! >= before && laptop.lastActive! <= Date.now(), 'a closed socket leaves its time as last active');
  kept.push({ user: a.user, device: a.session.device }, { user: a.user, device: b.session.device });
});

/** Lists a's devices until `ok` holds (the detach of a closed socket reaches the entity on its own time). */
async function pollList(a: TestDevice, ok: (ds: DeviceInfo[]) => boolean): Promise<DeviceInfo[]> {
  const until = Date.now() + 5000;
  for (;;) {
    const ds = await a.client.listDevices();
    if (ok(ds)) return ds;
    if (Date.now() > until) throw new Error(`the device list never got there: ${JSON.stringify(ds)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('signing out another device: refused at once everywhere, its socket closes with 4401, its messages and push stop', async (t) => {
  const carol = await user(t, 'carol');
  const a = await user(t, 'phone');
  const b = await another(t, a, 'laptop');
  const offline = await another(t, a, 'old-tablet', false);
  const aEvents = record(a);
  const bEvents = record(b);
  t.same(await a.client.registerPush('fcm', 'push-of-a'), { registered: true });
  t.same(await b.client.registerPush('apns', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'), { registered: true });

  const first = await carol.client.text({ to: a.user }, 'before');
  await a.waitMessage((m) => m.seq === first.seq, 'before, on a');
  await b.waitMessage((m) => m.seq === first.seq, 'before, on b');

  t.same(await a.client.signOutDevice(b.session.device), { signedOut: [b.session.device] });
  t.same((await signOutHttp(a.session.token, { device: offline.session.device })).json, { signedOut: [offline.session.device] }, 'an offline one over HTTP');
  signedOut.push({ user: a.user, device: b.session.device }, { user: a.user, device: offline.session.device });
  kept.push({ user: a.user, device: a.session.device });

  t.match(await closedWith(b, 4401), { code: 4401, reason: 'this device was signed out' }, 'the open socket closes at once, with 4401');
  t.same(bEvents.at(-1), { e: 'signedOut' }, 'the SDK says so, and does not reconnect');
  for (const d of [b, offline]) {
    const r = await me(d.session.token);
    t.equal(r.status, 401, 'its next HTTP call is 401');
    t.equal(r.json.error.code, 'signed_out', '… with the stable code');
    t.same(await upgrade(d.session.token), { opened: false, status: 401, code: 'signed_out' }, 'it cannot connect again');
    t.equal((await listHttp(d.session.token)).json.error.code, 'signed_out');
    t.equal((await signOutHttp(d.session.token, { scope: 'all' })).json.error.code, 'signed_out', 'nor sign anyone out');
  }

  const removed = await a.waitFor(() => aEvents.filter((e) => e.e === 'removed').length >= 2 || undefined, 5000, 'two removed events');
  t.ok(removed);
  t.match(aEvents.filter((e) => e.e === 'removed'), [
    { e: 'removed', device: { id: b.session.device, name: 'laptop', platform: 'laptop-os' } },
    { e: 'removed', device: { id: offline.session.device, name: 'old-tablet' } },
  ], 'the remaining device is told');
  t.same((await a.client.listDevices()).map((d) => d.id), [a.session.device], 'the list has the remaining device only');

  // Messages go on to the remaining device, and to nobody else.
  const after = await carol.client.text({ to: a.user }, 'after');
  await a.waitMessage((m) => m.seq === after.seq, 'after, on a');
  t.same(texts(a.messages), ['before', 'after']);
  t.same(texts(b.messages), ['before'], 'the signed-out device got nothing more');

  // Push: with the remaining device offline, only its registration is woken.
  await a.close();
  const quiet = await carol.client.text({ to: a.user }, 'while a is away');
  const seen = await pollNotices(a.session.token, quiet.seq);
  t.same(seen.map((n) => [n.device, n.token]), [[a.session.device, 'push-of-a']], 'no push to the signed-out device\'s registration');
});

async function pollNotices(token: string, seq: number): Promise<{ device: string; token: string; seq: number }[]> {
  const until = Date.now() + 5000;
  for (;;) {
    const all = (await http(f.url, '/v1/dev/push', { headers: auth(token) })).json.notices as { device: string; token: string; seq: number }[];
    const these = all.filter((n) => n.seq === seq);
    if (these.length) return these;
    if (Date.now() > until) throw new Error('no push notice');
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('signing out this device, over HTTP and over the socket', async (t) => {
  const a = await user(t);
  const overHttp = await another(t, a, 'web');
  const r = await signOutHttp(overHttp.session.token);
  t.equal(r.status, 200);
  t.same(r.json, { signedOut: [overHttp.session.device] }, 'an empty body is this device');
  await closedWith(overHttp, 4401);
  t.equal((await me(overHttp.session.token)).json.error.code, 'signed_out');

  const overSocket = await another(t, a, 'desktop');
  const events = record(overSocket);
  t.same(await overSocket.client.signOut(), { signedOut: [overSocket.session.device] }, 'the answer comes before the close');
  await closedWith(overSocket, 4401);
  t.same(events.filter((e) => e.e !== 'synced'), [{ e: 'signedOut' }], 'the SDK says it was signed out');
  t.equal((await me(overSocket.session.token)).json.error.code, 'signed_out');
  t.same((await a.client.listDevices()).map((d) => d.id), [a.session.device]);
  signedOut.push({ user: a.user, device: overHttp.session.device }, { user: a.user, device: overSocket.session.device });
});

t.test('sign out everywhere: every other device, then all of them', async (t) => {
  const carol = await user(t, 'carol');
  const a = await user(t);
  const b = await another(t, a, 'b');
  const c = await another(t, a, 'c');
  const d = await another(t, a, 'd', false);
  t.same((await a.client.signOutOthers()).signedOut.sort(), [b.session.device, c.session.device, d.session.device].sort());
  await closedWith(b, 4401);
  await closedWith(c, 4401);
  for (const x of [b, c, d]) t.equal((await me(x.session.token)).json.error.code, 'signed_out');
  t.equal((await me(a.session.token)).status, 200, 'the asking device stays');
  const sent = await carol.client.text({ to: a.user }, 'still here?');
  await a.waitMessage((m) => m.seq === sent.seq, 'a still gets messages');
  t.same(await a.client.send({ to: carol.user }, 'text', { text: 'yes' }).then((s) => s.t), 'sent', 'and sends');

  t.same(await a.client.signOut('all'), { signedOut: [a.session.device] }, 'all: the only one left is this one');
  await closedWith(a, 4401);
  t.equal((await me(a.session.token)).json.error.code, 'signed_out');
  for (const x of [a, b, c, d]) signedOut.push({ user: a.user, device: x.session.device });

  // `all` over HTTP takes the asker too.
  const e = await user(t);
  const g = await another(t, e, 'g');
  const all = await signOutHttp(e.session.token, { scope: 'all' });
  t.same(all.json.signedOut.sort(), [e.session.device, g.session.device].sort());
  await closedWith(e, 4401);
  await closedWith(g, 4401);
});

t.test('a device signed in less than a day ago may sign out itself and newer devices, not older ones', async (t) => {
  const a = await user(t);
  const b = await another(t, a, 'newcomer');
  const c = await another(t, a, 'newest', false);
  await t.rejects(b.client.signOutDevice(a.session.device), { code: 'device_too_new' }, 'not an older one');
  await t.rejects(b.client.signOutOthers(), { code: 'device_too_new' }, 'not all the others, since one is older');
  const r = await signOutHttp(b.session.token, { scope: 'all' });
  t.equal(r.status, 403);
  t.equal(r.json.error.code, 'device_too_new');
  t.equal(r.json.error.retryable, false);
  t.ok(r.json.error.retryAfterMs > DAY - 60_000 && r.json.error.retryAfterMs <= DAY, 'it says how long until it may');
  t.ok(Number(r.headers.get('retry-after')) > 86_000, 'and so does Retry-After');
  t.same((await a.client.listDevices()).map((d) => d.id), [a.session.device, b.session.device, c.session.device], 'nothing was signed out');
  t.equal((await me(a.session.token)).status, 200);

  t.same(await b.client.signOutDevice(c.session.device), { signedOut: [c.session.device] }, 'a newer one it may');
  t.same(await a.client.signOutDevice(b.session.device), { signedOut: [b.session.device] }, 'the older device signs the newcomer out');
  await closedWith(b, 4401);
  signedOut.push({ user: a.user, device: b.session.device }, { user: a.user, device: c.session.device });
});

t.test('bad sign-outs get clear errors and sign nobody out', async (t) => {
  const a = await user(t);
  const b = await another(t, a, 'b');
  const stranger = await user(t);
  const cases: [unknown, string][] = [
    [{ device: 'NOT AN ID!' }, 'invalid'],
    [{ device: 'zzzzzzzz' }, 'not_found'],
    [{ device: stranger.session.device }, 'not_found'],
    [{ scope: 'everything' }, 'invalid'],
    [{ scope: 'others', device: b.session.device }, 'invalid'],
  ];
  for (const [body, code] of cases) {
    const http = await signOutHttp(a.session.token, body);
    t.equal(http.json.error?.code, code, `HTTP ${JSON.stringify(body)}`);
    t.equal(http.status, code === 'invalid' ? 400 : 404);
    t.equal(await rawSignOut(a, body as Record<string, unknown>), code, `socket ${JSON.stringify(body)}`);
  }
  const notJson = await http(f.url, '/v1/devices/signout', { method: 'POST', headers: { ...auth(a.session.token), 'content-type': 'application/json' }, body: '{oops' });
  t.equal(notJson.json.error.code, 'bad_frame');
  t.equal((await http(f.url, '/v1/devices')).json.error.code, 'unauthorized', 'no token');
  t.equal((await signOutHttp('v1.nope.nope')).status, 401);
  t.same((await a.client.listDevices()).map((d) => d.id), [a.session.device, b.session.device], 'nobody was signed out');
  t.equal((await stranger.client.listDevices()).length, 1, 'nor the stranger');
  t.ok(b.client.connected);
});

/** Sends devices.signout with these fields as is; the error code of the answer (or 'ok'). */
async function rawSignOut(d: TestDevice, fields: Record<string, unknown>): Promise<string> {
  const rid = `raw-${Math.random().toString(36).slice(2)}`;
  d.client.raw({ t: 'devices.signout', rid, ...fields });
  const f = await d.waitFrame((x) => (x.t === 'error' || x.t === 'res') && (x as { rid?: string }).rid === rid, 'the answer');
  return f.t === 'error' ? f.code : 'ok';
}

t.test('a new device is announced on the other devices\' sockets; an offline device hears of it after its next sync', async (t) => {
  const a = await user(t, 'phone');
  const aEvents = record(a);
  const b = await another(t, a, 'laptop');
  await b.close(); // offline from here on
  const before = Date.now();
  const c = await another(t, a, 'tablet', false);
  const cEvents = record(c);
  const added = await a.waitFor(() => aEvents.find((e) => e.e === 'added' && e.device.id === c.session.device), 5000, 'tablet announced');
  t.match(added, { e: 'added', device: { id: c.session.device, name: 'tablet', platform: 'tablet-os' } }, 'id, name, platform');
  t.ok(added.e === 'added' && added.time >= before && added.time <= Date.now(), 'and when');
  t.ok(aEvents.find((e) => e.e === 'added' && e.device.id === b.session.device), 'the laptop was announced too, when it signed in');

  // b comes back: after welcome and sync, before `synced`, it hears of the tablet (signed in while it was away).
  const again = await f.device(t, { session: b.session, phone: b.phone, connect: false });
  const bEvents = record(again);
  await again.client.connect();
  await again.waitFor(() => bEvents.find((e) => e.e === 'synced'), 5000, 'synced');
  t.match(bEvents, [{ e: 'added', device: { id: c.session.device, name: 'tablet' } }, { e: 'synced' }], 'the tablet, then synced; not itself, not the older phone');
  await again.close();
  const third = await f.device(t, { session: b.session, phone: b.phone, connect: false });
  const thirdEvents = record(third);
  await third.client.connect();
  await third.waitFor(() => thirdEvents.find((e) => e.e === 'synced'), 5000, 'synced');
  t.same(thirdEvents, [{ e: 'synced' }], 'told once: news on one connect is not news on the next');

  // The tablet's first connect: the devices older than it are no news (it sees them in the list).
  await c.client.connect();
  await c.waitFor(() => cEvents.find((e) => e.e === 'synced'), 5000, 'synced');
  t.same(cEvents, [{ e: 'synced' }]);
  t.same((await c.client.listDevices()).map((d) => d.name), ['phone', 'laptop', 'tablet']);
  kept.push({ user: a.user, device: c.session.device });
});

t.test('concurrency: a sign-out racing deliveries to that device loses no message and keeps no sender waiting', async (t) => {
  const N = 150;
  const carol = await user(t, 'carol');
  const a = await user(t, 'phone');
  const slow = await another(t, a, 'slow', true, { autoAck: false }); // its deliveries wait for their deferred inbox writes
  const away = await another(t, a, 'away', false); // offline: every delivery is an inbox write
  const sends: Promise<{ seq: number }>[] = [];
  for (let i = 1; i <= N; i++) sends.push(carol.client.text({ to: a.user }, `m${i}`));
  // Signed out while deliveries to it are on their way and those it holds wait for their ack (300 ms): the
  // ones waiting are not written, and their senders' ticks don't wait for it.
  await slow.waitFor(() => slow.messages.length >= 10 || undefined, 5000, 'deliveries reaching the slow device');
  const signedOutAt = Date.now();
  const result = await a.client.signOutOthers();
  t.same(result.signedOut.sort(), [slow.session.device, away.session.device].sort());
  const seqs = (await Promise.all(sends)).map((s) => s.seq);
  t.same(seqs, Array.from({ length: N }, (_, i) => i + 1), 'every message got its tick, none timed out');
  // A delivery never confirmed is retried after 5 s; a tick that waited for the signed-out device would come then.
  t.ok(Date.now() - signedOutAt < 4000, `the last tick came ${Date.now() - signedOutAt} ms after the sign-out, not after a retry`);
  await a.waitFor(() => a.messages.length >= N || undefined, 10_000, 'all on the remaining device');
  t.same(texts(a.messages), Array.from({ length: N }, (_, i) => `m${i + 1}`), 'in order, none lost, none twice');
  await closedWith(slow, 4401);
  for (const d of [slow, away]) t.equal((await me(d.session.token)).json.error.code, 'signed_out');
  signedOut.push(...[slow, away].map((d) => ({ user: a.user, device: d.session.device })));

  // The same race with a device that stays: its inbox holds what the signed-out ones' don't (checked at the end).
  const b = await user(t, 'phone2');
  const stays = await another(t, b, 'stays', false);
  const goes = await another(t, b, 'goes', false);
  const more: Promise<unknown>[] = [];
  let out: Promise<unknown> | undefined;
  for (let i = 1; i <= 40; i++) {
    more.push(carol.client.text({ to: b.user }, `n${i}`));
    if (i === 20) out = b.client.signOutDevice(goes.session.device);
  }
  await out;
  await Promise.all(more);
  await b.waitFor(() => b.messages.length >= 40 || undefined, 10_000, 'all 40');
  signedOut.push({ user: b.user, device: goes.session.device });
  kept.push({ user: b.user, device: stays.session.device, inbox: 40 });
});

/**
 * Rounds of one sign-in (a one-time code verified for a.phone) racing one sign-out of every other device,
 * the sign-out leaving 0 … 2× a sign-in's duration after the sign-in, so the node sees every order. Whatever it
 * chose, the outcome is whole: the new device stays (and its token works), or it was signed in and then out
 * by the sign-out, or its sign-in is refused as signed out; the list never holds a device nobody has a token
 * for, and never loses one that the sign-out didn't name.
 */
async function raceSignIns(
  t: TapTest, url: string, a: { user: string; phone: string; device: string },
  signOutOthers: () => Promise<{ signedOut: string[] }>, listIds: () => Promise<string[]>, beforeRound?: () => Promise<void>,
): Promise<Record<'kept' | 'signedOutAfter' | 'refused', number>> {
  const ROUNDS = 12;
  const post = (path: string, json: unknown) => http(url, path, { method: 'POST', headers: { 'x-api-key': API_KEY }, json });
  const code = async () => {
    await post('/v1/accounts/code', { phone: a.phone });
    return (await http(url, `/v1/dev/otp?phone=${encodeURIComponent(a.phone)}`)).json.code as string;
  };
  const meAt = (token: string) => http(url, '/v1/accounts/me', { headers: auth(token) });
  const warm = await code();
  const t0 = performance.now();
  await post('/v1/accounts/verify', { phone: a.phone, code: warm, device: { name: 'warm-up' } });
  const span = Math.max(4, 2 * (performance.now() - t0));
  let known = new Set(await listIds());
  const outcomes = { kept: 0, signedOutAfter: 0, refused: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const c = await code();
    await beforeRound?.();
    const delay = (round / (ROUNDS - 1)) * span;
    const [v, out] = await Promise.all([
      post('/v1/accounts/verify', { phone: a.phone, code: c, device: { name: `r${round}` } }),
      new Promise((r) => setTimeout(r, delay)).then(signOutOthers),
    ]);
    const list = await listIds();
    const what = `round ${round} (sign-out after ${delay.toFixed(1)} ms)`;
    t.notOk(out.signedOut.includes(a.device), `${what}: never the asker`);
    // Besides the known devices, only the racing sign-in's: kept and then signed out, or refused (its record was
    // stored, and the sign-out took it before the entity heard of the sign-in).
    const others = out.signedOut.filter((id) => !known.has(id));
    t.ok(others.length <= 1 && (v.status !== 200 || others.every((id) => id === v.json.device)), `${what}: only devices that were signed in`);
    if (v.status === 200 && out.signedOut.includes(v.json.device)) {
      outcomes.signedOutAfter++;
      t.same(list, [a.device], `${what}: signed in, then out`);
      t.equal((await meAt(v.json.token)).json.error.code, 'signed_out');
    } else if (v.status === 200) {
      outcomes.kept++;
      t.same(list, [a.device, v.json.device], `${what}: the sign-in stays, and its token works`);
      t.equal((await meAt(v.json.token)).status, 200);
    } else {
      outcomes.refused++;
      t.match(v, { status: 401, json: { error: { code: 'signed_out' } } }, `${what}: refused, as signed out during sign-in`);
      t.same(list, [a.device]);
    }
    known = new Set(list);
  }
  t.comment(`outcomes: ${JSON.stringify(outcomes)}`);
  return outcomes;
}

t.test('concurrency: a sign-out everywhere racing a sign-in, the user entity live', async (t) => {
  const a = await user(t, 'phone');
  await another(t, a, 'older', false);
  await raceSignIns(t, f.url, { user: a.user, phone: a.phone, device: a.session.device },
    () => a.client.signOutOthers(), async () => (await a.client.listDevices()).map((d) => d.id));
});

t.test('concurrency: a sign-out everywhere racing a sign-in, the user entity passivated (it loads the list meanwhile)', async (t) => {
  const cold = await Fixture.start({ PARLEY_PASSIVATE_AFTER_MS: '100' });
  t.teardown(() => cold.destroy());
  const { session, phone } = await signIn(cold.url, newPhone(), 'phone');
  const passivated = async () => {
    const until = Date.now() + 5000;
    while ((await cold.actors()).user!.ids.includes(session.user)) {
      if (Date.now() > until) throw new Error('the user entity was not passivated');
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const asked = (path: string, json?: unknown) => http(cold.url, path, json === undefined ? { headers: auth(session.token) } : { method: 'POST', headers: auth(session.token), json });
  await raceSignIns(t, cold.url, { user: session.user, phone, device: session.device },
    async () => (await asked('/v1/devices/signout', { scope: 'others' })).json,
    async () => ((await asked('/v1/devices')).json.devices as DeviceInfo[]).map((d) => d.id),
    passivated);
  t.same(cold.errorLogs(), []);
});

t.test('tokens renew while in use: in the welcome when due, and on request', async (t) => {
  const signer = new TokenSigner(Buffer.from(SECRET));
  const a = await user(t);
  const now = Date.now();
  const fresh = await f.device(t, { session: a.session, phone: a.phone });
  t.notOk(fresh.frames.find((x) => x.t === 'welcome' && 'token' in x), 'a token issued just now is not renewed');
  await fresh.close();

  const old = signer.sign(a.user, a.session.device, 30 * DAY, now - 2 * DAY); // issued two days ago
  const renewedTokens: string[] = [];
  const d = await f.device(t, { session: { ...a.session, token: old }, phone: a.phone, connect: false });
  d.client.on('token', (tok) => renewedTokens.push(tok));
  const welcome = await d.client.connect();
  t.type(welcome.token, 'string', 'the welcome carries a renewed token');
  t.same(renewedTokens, [welcome.token], 'the SDK says so');
  t.equal(d.client.token, welcome.token, 'and reconnects with it');
  const claims = signer.verify(welcome.token!)!;
  t.match(claims, { u: a.user, d: a.session.device }, 'same user and device');
  t.ok(claims.iat >= now && claims.exp - claims.iat === 30 * DAY, 'issued now, for the configured lifetime');
  t.equal((await me(welcome.token!)).status, 200);

  const expired = signer.sign(a.user, a.session.device, DAY, now - 2 * DAY);
  t.equal((await me(expired)).json.error.code, 'unauthorized', 'an expired token is unauthorized (not signed out)');

  const r = await http(f.url, '/v1/accounts/token', { method: 'POST', headers: auth(a.session.token) });
  t.equal(r.status, 200);
  t.ok(r.json.expiresAt > Date.now() + 29 * DAY, 'expiresAt');
  t.match(signer.verify(r.json.token), { u: a.user, d: a.session.device });

  // Every token of the device dies with it.
  t.same(await d.client.signOut(), { signedOut: [a.session.device] }, 'signed out on the socket that renewed');
  for (const tok of [a.session.token, old, welcome.token!, r.json.token as string]) t.equal((await me(tok)).json.error.code, 'signed_out');
  t.equal((await http(f.url, '/v1/accounts/token', { method: 'POST', headers: auth(r.json.token) })).json.error.code, 'signed_out', 'no renewal either');
  signedOut.push({ user: a.user, device: a.session.device });
});

t.test('the store keeps nothing of a signed-out device: no record (acked, push), no inbox', async (t) => {
  await f.node.stop();
  const store = new LmdbStore(join(f.node.dataDir, 'lmdb'));
  t.teardown(() => store.close());
  t.ok(signedOut.length >= 10, `${signedOut.length} signed-out devices checked`);
  for (const { user, device } of signedOut) {
    t.equal(await store.getDevice(user, device), undefined, `${device}: no record`);
    t.same(await store.inboxRange(deviceKey(user, device), 0, 1000), [], `${device}: no inbox entry`);
    t.equal(await store.inboxLastPtr(deviceKey(user, device)), 0, `${device}: no inbox mark`);
  }
  const ids = new Set(signedOut.map((s) => s.device));
  for (const k of kept.filter((x) => !ids.has(x.device))) {
    t.ok(await store.getDevice(k.user, k.device), `${k.device}: kept`);
    if (k.inbox) t.equal((await store.inboxRange(deviceKey(k.user, k.device), 0, 1000)).length, k.inbox, `${k.device}: its inbox holds what it missed`);
  }
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
