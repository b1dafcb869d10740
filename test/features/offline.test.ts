import t from 'tap';
import { Fixture, http } from '../helpers/fixture.js';
import { closedSocket, signIn, texts } from '../helpers/clients.js';

/** Issue #2 §8: offline delivery — inbox pointers, resync without gap or duplicate, paging, push notices. */

let f: Fixture;
// Sending a few thousand messages quickly is the point of some tests here: lift the per-socket frame rate.
t.before(async () => { f = await Fixture.start({ PARLEY_RATE_PER_S: '100000', PARLEY_RATE_BURST: '100000' }); });
t.teardown(() => f.destroy());

/** Calls `get` until `ok` holds for its result (for state only visible over HTTP). */
async function poll<T>(get: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const range = (from: number, to: number, p = 'm') => Array.from({ length: to - from + 1 }, (_, i) => `${p}${from + i}`);

t.test('messages for an offline device wait, then come in order after its pointer, then live ones follow', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  await alice.client.text({ to: bob.user }, 'm1');
  await bob.waitMessage((m) => m.seq === 1);
  const saved = bob.client.ptr;
  await bob.close();

  for (let i = 2; i <= 6; i++) await alice.client.text({ to: bob.user }, `m${i}`);
  const back = await f.device(t, { session: bob.session, phone: bob.phone, ptr: saved });
  await back.waitFor(() => back.frames.find((x) => x.t === 'synced'), 5000, 'synced');
  t.same(texts(back.messages), range(2, 6), 'everything after the pointer, in order, nothing before it');
  t.same(back.ptrs, [saved + 1, saved + 2, saved + 3, saved + 4, saved + 5], 'pointers continue from the saved one');
  await alice.client.text({ to: bob.user }, 'live');
  await back.waitMessage((m) => (m.body as { text: string }).text === 'live');
  t.same(texts(back.messages), [...range(2, 6), 'live']);

  // A device that never connected holds everything since it signed in.
  const fresh = await f.secondDevice(t, bob, { connect: false });
  await alice.client.text({ to: bob.user }, 'for the new phone');
  await fresh.client.connect();
  await fresh.waitMessage((m) => (m.body as { text: string }).text === 'for the new phone');
  t.same(texts(fresh.messages), ['for the new phone'], 'a device gets what arrived after it was added');
});

t.test('what was received but never acked is sent again; what was acked is not', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t, { autoAck: false });
  for (let i = 1; i <= 3; i++) await alice.client.text({ to: bob.user }, `m${i}`);
  await bob.waitFor(() => bob.messages.length === 3 || undefined);
  await bob.close();

  const lostState = await f.device(t, { session: bob.session, phone: bob.phone, ptr: 0, autoAck: false });
  await lostState.waitFrame((x) => x.t === 'synced');
  t.same(texts(lostState.messages), range(1, 3), 'unacked: delivered again');
  lostState.client.flushAck();
  await lostState.close();

  const again = await f.device(t, { session: bob.session, phone: bob.phone, ptr: 0 });
  const synced = await again.waitFrame((x) => x.t === 'synced');
  t.same(again.messages, [], 'acked: gone from the inbox');
  t.match(synced, { ptr: 3 });
  t.match(again.frames.find((x) => x.t === 'welcome'), { acked: 3 }, 'the welcome says how far this device acked');
});

t.test('a client that loses its socket mid-stream resumes from its pointer: no gap, no duplicate', async (t) => {
  const N = 400;
  const alice = await f.device(t);
  const bob = await f.device(t);
  // Ten at a time, and the network drops (no close handshake) as the quarter mark arrives: at most ten more are
  // on their way then, so the socket goes mid-stream however fast the stream flows.
  const cut = bob.client.on('message', () => { if (bob.messages.length >= N / 4) { cut(); bob.sockets.at(-1)!.terminate(); } });
  const stream = (async () => {
    for (let i = 0; i < N; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => alice.client.text({ to: bob.user }, `m${i + j + 1}`)));
  })();
  await closedSocket(bob.sockets.at(-1)!);
  const saved = bob.client.ptr;
  const firstPart = texts(bob.messages);
  t.ok(firstPart.length < N, 'the socket went away mid-stream');

  const resumed = await f.device(t, { session: bob.session, phone: bob.phone, ptr: saved });
  await stream;
  await resumed.waitFor(() => firstPart.length + resumed.messages.length >= N || undefined, 10_000, 'the rest of the stream');
  await alice.client.text({ to: bob.user }, 'after');
  await resumed.waitMessage((m) => (m.body as { text: string }).text === 'after');
  t.same([...firstPart, ...texts(resumed.messages)], [...range(1, N), 'after'], 'every message once, in order');
  t.ok(resumed.ptrs.every((p, i) => p === saved + 1 + i), 'pointers continue without a hole');
});

t.test('the SDK reconnects by itself after a drop and resumes without gap or duplicate', async (t) => {
  const N = 300;
  const alice = await f.device(t);
  const bob = await f.device(t, { reconnect: true });
  const stream = Promise.all(Array.from({ length: N }, (_, i) => alice.client.text({ to: bob.user }, `m${i + 1}`)));
  await bob.waitFor(() => bob.messages.length >= N / 3 || undefined, 10_000, 'a third of the stream');
  bob.sockets[0]!.terminate();
  await stream;
  await bob.waitFor(() => bob.sockets.length >= 2 || undefined, 10_000, 'a new socket');
  await bob.waitFor(() => bob.messages.length >= N || undefined, 10_000, 'the whole stream');
  await alice.client.text({ to: bob.user }, 'after');
  await bob.waitMessage((m) => (m.body as { text: string }).text === 'after');
  t.same(texts(bob.messages), [...range(1, N), 'after'], 'every message once, in order');
  t.equal(bob.closes[0]!.code, 1006, 'the first socket was dropped');
});

t.test('a long backlog is synced in pages of 1,000 with `more`', async (t) => {
  const N = 1234;
  const alice = await f.device(t);
  const bob = await signIn(f.url);
  const bobSdk = await f.device(t, { session: (await signIn(f.url, bob.phone)).session, phone: bob.phone, connect: false });
  const sends = await Promise.all(Array.from({ length: N }, (_, i) => alice.client.text({ to: bob.session.user }, `m${i + 1}`)));
  t.equal(sends.at(-1)!.seq, N);

  // By hand: a page, `more`, ack and sync again from the pointer held.
  const raw = await f.raw(t, bob.session.token);
  raw.send({ t: 'sync', since: 0 });
  const first = await raw.next((x) => x.t === 'synced', 'the first page', 10_000);
  t.same(first, { t: 'synced', ptr: 1000, more: true });
  const page1 = raw.frames.filter((x) => x.t === 'msg');
  t.equal(page1.length, 1000);
  t.same(page1.map((x) => x.ptr), Array.from({ length: 1000 }, (_, i) => i + 1));
  raw.send({ t: 'ack', ptr: first.ptr });
  raw.send({ t: 'sync', since: first.ptr });
  const second = await raw.next((x) => x.t === 'synced' && x.ptr > 1000, 'the second page', 10_000);
  t.same(second, { t: 'synced', ptr: N }, 'the last page has no `more`');
  const all = raw.frames.filter((x) => x.t === 'msg');
  t.same(all.map((x) => x.m.body.text), range(1, N), 'both pages together: everything once, in order');
  // Live traffic follows the last page.
  await alice.client.text({ to: bob.session.user }, 'live');
  await raw.next((x) => x.t === 'msg' && x.m.body.text === 'live', 'live message');

  // The SDK pages by itself.
  await bobSdk.client.connect();
  await bobSdk.waitFor(() => bobSdk.messages.length >= N + 1 || undefined, 20_000, 'the whole backlog');
  t.same(texts(bobSdk.messages), [...range(1, N), 'live']);
  t.equal(bobSdk.frames.filter((x) => x.t === 'synced').length, 1, 'the SDK reports synced once, after the last page');
});

t.test('a device with push registered gets a push notice (envelope only) while offline', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const bobTablet = await f.secondDevice(t, bob); // registers no push
  t.same(await bob.client.registerPush('fcm', 'fcm-token-123'), { registered: true });
  const notices = async () => (await http(f.url, '/v1/dev/push', { headers: { authorization: `Bearer ${bob.session.token}` } })).json.notices as Record<string, unknown>[];

  const online = await alice.client.text({ to: bob.user }, 'while online');
  await bob.waitMessage((m) => m.seq === online.seq);
  await bobTablet.waitMessage((m) => m.seq === online.seq);
  t.same(await notices(), [], 'no push while a device is online');

  await bob.close();
  await bobTablet.close();
  const offline = await alice.client.text({ to: bob.user }, 'secret words');
  const list = await poll(notices, (n) => n.length > 0, 'a push notice');
  t.equal(list.length, 1, 'one notification, for the registered device only');
  t.match(list[0], {
    user: bob.user, device: bob.session.device, platform: 'fcm', token: 'fcm-token-123',
    conv: offline.conv, seq: offline.seq, count: 1, type: 'alert', body: /^New message/,
  }, 'the envelope and who wrote, no body (previews are off by default)');
  t.notOk(JSON.stringify(list).includes('secret words'), 'the body never goes to the push provider');
  t.equal((await http(f.url, '/v1/dev/push')).status, 401, 'notices are for their owner');
  const aliceSees = (await http(f.url, '/v1/dev/push', { headers: { authorization: `Bearer ${alice.session.token}` } })).json.notices;
  t.same(aliceSees, [], 'alice sees none of bob\'s');

  // The app wakes up and syncs.
  const woke = await f.device(t, { session: bob.session, phone: bob.phone, ptr: bob.client.ptr });
  await woke.waitFrame((x) => x.t === 'synced');
  t.same(texts(woke.messages), ['secret words']);
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
