import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { Fixture, http } from '../helpers/fixture.js';
import { texts } from '../helpers/clients.js';
import { uploadMedia } from '../../src/client/accounts-api.js';
import { jsonOf, rawRequest, statusOf } from '../helpers/raw-http.js';
import type { Message } from '../../src/protocol/frames.js';

/** Issue #2 §5: message kinds, media upload and ranged download, replies, edits, deletes and reactions. */

const MAX_MEDIA = 100_000;
let f: Fixture;
t.before(async () => { f = await Fixture.start({ PARLEY_MAX_MEDIA_BYTES: String(MAX_MEDIA) }); });
t.teardown(() => f.destroy());

const upload = (token: string | undefined, body: BodyInit, type?: string, extra: RequestInit = {}) =>
  http(f.url, '/v1/media', {
    method: 'POST', body, ...extra,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(type ? { 'content-type': type } : {}) },
  });
const get = (id: string, token: string, headers: Record<string, string> = {}) =>
  http(f.url, `/v1/media/${id}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

t.test('media uploads are content-addressed and served whole or by range', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const bytes = randomBytes(50_000);
  const up = await upload(alice.session.token, bytes, 'image/png');
  t.equal(up.status, 201);
  t.match(up.json, { id: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, mime: 'image/png', url: new RegExp(`^/v1/media/${up.json.id}\\?u=${alice.user}&exp=\\d+&sig=`) });
  const again = await uploadMedia(f.url, bob.session.token, bytes, 'image/png');
  t.equal(again.id, up.json.id, 'the same bytes have the same id');

  const whole = await get(up.json.id, bob.session.token);
  t.equal(whole.status, 200);
  t.equal(whole.headers.get('content-type'), 'image/png');
  t.equal(whole.headers.get('accept-ranges'), 'bytes');
  t.ok(whole.bytes.equals(bytes), 'the whole file comes back byte for byte');

  const mid = await get(up.json.id, bob.session.token, { range: 'bytes=1000-1999' });
  t.equal(mid.status, 206);
  t.equal(mid.headers.get('content-range'), `bytes 1000-1999/${bytes.length}`);
  t.equal(mid.headers.get('content-length'), '1000');
  t.ok(mid.bytes.equals(bytes.subarray(1000, 2000)), 'the middle range is exactly those bytes');

  const open = await get(up.json.id, bob.session.token, { range: 'bytes=49990-' });
  t.equal(open.status, 206);
  t.equal(open.headers.get('content-range'), `bytes 49990-49999/${bytes.length}`);
  t.ok(open.bytes.equals(bytes.subarray(49_990)));

  const suffix = await get(up.json.id, bob.session.token, { range: 'bytes=-7' });
  t.equal(suffix.status, 206);
  t.equal(suffix.headers.get('content-range'), `bytes 49993-49999/${bytes.length}`);
  t.ok(suffix.bytes.equals(bytes.subarray(-7)));

  const past = await get(up.json.id, bob.session.token, { range: 'bytes=50000-' });
  t.equal(past.status, 416);
  t.equal(past.headers.get('content-range'), `bytes */${bytes.length}`);

  const byQuery = await http(f.url, `/v1/media/${up.json.id}?token=${encodeURIComponent(bob.session.token)}`, { headers: { range: 'bytes=0-0' } });
  t.equal(byQuery.status, 401, 'a session token is never taken from the query');
  const bySignedUrl = await http(f.url, up.json.url, { headers: { range: 'bytes=0-0' } });
  t.equal(bySignedUrl.status, 206, 'the signed URL of the answer works without headers (for <img src>)');
  t.same([...bySignedUrl.bytes], [bytes[0]]);

  t.equal((await http(f.url, `/v1/media/${up.json.id}`)).status, 401, 'downloads need a token');
  t.equal((await get('0'.repeat(64), bob.session.token)).status, 404, 'unknown media');
  t.equal((await get('not-an-id', bob.session.token)).json.error.code, 'not_found');
});

t.test('uploads of other types are 415, over the limit 413, without a token 401', async (t) => {
  const alice = await f.device(t);
  for (const type of ['text/plain', 'application/json', undefined]) {
    const r = await upload(alice.session.token, new Uint8Array(100), type);
    t.equal(r.status, 415, `content-type ${type}`);
    t.equal(r.json.error.code, 'unsupported_media_type');
  }
  const empty = await upload(alice.session.token, new Uint8Array(0), 'image/png');
  t.same([empty.status, empty.json.error.code], [400, 'invalid'], 'an empty upload is refused');
  // Refused from its Content-Length, before the body is read, and the connection closed (a client still
  // sending may then see a reset rather than the answer, so this one sends only the start of its body).
  const over = await rawRequest(f.node.port, 'POST', '/v1/media',
    { authorization: `Bearer ${alice.session.token}`, 'content-type': 'video/mp4', 'content-length': String(MAX_MEDIA + 1) }, 'x'.repeat(1000)).response;
  t.equal(statusOf(over), 413);
  t.equal(jsonOf(over).error.code, 'too_large');
  // Streamed without a length, the limit is enforced as the bytes arrive.
  const stream = new ReadableStream({ start(c) { for (let i = 0; i < 30; i++) c.enqueue(new Uint8Array(10_000)); c.close(); } });
  const streamed = await upload(alice.session.token, stream, 'video/mp4', { duplex: 'half' } as RequestInit);
  t.equal(streamed.status, 413, 'a streamed upload over the limit');
  const atLimit = await upload(alice.session.token, randomBytes(MAX_MEDIA), 'video/mp4');
  t.equal(atLimit.status, 201, 'exactly at the limit is fine');
  const anon = await upload(undefined, new Uint8Array(100), 'image/jpeg');
  t.equal(anon.status, 401);
  t.equal(anon.json.error.code, 'unauthorized');
  const forged = await upload('v1.e30.AAAA', new Uint8Array(100), 'image/jpeg');
  t.equal(forged.status, 401);
});

t.test('text, image, video and location messages arrive with their bodies', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const photo = randomBytes(4000);
  const clip = randomBytes(9000);
  const img = await uploadMedia(f.url, alice.session.token, photo, 'image/jpeg');
  const vid = await uploadMedia(f.url, alice.session.token, clip, 'video/mp4');
  const to = { to: bob.user };
  const bodies = [
    ['text', { text: 'plain words ✓' }],
    ['image', { media: img.id, mime: 'image/jpeg', caption: 'the view' }],
    ['video', { media: vid.id, mime: 'video/mp4' }],
    ['location', { lat: 52.52, lng: 13.405, name: 'Berlin' }],
    ['location', { lat: -90, lng: 180 }],
  ] as const;
  const sent = [];
  for (const [kind, body] of bodies) sent.push(await alice.client.send(to, kind, body));
  await bob.waitFor(() => bob.messages.length === bodies.length || undefined, 5000, 'every kind');
  t.same(bob.messages.map((m) => [m.kind, m.body]), bodies.map(([k, b]) => [k, b]));
  t.same(bob.messages.map((m) => m.seq), sent.map((s) => s.seq));

  // The recipient fetches the media the message names.
  const image = bob.messages[1]!;
  const got = await get((image.body as { media: string }).media, bob.session.token);
  t.ok(got.bytes.equals(photo), 'bob downloads the photo by the id in the message');
  const video = bob.messages[2]!;
  const part = await get((video.body as { media: string }).media, bob.session.token, { range: 'bytes=0-99' });
  t.ok(part.bytes.equals(clip.subarray(0, 100)), 'and streams the start of the video');

  for (const [kind, body, code] of [
    ['image', { caption: 'no media' }, 'invalid'],
    ['video', { media: '' }, 'invalid'],
    ['location', { lat: 91, lng: 0 }, 'invalid'],
    ['location', { lat: 0, lng: -180.5 }, 'invalid'],
    ['location', { lat: '1', lng: 2 }, 'invalid'],
    ['text', { text: '' }, 'invalid'],
    ['text', {}, 'invalid'],
    ['sticker', { id: 1 }, 'unknown_kind'],
    ['system', { event: 'created' }, 'unknown_kind'],
  ] as const) {
    await t.rejects(alice.client.send(to, kind as 'text', body as never), { code }, `${kind} ${JSON.stringify(body)} is ${code}`);
  }
});

t.test('ciphertext bodies (bytes) of any kind pass through unread and intact', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const bobJson = await f.secondDevice(t, bob, { format: 'json' });
  const blobs = [randomBytes(1), randomBytes(1000), randomBytes(30_000)];
  const sent = [];
  for (const [i, b] of blobs.entries()) sent.push(await alice.client.send({ to: bob.user }, i === 1 ? 'image' : 'text', b));
  for (const d of [bob, bobJson]) {
    await d.waitFor(() => d.messages.length === blobs.length || undefined, 5000, 'the encrypted messages');
    t.same(d.messages.map((m) => Buffer.from(m.body as Uint8Array).toString('hex')), blobs.map((b) => b.toString('hex')),
      `byte for byte (${d === bob ? 'msgpack' : 'JSON'} client)`);
  }
  const history = await bob.client.history(sent[0]!.conv);
  t.ok(history.every((m, i) => Buffer.from(m.body as Uint8Array).equals(blobs[i]!)), 'and so in history');
  const back = randomBytes(500);
  const fromJson = await bobJson.client.send({ to: alice.user }, 'text', back);
  const got = await alice.waitMessage((m) => m.seq === fromJson.seq, 'bytes from the JSON client');
  t.ok(got.body instanceof Uint8Array && Buffer.from(got.body).equals(back), 'a JSON client sends bytes too');
  await t.rejects(alice.client.send({ to: bob.user }, 'text', randomBytes(32 * 1024 + 1)), { code: 'too_large' }, 'measured against the body limit');
});

t.test('a reply names the message it answers', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const q = await alice.client.text({ to: bob.user }, 'lunch?');
  const a = await bob.client.send({ to: alice.user }, 'text', { text: 'yes!' }, { reply: q.seq });
  const m = await alice.waitMessage((m) => m.seq === a.seq);
  t.equal(m.reply, q.seq);
  t.same((await alice.client.history(q.conv)).map((m) => m.reply), [undefined, q.seq], 'stored with the reply');
  for (const seq of [0, a.seq + 1, 999]) {
    await t.rejects(bob.client.send({ to: alice.user }, 'text', { text: '?' }, { reply: seq }), { code: 'not_found' }, `no message ${seq} to reply to`);
  }
  t.equal((await alice.client.history(q.conv)).length, 2, 'nothing of those was stored');
});

t.test('edits: the sender edits their own content messages, nobody else\'s', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const to = { to: bob.user };
  const orig = await alice.client.text(to, 'teh typo');
  const bobs = await bob.client.text({ to: alice.user }, 'bob\'s words');
  const edit = await alice.client.send(to, 'edit', { text: 'the typo' }, { target: orig.seq });
  const m = await bob.waitMessage((m) => m.seq === edit.seq, 'the edit');
  t.match(m, { kind: 'edit', target: orig.seq, from: alice.user, body: { text: 'the typo' } });

  await t.rejects(alice.client.send(to, 'edit', { text: 'hijack' }, { target: bobs.seq }), { code: 'forbidden' }, 'not your message');
  await t.rejects(alice.client.send(to, 'edit', { text: '?' }, { target: 999 }), { code: 'not_found' }, 'no such message');
  await t.rejects(alice.client.send(to, 'edit', { text: '?' }, { target: edit.seq }), { code: 'invalid' }, 'an edit is not editable content');
  await t.rejects(alice.client.send(to, 'edit', { text: '?' }), { code: 'invalid' }, 'an edit needs a target');

  const photo = await uploadMedia(f.url, alice.session.token, randomBytes(100), 'image/jpeg');
  const img = await alice.client.send(to, 'image', { media: photo.id, caption: 'old' });
  await alice.client.send(to, 'edit', { text: 'new caption' }, { target: img.seq });
  t.pass('media messages are editable too');
});

t.test('delete for everyone erases the body for good; only the sender may', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const to = { to: bob.user };
  const oops = await alice.client.text(to, 'wrong chat!');
  const keep = await alice.client.text(to, 'this stays');
  await t.rejects(bob.client.send({ to: alice.user }, 'delete', undefined, { target: oops.seq }), { code: 'forbidden' }, 'bob can\'t delete alice\'s message');
  const del = await alice.client.send(to, 'delete', undefined, { target: oops.seq });
  const m = await bob.waitMessage((m) => m.seq === del.seq, 'the delete');
  t.match(m, { kind: 'delete', target: oops.seq, from: alice.user });
  t.notOk('body' in m, 'a delete carries no body');

  const history = await bob.client.history(oops.conv);
  const gone = history.find((m) => m.seq === oops.seq)!;
  t.ok(gone, 'the envelope stays, so seqs have no holes');
  t.notOk('body' in gone, 'the deleted message has no body in history');
  t.equal(gone.kind, 'text');
  t.same(history.find((m) => m.seq === keep.seq)!.body, { text: 'this stays' }, 'other messages are untouched');
  t.same((await alice.client.history(oops.conv)).find((m) => m.seq === oops.seq)!.body, undefined, 'for the sender too');
  await t.rejects(alice.client.send(to, 'delete', undefined, { target: del.seq }), { code: 'invalid' }, 'a delete can\'t be deleted');
});

t.test('a message deleted for everyone can not be edited back to life', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const to = { to: bob.user };
  const m = await alice.client.text(to, 'regret');
  await alice.client.send(to, 'delete', undefined, { target: m.seq });
  await t.rejects(alice.client.send(to, 'edit', { text: 'back again' }, { target: m.seq }), { code: 'not_found' });
});

t.test('reactions target anyone\'s content message', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const msg = await alice.client.text({ to: bob.user }, 'we won!');
  const r = await bob.client.send({ to: alice.user }, 'reaction', { emoji: '🎉' }, { target: msg.seq });
  const got = await alice.waitMessage((m) => m.seq === r.seq, 'the reaction');
  t.match(got, { kind: 'reaction', target: msg.seq, from: bob.user, body: { emoji: '🎉' } });
  const own = await alice.client.send({ to: bob.user }, 'reaction', { emoji: '👍' }, { target: msg.seq });
  t.ok(own.seq > r.seq, 'one may react to one\'s own message');
  await t.rejects(bob.client.send({ to: alice.user }, 'reaction', { emoji: '👎' }, { target: r.seq }), { code: 'invalid' }, 'not to a reaction');
  await t.rejects(bob.client.send({ to: alice.user }, 'reaction', { emoji: 7 } as never, { target: msg.seq }), { code: 'invalid' }, 'an emoji is a string');
  await t.rejects(bob.client.send({ to: alice.user }, 'reaction', { emoji: 'x'.repeat(17) }, { target: msg.seq }), { code: 'invalid' }, 'of at most 16 characters');
  await t.rejects(bob.client.send({ to: alice.user }, 'reaction', { emoji: '👍' }, { target: 4242 }), { code: 'not_found' });
  const back = await bob.client.send({ to: alice.user }, 'reaction', { emoji: '' }, { target: msg.seq });
  const taken = await alice.waitMessage((m) => m.seq === back.seq, 'the reaction taken back');
  t.match(taken, { kind: 'reaction', target: msg.seq, from: bob.user, body: { emoji: '' } }, 'an empty emoji takes the reaction back');
  const kinds = (await alice.client.history(msg.conv)).map((m: Message) => m.kind);
  t.same(kinds, ['text', 'reaction', 'reaction', 'reaction']);
  t.same(texts(bob.messages), ['we won!']);
});
t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
