import t from 'tap';
import WebSocket from 'ws';
import { Fixture, http } from '../helpers/fixture.js';
import { signIn, texts } from '../helpers/clients.js';
import { RawSocket } from '../helpers/raw-socket.js';
import { directConversationId } from '../../src/protocol/ids.js';

/** Issue #2 §2: health, the authenticated upgrade, both wire formats, ping, several devices per user. */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

/** Tries a WebSocket upgrade and reports the HTTP answer when it is refused. */
function upgrade(path: string, headers: Record<string, string> = {}): Promise<{ opened: boolean; status?: number; body?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${f.url.replace(/^http/, 'ws')}${path}`, { headers });
    ws.on('open', () => { ws.close(); resolve({ opened: true }); });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ opened: false, status: res.statusCode, body }));
    });
    ws.on('error', () => undefined);
  });
}

t.test('GET /healthz answers ok with the node id; unknown routes are 404', async (t) => {
  const r = await http(f.url, '/healthz');
  t.equal(r.status, 200);
  t.equal(r.json.ok, true);
  t.match(r.json.node, /^n[a-z2-7]+$/);
  const missing = await http(f.url, '/v1/nothing-here');
  t.equal(missing.status, 404);
  t.equal(missing.json.error.code, 'not_found');
});

t.test('the upgrade refuses a missing, bad or signed-by-someone-else token with HTTP 401', async (t) => {
  const { session } = await signIn(f.url);
  const [v, body] = session.token.split('.');
  for (const [what, path] of [
    ['no token', '/v1/ws'],
    ['garbage', '/v1/ws?token=garbage'],
    ['bad signature', `/v1/ws?token=${v}.${body}.AAAA`],
  ] as const) {
    const r = await upgrade(path);
    t.equal(r.opened, false, `${what}: not upgraded`);
    t.equal(r.status, 401, `${what}: 401`);
    t.equal(JSON.parse(r.body!).error.code, 'unauthorized');
  }
  t.same(await upgrade('/v1/ws', { authorization: `Bearer ${session.token}` }), { opened: true }, 'a Bearer header works as well as ?token=');
  t.same(await upgrade(`/v1/ws?token=${encodeURIComponent(session.token)}`), { opened: true });
});

t.test('msgpack clients get binary frames, JSON clients text frames, and they talk to each other', async (t) => {
  const a = await signIn(f.url);
  const b = await signIn(f.url);
  const mp = await f.raw(t, a.session.token, 'msgpack');
  const js = await f.raw(t, b.session.token, 'json');
  t.same(mp.binary, [true], 'the welcome is a binary frame');
  t.same(js.binary, [false], 'the welcome is a text frame');
  t.match(js.frames[0], { t: 'welcome', user: b.session.user, device: b.session.device, acked: 0, limits: { maxFrameBytes: Number } });
  mp.send({ t: 'sync', since: 0 });
  js.send({ t: 'sync', since: 0 });
  await mp.next((x) => x.t === 'synced');
  await js.next((x) => x.t === 'synced');

  const conv = directConversationId(a.session.user, b.session.user);
  mp.send({ t: 'send', cid: 'from-msgpack', to: b.session.user, kind: 'text', body: { text: 'hello json' } });
  const sent = await mp.next((x) => x.t === 'sent' && x.cid === 'from-msgpack');
  t.equal(sent.conv, conv);
  const got = await js.next((x) => x.t === 'msg' && x.m.cid === 'from-msgpack');
  t.match(got.m, { conv, seq: sent.seq, from: a.session.user, kind: 'text', body: { text: 'hello json' } });

  // Bytes (a ciphertext body) cross formats: JSON carries them as {"$bin": base64}.
  const secret = Buffer.from([0, 1, 2, 250, 255]);
  js.sendRaw(JSON.stringify({ t: 'send', cid: 'from-json', conv, kind: 'text', body: { $bin: secret.toString('base64') } }));
  const sent2 = await js.next((x) => x.t === 'sent' && x.cid === 'from-json');
  t.equal(sent2.seq, sent.seq + 1);
  const got2 = await mp.next((x) => x.t === 'msg' && x.m.cid === 'from-json');
  t.ok(got2.m.body instanceof Uint8Array, 'msgpack side gets bytes');
  t.same(Buffer.from(got2.m.body), secret);
  js.send({ t: 'history', rid: 'h', conv });
  const hist = await js.next((x) => x.t === 'res' && x.rid === 'h');
  t.same(Buffer.from(hist.data[1].body.$bin, 'base64'), secret, 'JSON side reads the bytes back as $bin');

  t.ok(js.binary.every((b) => b === false), 'every frame to the JSON client was text');
  t.ok(mp.binary.every((b) => b === true), 'every frame to the msgpack client was binary');
});

t.test('ping is answered with pong, echoing the rid', async (t) => {
  const { session } = await signIn(f.url);
  for (const format of ['msgpack', 'json'] as const) {
    const s = await f.raw(t, session.token, format);
    s.send({ t: 'ping', rid: `p-${format}` });
    const pong = await s.next((x) => x.t === 'pong');
    t.equal(pong.rid, `p-${format}`);
    t.type(pong.time, 'number');
    s.send({ t: 'ping' });
    const bare = await s.next((x) => x.t === 'pong' && x.rid === undefined, 'pong without rid');
    t.notOk('rid' in bare);
  }
  const dev = await f.device(t);
  t.match(await dev.client.ping(), { t: 'pong' }, 'the SDK pings too');
});

t.test('two devices of one user online at once both receive a message; the sender\'s other device gets its own', async (t) => {
  const alice = await f.device(t);
  const alice2 = await f.secondDevice(t, alice);
  const bob = await f.device(t);
  const bob2 = await f.secondDevice(t, bob);
  t.equal(bob2.user, bob.user);
  t.not(bob2.client.device, bob.client.device);

  const sent = await alice.client.text({ to: bob.user }, 'to both phones');
  for (const d of [bob, bob2, alice2]) {
    const m = await d.waitMessage((m) => m.seq === sent.seq, 'the message');
    t.equal(m.from, alice.user);
    t.same(m.body, { text: 'to both phones' });
  }
  // The sending device is not sent its own message: a later one from bob is the first it gets.
  await bob2.client.text({ to: alice.user }, 'reply');
  await alice.waitMessage((m) => m.from === bob.user, 'bob\'s reply');
  t.same(texts(alice.messages), ['reply'], 'the sending device only got the reply');
  t.same(texts(alice2.messages), ['to both phones', 'reply']);
  t.same(texts(bob.messages), ['to both phones', 'reply'], 'bob\'s other device gets what bob2 sent');
});

t.test('a device signed in while the user\'s only other one is online gets what that one sends from then on', async (t) => {
  const alice = await f.device(t); // her only device: its messages skip her own user entity
  const bob = await f.device(t);
  await alice.client.text({ to: bob.user }, 'before the laptop');
  const laptop = await f.secondDevice(t, alice, { connect: false });
  const after = await alice.client.text({ to: bob.user }, 'after the laptop');
  await laptop.client.connect();
  await laptop.waitMessage((m) => m.seq === after.seq, 'the message sent after it signed in');
  t.same(texts(laptop.messages), ['after the laptop']);
});

t.test('the same device connecting again replaces its older socket (close 4001)', async (t) => {
  const { session } = await signIn(f.url);
  const first = await f.raw(t, session.token);
  const second = await f.raw(t, session.token);
  const closed = await first.whenClosed();
  t.equal(closed.code, 4001);
  second.send({ t: 'sync', since: 0 });
  await second.next((x) => x.t === 'synced');
  await second.roundTrip();
  t.pass('the newer socket keeps working');
});

t.test('a node at its connection limit refuses upgrades with 503 over_capacity', async (t) => {
  const small = await Fixture.start({ PARLEY_MAX_CONNECTIONS: '2' });
  t.teardown(() => small.destroy());
  const { session } = await signIn(small.url);
  const a = await small.raw(t, session.token);
  const other = await signIn(small.url);
  await small.raw(t, other.session.token);
  const third = await signIn(small.url);
  const url = `${small.url.replace(/^http/, 'ws')}/v1/ws?token=${encodeURIComponent(third.session.token)}`;
  const refused = await new Promise<{ status?: number; retryAfter?: string; body: string }>((resolve) => {
    const ws = new WebSocket(url);
    ws.on('open', () => { ws.close(); resolve({ body: 'opened' }); });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] as string, body }));
    });
    ws.on('error', () => undefined);
  });
  t.equal(refused.status, 503);
  t.equal(JSON.parse(refused.body).error.code, 'over_capacity');
  t.equal(JSON.parse(refused.body).error.retryable, true);
  t.ok(refused.retryAfter, 'with Retry-After');
  await a.roundTrip();
  t.pass('the connected sockets are unaffected');
  await a.close();
  const s = await RawSocket.open(small.url, third.session.token);
  t.pass('a slot freed up is usable again');
  await s.close();
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
