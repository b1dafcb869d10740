import t from 'tap';
import { Packr } from 'msgpackr';
import { Fixture, http } from '../helpers/fixture.js';
import { signIn, texts } from '../helpers/clients.js';
import type { RawSocket } from '../helpers/raw-socket.js';
import { directConversationId } from '../../src/protocol/ids.js';

/**
 * Issue #2 §15: bad input gets an error frame with a stable code (echoing the rid or cid), the socket
 * survives where that is reasonable, and nothing acked is lost.
 */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const errorsOf = (s: RawSocket) => s.frames.filter((x) => x.t === 'error');
/** The error answering the bad input just sent, then a ping to show the socket still works. */
async function expectError(s: RawSocket, send: () => void, code: string, ref: { rid?: string; cid?: string } = {}) {
  const before = errorsOf(s).length;
  send();
  const e = await s.next((x) => x.t === 'error', `error ${code}`, 5000, s.frames.indexOf(errorsOf(s)[before - 1]!) + 1);
  await s.roundTrip();
  return { e, matches: e.code === code && (ref.rid === undefined || e.rid === ref.rid) && (ref.cid === undefined || e.cid === ref.cid) };
}

async function pair(t: tap.Test) {
  const a = await signIn(f.url);
  const b = await signIn(f.url);
  const s = await f.raw(t, a.session.token);
  s.send({ t: 'sync', since: 0 });
  await s.next((x) => x.t === 'synced');
  return { s, a: a.session, b: b.session, conv: directConversationId(a.session.user, b.session.user) };
}

t.test('malformed frames are bad_frame and the socket stays open', async (t) => {
  const { s } = await pair(t);
  for (const [what, data, binary] of [
    ['bytes that are not msgpack', Uint8Array.from([0xc1, 0xc1]), true],
    ['truncated msgpack', Uint8Array.from([0x82, 0xa1, 0x74]), true],
    ['text that is not JSON', '{"t": "ping"', false],
    ['a msgpack number', packr.pack(42), true],
    ['a msgpack list', packr.pack([{ t: 'ping' }]), true],
    ['a JSON string', '"ping"', false],
    ['JSON null', 'null', false],
    ['a map without t', packr.pack({ rid: 'x' }), true],
    ['a map whose t is not a string', packr.pack({ t: 7 }), true],
    ['an empty frame', new Uint8Array(0), true],
  ] as const) {
    const { e, matches } = await expectError(s, () => s.sendRaw(data, binary), 'bad_frame');
    t.ok(matches, `${what}: ${e.code}`);
    t.equal(e.retryable, false);
    t.type(e.message, 'string');
  }
  t.notOk(s.closed, 'still open after all of that');
});

t.test('unknown frame types and message kinds have their own codes and echo the rid or cid', async (t) => {
  const { s, b } = await pair(t);
  let r = await expectError(s, () => s.send({ t: 'warp', rid: 'r-warp' }), 'unknown_type', { rid: 'r-warp' });
  t.ok(r.matches, 'unknown type, rid echoed');
  r = await expectError(s, () => s.send({ t: 'send', cid: 'c-sticker', to: b.user, kind: 'sticker', body: { id: 1 } }), 'unknown_kind', { cid: 'c-sticker' });
  t.ok(r.matches, 'unknown kind, cid echoed');
  r = await expectError(s, () => s.send({ t: 'send', cid: 'c-sys', to: b.user, kind: 'system', body: { event: 'created' } }), 'unknown_kind', { cid: 'c-sys' });
  t.ok(r.matches, 'clients may not write system messages');
  r = await expectError(s, () => s.sendRaw(JSON.stringify({ t: 'nope', rid: 'json-rid' }), false), 'unknown_type', { rid: 'json-rid' });
  t.ok(r.matches, 'the same over JSON');
});

t.test('fields that break their rules are invalid', async (t) => {
  const { s, b, conv } = await pair(t);
  const cases: [string, Record<string, unknown>, { rid?: string; cid?: string }][] = [
    ['send without cid', { t: 'send', to: b.user, kind: 'text', body: { text: 'x' } }, {}],
    ['send with both to and conv', { t: 'send', cid: 'c1', to: b.user, conv, kind: 'text', body: { text: 'x' } }, { cid: 'c1' }],
    ['send with neither', { t: 'send', cid: 'c2', kind: 'text', body: { text: 'x' } }, { cid: 'c2' }],
    ['send to a bad user id', { t: 'send', cid: 'c3', to: 'NOT-AN-ID', kind: 'text', body: { text: 'x' } }, { cid: 'c3' }],
    ['send without body', { t: 'send', cid: 'c4', to: b.user, kind: 'text' }, { cid: 'c4' }],
    ['a body that is a string', { t: 'send', cid: 'c5', to: b.user, kind: 'text', body: 'hello' }, { cid: 'c5' }],
    ['text over 8192 characters', { t: 'send', cid: 'c6', to: b.user, kind: 'text', body: { text: 'x'.repeat(8193) } }, { cid: 'c6' }],
    ['a cid over 64 characters', { t: 'send', cid: 'c'.repeat(65), to: b.user, kind: 'text', body: { text: 'x' } }, {}],
    ['a negative reply', { t: 'send', cid: 'c7', to: b.user, kind: 'text', body: { text: 'x' }, reply: -1 }, { cid: 'c7' }],
    ['a target on a text', { t: 'send', cid: 'c8', to: b.user, kind: 'text', body: { text: 'x' }, target: 1 }, { cid: 'c8' }],
    ['a body nested 33 deep', { t: 'send', cid: 'c9', to: b.user, kind: 'text', body: { text: 'x', n: JSON.parse('['.repeat(32) + ']'.repeat(32)) } }, { cid: 'c9' }],
    ['ack with a negative ptr', { t: 'ack', ptr: -1 }, {}],
    ['sync with a string', { t: 'sync', since: '5' }, {}],
    ['history without rid', { t: 'history', conv }, {}],
    ['history with a bad conv', { t: 'history', rid: 'h1', conv: 'x.y' }, { rid: 'h1' }],
    ['history with a fractional limit', { t: 'history', rid: 'h2', conv, limit: 1.5 }, { rid: 'h2' }],
    ['read of a non-number', { t: 'read', conv, seq: 'all' }, {}],
    ['presence.sub of non-ids', { t: 'presence.sub', users: ['Bob!'] }, {}],
    ['group.create with a 101-character name', { t: 'group.create', rid: 'g1', name: 'n'.repeat(101) }, { rid: 'g1' }],
    ['settings.set with an unknown privacy', { t: 'settings.set', rid: 's1', lastSeen: 'friends' }, { rid: 's1' }],
    ['push.register on an unknown platform', { t: 'push.register', rid: 'p1', platform: 'pager', token: 'x' }, { rid: 'p1' }],
    ['a rid over 64 characters', { t: 'profile.get', rid: 'r'.repeat(65), user: b.user }, {}],
  ];
  for (const [what, frame, ref] of cases) {
    const { e, matches } = await expectError(s, () => s.send(frame), 'invalid', ref);
    t.ok(matches, `${what}: ${e.code} ${e.message}`);
  }
  // Deeper than a msgpack frame may nest at all: refused before it is decoded (test/security/frame-bomb).
  const deep = { t: 'send', cid: 'c10', to: b.user, kind: 'text', body: { text: 'x', n: JSON.parse('['.repeat(1000) + ']'.repeat(1000)) } };
  t.ok((await expectError(s, () => s.send(deep), 'bad_frame')).matches, 'a body nested 1000 deep: bad_frame');
  t.ok(errorsOf(s).some((e) => e.rid === 'r'.repeat(64)), 'an over-long rid is echoed cut to 64 characters');
});

t.test('bodies over the limit are too_large, a frame over the limit closes only that socket', async (t) => {
  const { s, b } = await pair(t);
  let r = await expectError(s, () => s.send({ t: 'send', cid: 'big-bytes', to: b.user, kind: 'text', body: new Uint8Array(32 * 1024 + 1) }), 'too_large', { cid: 'big-bytes' });
  t.ok(r.matches, 'ciphertext one byte over 32 KiB');
  r = await expectError(s, () => s.send({ t: 'send', cid: 'big-map', to: b.user, kind: 'text', body: { text: 'x', pad: 'y'.repeat(40_000) } }), 'too_large', { cid: 'big-map' });
  t.ok(r.matches, 'a plaintext map over 32 KiB in a frame under 64 KiB');
  s.send({ t: 'send', cid: 'fits', to: b.user, kind: 'text', body: new Uint8Array(32 * 1024) });
  t.notOk((await s.next((x) => x.cid === 'fits')).code, 'exactly 32 KiB is fine');

  const other = await pair(t);
  s.sendRaw(new Uint8Array(64 * 1024 + 1));
  const closed = await s.whenClosed();
  t.not(closed.code, 1000, `a frame over 64 KiB: the node closes the socket (${closed.code})`);
  await other.s.roundTrip();
  t.pass('other sockets carry on');
});

t.test('a frame over the limit closes with 1009 as documented', async (t) => {
  const { s } = await pair(t);
  s.sendRaw(new Uint8Array(64 * 1024 + 1));
  t.equal((await s.whenClosed()).code, 1009);
});

t.test('JSON bodies are measured like msgpack ones', async (t) => {
  const a = await signIn(f.url);
  const b = await signIn(f.url);
  const s = await f.raw(t, a.session.token, 'json');
  const body = { text: 'x', pad: Array.from({ length: 4000 }, () => 0.5) }; // ~16 KB as JSON, ~36 KB packed
  s.send({ t: 'send', cid: 'floats', to: b.session.user, kind: 'text', body });
  const answer = await s.next((x) => x.cid === 'floats');
  t.equal(answer.t, 'error', 'the body is refused, not sent');
  t.equal(answer.code, 'too_large');
});

t.test('acting where one may not is forbidden; where it means nothing, it is ignored', async (t) => {
  const { s, a } = await pair(t);
  const x = await signIn(f.url);
  const y = await signIn(f.url);
  const theirs = directConversationId(x.session.user, y.session.user);
  let r = await expectError(s, () => s.send({ t: 'send', cid: 'intrude', conv: theirs, kind: 'text', body: { text: 'hi' } }), 'forbidden', { cid: 'intrude' });
  t.ok(r.matches, 'posting into someone else\'s conversation');
  r = await expectError(s, () => s.send({ t: 'history', rid: 'peek', conv: theirs }), 'forbidden', { rid: 'peek' });
  t.ok(r.matches, 'reading it');
  r = await expectError(s, () => s.send({ t: 'read', conv: theirs, seq: 1 }), 'forbidden');
  t.ok(r.matches, 'marking it read');
  const n = s.frames.length;
  s.send({ t: 'typing', conv: theirs, on: true });
  s.send({ t: 'ack', ptr: 10 ** 9 });
  s.send({ t: 'presence.unsub', users: [x.session.user] });
  // Each entity that took one of them answers a later request of the same socket in a later turn: anything it
  // said about the ignored frame would have come first.
  const refused = await s.request({ t: 'receipts', conv: theirs });
  const mine = await s.request({ t: 'profile.get', user: a.user });
  const xs = await s.request({ t: 'profile.get', user: x.session.user });
  t.same(s.frames.slice(n), [refused, mine, xs], 'typing there, acking ahead and unsubscribing from nothing are ignored');
  t.same([refused, mine, xs].map((r) => r.code ?? r.t), ['forbidden', 'res', 'res']);
});

t.test('a flood is rate limited without closing the socket', async (t) => {
  const { s } = await pair(t);
  for (let i = 0; i < 2000; i++) s.send({ t: 'ping', rid: `flood-${i}` });
  const limited = await s.next((x) => x.t === 'error' && x.code === 'rate_limited', 'rate_limited', 10_000);
  t.equal(limited.retryable, true, 'retryable');
  t.match(limited.rid, /^flood-/, 'the dropped frame is named');
  // Once the bucket refills the same socket is served again.
  for (let i = 0; ; i++) {
    s.send({ t: 'ping', rid: `after-${i}` });
    const answer = await s.next((x) => x.rid === `after-${i}`, 'an answer');
    if (answer.t === 'pong') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.notOk(s.closed, 'never closed');
});

t.test('nothing acked is lost among rejected frames', async (t) => {
  const { s, b, conv } = await pair(t);
  const good: string[] = [];
  for (let i = 0; i < 20; i++) {
    s.sendRaw(Uint8Array.from([0xc1]));
    s.send({ t: 'send', cid: `bad-${i}`, to: b.user, kind: 'text', body: { text: '' } });
    s.send({ t: 'send', cid: `good-${i}`, to: b.user, kind: 'text', body: { text: `good ${i}` } });
    good.push(`good ${i}`);
    s.send({ t: 'send', cid: `huge-${i}`, to: b.user, kind: 'location', body: { lat: 1000, lng: 0 } });
  }
  await s.next((x) => x.t === 'sent' && x.cid === 'good-19');
  const sent = s.frames.filter((x) => x.t === 'sent');
  t.same(sent.map((x) => x.cid), good.map((_, i) => `good-${i}`), 'every good message acked once, in order');
  t.equal(errorsOf(s).length, 60, 'every bad frame answered');
  s.send({ t: 'history', rid: 'all', conv, limit: 500 });
  const h = await s.next((x) => x.rid === 'all');
  t.same(texts(h.data), good, 'and every acked one is stored, nothing else');
  const bob = await f.device(t, { session: b, phone: '' });
  await bob.waitFor(() => bob.messages.length === 20 || undefined, 5000, 'bob\'s inbox');
  t.same(texts(bob.messages), good, 'bob gets exactly the acked ones');
});

t.test('HTTP bodies that are too big or not JSON are refused', async (t) => {
  const big = await http(f.url, '/v1/accounts/code', { method: 'POST', headers: { 'x-api-key': 'parley-dev-key' }, json: { phone: '+15550000000', pad: 'x'.repeat(20_000) } });
  t.equal(big.status, 413);
  t.equal(big.json.error.code, 'too_large');
  const list = await http(f.url, '/v1/accounts/code', { method: 'POST', headers: { 'x-api-key': 'parley-dev-key' }, json: ['+15550000000'] });
  t.equal(list.status, 400);
  t.equal(list.json.error.code, 'bad_frame');
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
