import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { Fixture, http } from '../helpers/fixture.js';
import { texts } from '../helpers/clients.js';
import { downloadMedia, mediaUrl, uploadMedia } from '../../src/client/accounts-api.js';
import { jsonOf, rawRequest, statusOf, within, type RawRequest } from '../helpers/raw-http.js';
import type { TapTest } from '../store/conformance.js';

/**
 * Security issue #10, media: only those who may see a media fetch it; session tokens never ride in URLs
 * (short-lived signed URLs do); media responses can't be turned into pages; uploads are authenticated
 * before any body byte is read and bounded in time, per user and per node. The same cases run on the
 * embedded store (media.test.ts, blobs on disk) and on the Scylla store (test/scylla/media-security.test.ts,
 * blobs in the database): `leftovers` counts what uploads under way (or cut off) hold there — temp files,
 * or uploads whose chunks no blob row names.
 */

/** The largest Content-Length uWebSockets parses (it closes the connection on a longer one, unanswered). */
const HUGE = 999_999_999;
export const GRACE_MS = 1000;
const MIN_BPS = 50_000;
/** The node's settings these cases expect. */
const MAX_BYTES = 8 * 1024 * 1024;
export const MEDIA_CASES_ENV: Record<string, string> = {
  PARLEY_MAX_MEDIA_BYTES: String(MAX_BYTES),
  PARLEY_MEDIA_UPLOAD_GRACE_MS: String(GRACE_MS),
  PARLEY_MEDIA_UPLOAD_MIN_BPS: String(MIN_BPS),
  PARLEY_MEDIA_UPLOADS_PER_USER: '2',
  PARLEY_MEDIA_UPLOADS_MAX: '4',
};

export function mediaCases(t: TapTest, node: () => Fixture, leftovers: () => Promise<number>): void {
  let f: Fixture;
  t.before(() => { f = node(); });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const get = (id: string, token: string) => http(f.url, `/v1/media/${id}`, { headers: bearer(token) });
  const fds = () => readdirSync(`/proc/${f.node.proc.pid}/fd`).length;
  async function gauge(name: string): Promise<number> {
    const text = (await http(f.url, '/metrics')).bytes.toString();
    return Number(new RegExp(`^parley_${name} (\\d+)$`, 'm').exec(text)![1]);
  }

  const rawUpload = (head: Record<string, string>, body = ''): RawRequest => rawRequest(f.node.port, 'POST', '/v1/media', head, body);

  /** Writes `bytes` every `everyMs` until the socket closes; returns a stop function. */
  function trickle(s: Socket, bytes: number, everyMs: number): () => void {
    const chunk = Buffer.alloc(bytes, 7);
    const timer = setInterval(() => { if (!s.destroyed && s.writable) s.write(chunk); }, everyMs);
    s.on('close', () => clearInterval(timer));
    return () => clearInterval(timer);
  }

  t.test('a 1:1 chat: the uploader and the other user fetch it; a stranger with the id gets 404, as for an id nobody uploaded', async (t) => {
    const alice = await f.device(t);
    const bob = await f.device(t);
    const carol = await f.device(t);
    const photo = randomBytes(3000);
    const up = await uploadMedia(f.url, alice.session.token, photo, 'image/jpeg');
    t.ok(Buffer.from(await downloadMedia(f.url, alice.session.token, up.id)).equals(photo), 'the uploader gets it at once');
    t.equal((await get(up.id, bob.session.token)).status, 404, 'bob, before it was sent to him');

    const sent = await alice.client.send({ to: bob.user }, 'image', { media: up.id });
    await bob.waitMessage((m) => m.seq === sent.seq);
    t.ok((await get(up.id, bob.session.token)).bytes.equals(photo), 'bob, once a message to him names it');

    const stranger = await get(up.id, carol.session.token);
    const nobody = await get(randomBytes(32).toString('hex'), carol.session.token);
    t.equal(stranger.status, 404, 'carol knows the id but is in no conversation that names it');
    t.same(stranger.json, nobody.json, 'the same answer as for media that does not exist: nothing is confirmed');
    t.equal((await http(f.url, `/v1/media/${up.id}/url`, { headers: bearer(carol.session.token) })).status, 404, 'nor does she get a signed URL');

    // Having the bytes, she may upload them: she then holds her own copy, and the answer is the same as for new bytes.
    const hers = await uploadMedia(f.url, carol.session.token, photo, 'image/jpeg');
    const fresh = await uploadMedia(f.url, carol.session.token, randomBytes(3000), 'image/jpeg');
    t.same(Object.keys(hers).sort(), Object.keys(fresh).sort(), 'an upload of known bytes looks like any other');
    t.equal(hers.id, up.id);
    t.equal((await get(up.id, carol.session.token)).status, 200, 'she fetches what she uploaded');
  });

  t.test('a group: members fetch; one removed no longer does; one added later only media sent after it joined', async (t) => {
    const [alice, bob, eve, dave] = await Promise.all([f.device(t), f.device(t), f.device(t), f.device(t)]);
    const g = await alice.client.createGroup('photos', [bob.user, eve.user]);
    const photo = randomBytes(2000);
    const up = await uploadMedia(f.url, alice.session.token, photo, 'image/png');
    const first = await alice.client.send({ conv: g.conv }, 'image', { media: up.id });
    await Promise.all([bob, eve].map((d) => d.waitMessage((m) => m.conv === g.conv && m.seq === first.seq)));
    t.equal((await get(up.id, bob.session.token)).status, 200, 'a member');
    t.equal((await get(up.id, eve.session.token)).status, 200, 'another member');

    await alice.client.addMembers(g.id, [dave.user]);
    t.equal((await get(up.id, dave.session.token)).status, 404, 'a member added later does not see media from before it joined (like its history)');
    const again = await alice.client.send({ conv: g.conv }, 'image', { media: up.id, caption: 'for dave' });
    await dave.waitMessage((m) => m.conv === g.conv && m.seq === again.seq);
    t.ok((await get(up.id, dave.session.token)).bytes.equals(photo), 'once a message it can see names it, it does');

    await alice.client.removeMembers(g.id, [eve.user]);
    t.equal((await get(up.id, eve.session.token)).status, 404, 'a removed member no longer does');
    t.equal((await get(up.id, bob.session.token)).status, 200, 'the others still do');
  });

  t.test('a message may name only media its sender may fetch', async (t) => {
    const [alice, bob, carol, dave] = await Promise.all([f.device(t), f.device(t), f.device(t), f.device(t)]);
    const up = await uploadMedia(f.url, alice.session.token, randomBytes(1000), 'image/jpeg');
    await alice.client.send({ to: bob.user }, 'image', { media: up.id });

    // carol learned the id; naming it in a message to an accomplice would make it theirs to read.
    await t.rejects(carol.client.send({ to: dave.user }, 'image', { media: up.id }), { code: 'not_found' }, 'someone else\'s media');
    await t.rejects(carol.client.send({ to: dave.user }, 'video', { media: randomBytes(32).toString('hex') }), { code: 'not_found' }, 'media nobody uploaded');
    const after = await carol.client.text({ to: dave.user }, 'only this');
    const m = await dave.waitMessage(() => true, 'carol\'s first message');
    t.same([m.seq, m.kind], [after.seq, 'text'], 'nothing of the refused sends reached dave (his first message is the one after)');
    t.equal(after.seq, 1, 'nor was any stored');
    t.equal((await get(up.id, dave.session.token)).status, 404, 'and dave can\'t fetch it');
    t.equal((await get(up.id, carol.session.token)).status, 404, 'nor carol');

    // bob may see it, so bob may forward it; sends keep their order behind the check.
    const fwd = bob.client.send({ to: carol.user }, 'image', { media: up.id, caption: 'look' });
    const txt = bob.client.text({ to: carol.user }, 'right after');
    const [a, b] = await Promise.all([fwd, txt]);
    t.ok(a.seq < b.seq, 'a text sent right after a media message keeps its place');
    await carol.waitFor(() => carol.messages.length === 2 || undefined, 5000, 'both');
    t.same(carol.messages.map((x) => x.kind), ['image', 'text']);
    t.equal((await get(up.id, carol.session.token)).status, 200, 'forwarded to carol, she fetches it');

    // A profile picture is anyone's to see: it must be the user's to share, and then it is public.
    await t.rejects(dave.client.setProfile({ avatar: up.id }), { code: 'invalid' }, 'not dave\'s to make public');
    const pic = await uploadMedia(f.url, dave.session.token, randomBytes(500), 'image/webp');
    t.equal((await get(pic.id, alice.session.token)).status, 404, 'dave\'s upload is his alone');
    await dave.client.setProfile({ avatar: pic.id });
    t.equal((await get(pic.id, alice.session.token)).status, 200, 'as his profile picture anyone signed in fetches it');
    t.same(texts(await dave.client.history(after.conv)), ['only this']);
  });

  t.test('tokens in URLs: never the session token; a signed URL for one media, one user, a few minutes', async (t) => {
    const alice = await f.device(t);
    const bob = await f.device(t);
    const bytes = randomBytes(4000);
    const up = await uploadMedia(f.url, alice.session.token, bytes, 'image/gif');
    const other = await uploadMedia(f.url, alice.session.token, randomBytes(10), 'image/gif');
    await alice.client.send({ to: bob.user }, 'image', { media: up.id });
    await alice.client.send({ to: bob.user }, 'image', { media: other.id });

    const byToken = await http(f.url, `/v1/media/${up.id}?token=${encodeURIComponent(bob.session.token)}`);
    t.same([byToken.status, byToken.json.error.code], [401, 'unauthorized'], 'the session token in the query is refused');
    t.match(byToken.json.error.message, /Authorization: Bearer|signed URL/);
    t.equal((await http(f.url, `/v1/media/${up.id}?token=${bob.session.token}`, { headers: bearer(bob.session.token) })).status, 401,
      'even beside a good header: a URL carrying it is refused, so clients stop putting it there');

    t.ok((await http(f.url, up.url)).bytes.equals(bytes), 'the upload answer\'s URL works without headers');
    const signed = await mediaUrl(f.url, bob.session.token, up.id);
    t.ok(signed.expiresAt > Date.now() && signed.expiresAt <= Date.now() + 5 * 60_000, 'good for a few minutes');
    const got = await http(f.url, signed.url, { headers: { range: 'bytes=10-19' } });
    t.same([got.status, [...got.bytes]], [206, [...bytes.subarray(10, 20)]], 'bob\'s signed URL, with a range (video seeking)');

    const u = new URL(signed.url, f.url);
    t.equal((await http(f.url, `/v1/media/${other.id}${u.search}`)).status, 401, 'only for the media it names (bob may see the other one too)');
    const swap = (k: string, v: string) => { const c = new URL(u); c.searchParams.set(k, v); return `${c.pathname}${c.search}`; };
    t.equal((await http(f.url, swap('exp', String(signed.expiresAt + 3_600_000)))).status, 401, 'its expiry can\'t be stretched');
    t.equal((await http(f.url, swap('u', alice.user))).status, 401, 'nor its user changed');
    t.equal((await http(f.url, swap('exp', String(Date.now() - 1)))).status, 401, 'an expired one (whatever its signature)');
    t.equal((await http(f.url, `/v1/media/${up.id}/url`)).status, 401, 'a signed URL is asked for with the session token');
    t.equal((await http(f.url, `/v1/media/${up.id}/url?token=${bob.session.token}`)).status, 401, 'in its header, never in the URL');
  });

  t.test('media responses: no sniffing, a sandbox, a file name made from the id', async (t) => {
    const alice = await f.device(t);
    // HTML labelled as a picture: served, but never as a page.
    const html = Buffer.from('<html><script>alert(document.cookie)</script></html>');
    const pic = await uploadMedia(f.url, alice.session.token, html, 'image/png');
    const r = await get(pic.id, alice.session.token);
    t.equal(r.headers.get('content-type'), 'image/png');
    t.equal(r.headers.get('x-content-type-options'), 'nosniff');
    t.equal(r.headers.get('content-security-policy'), "default-src 'none'; sandbox");
    t.equal(r.headers.get('content-disposition'), `inline; filename="${pic.id}.png"`);
    const blob = await uploadMedia(f.url, alice.session.token, randomBytes(64), 'application/octet-stream');
    const b = await get(blob.id, alice.session.token);
    t.equal(b.headers.get('content-disposition'), `attachment; filename="${blob.id}.bin"`, 'anything but pictures and video downloads');
    t.equal(b.headers.get('x-content-type-options'), 'nosniff');
  });

  t.test('an upload is refused from its headers, before any body byte is read: no token, a bad one, a wrong type, too large', async (t) => {
    const alice = await f.device(t);
    const huge = String(HUGE);
    for (const [what, head, status, code] of [
      ['no token', { 'content-type': 'image/png', 'content-length': huge }, 401, 'unauthorized'],
      ['a forged token', { 'content-type': 'image/png', 'content-length': huge, authorization: 'Bearer v1.e30.AAAA' }, 401, 'unauthorized'],
      ['a wrong type', { 'content-type': 'text/html', 'content-length': huge, ...bearer(alice.session.token) }, 415, 'unsupported_media_type'],
      ['over the size limit', { 'content-type': 'image/png', 'content-length': huge, ...bearer(alice.session.token) }, 413, 'too_large'],
    ] as const) {
      const up = rawUpload(head);
      // No body byte is ever sent: a server that waited for the body would never answer.
      const response = await within(3000, up.response);
      t.same([statusOf(response), jsonOf(response).error.code], [status, code], `${what}: ${status} at once`);
      await up.closed;
      t.pass(`${what}: the connection is closed, so the rest of the body is never read`);
    }
    t.equal(await leftovers(), 0, 'no temp file (or chunk) was made');
  });

  t.test('a chunked upload: stored under its hash; past the limit it is answered 413 once its body ends, and nothing is kept', async (t) => {
    const alice = await f.device(t);
    const chunked = (parts: Buffer[]) => {
      const up = rawUpload({ 'content-type': 'image/png', 'transfer-encoding': 'chunked', ...bearer(alice.session.token) });
      for (const p of parts) up.socket.write(Buffer.concat([Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]));
      up.socket.write('0\r\n\r\n');
      return up;
    };
    const bytes = randomBytes(700_000);
    const ok = await within(10_000, chunked([bytes.subarray(0, 300_000), bytes.subarray(300_000)]).response);
    t.equal(statusOf(ok), 201);
    const id = JSON.parse(ok.slice(ok.indexOf('\r\n\r\n') + 4)).id as string;
    t.ok((await get(id, alice.session.token)).bytes.equals(bytes), 'read back whole');
    // The limit and half a MiB more, in 64 KiB pieces: the node reads on (and drops) up to 1 MiB past it.
    const big = Array.from({ length: (MAX_BYTES + 512 * 1024) / 65_536 }, () => randomBytes(65_536));
    const over = await within(20_000, chunked(big).response);
    t.same([statusOf(over), jsonOf(over).error.code], [413, 'too_large'], 'too large, answered when the body ends');
    t.equal(await eventually(leftovers, 0), 0, 'nothing of it is kept');
  });

  t.test('a slow upload is cut off once behind the minimum rate, and its temp file removed', async (t) => {
    const alice = await f.device(t);
    const started = Date.now();
    const up = rawUpload({ 'content-type': 'video/mp4', 'content-length': String(1024 * 1024), ...bearer(alice.session.token) }, 'x'.repeat(100));
    trickle(up.socket, 100, 100); // 1 KB/s against a minimum of 50 KB/s
    await waitForGauge(1);
    const response = await up.response;
    const took = up.answeredAt()! - started;
    t.same([statusOf(response), jsonOf(response).error.code], [408, 'request_timeout']);
    t.ok(took >= GRACE_MS && took < GRACE_MS + 3000, `cut after the ${GRACE_MS} ms grace period (${took} ms)`);
    await up.closed;
    t.equal(await eventually(leftovers, 0), 0, 'what it wrote is gone');
    t.equal(await gauge('uploads_in_flight'), 0, 'and its slot given back');
  });

  t.test('uploads in flight are bounded per user and per node; an abandoned one leaves nothing behind', async (t) => {
    const [alice, bob, carol] = await Promise.all([f.device(t), f.device(t), f.device(t)]);
    const head = (token: string) => ({ 'content-type': 'video/mp4', 'content-length': String(MAX_BYTES), ...bearer(token) });
    const open: RawRequest[] = [];
    t.teardown(() => { for (const u of open) u.socket.destroy(); });
    const start = async (token: string) => {
      const u = rawUpload(head(token));
      trickle(u.socket, 64 * 1024, 100); // 640 KB/s: well above the minimum rate, never cut
      open.push(u);
      return u;
    };
    await start(alice.session.token);
    await start(alice.session.token);
    await waitForGauge(2);
    const third = rawUpload(head(alice.session.token));
    const r3 = await third.response;
    t.same([statusOf(r3), jsonOf(r3).error.code], [429, 'rate_limited'], 'a third upload of alice\'s, at once');
    t.match(r3, /\r\nretry-after: 1\r\n/i, 'with Retry-After');

    await start(bob.session.token);
    await start(bob.session.token);
    await waitForGauge(4);
    const full = rawUpload(head(carol.session.token));
    const r5 = await full.response;
    t.same([statusOf(r5), jsonOf(r5).error.code], [503, 'over_capacity'], 'the node\'s cap (4 here): carol waits her turn');
    t.equal(await eventually(leftovers, 4), 4, 'one temp file (or chunks) per upload in flight, none for the refused');

    // The clients give up: every slot and temp file goes with them.
    for (const u of open) u.socket.destroy();
    await waitForGauge(0);
    t.equal(await eventually(leftovers, 0), 0, 'the temp files (or chunks) removed');
    const ok = await uploadMedia(f.url, carol.session.token, randomBytes(1000), 'video/mp4');
    t.equal(ok.size, 1000, 'and carol\'s upload goes through');
  });

  async function waitForGauge(n: number): Promise<void> {
    const until = Date.now() + 5000;
    while ((await gauge('uploads_in_flight')) !== n) {
      if (Date.now() > until) throw new Error(`uploads_in_flight never reached ${n}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  t.test('300 slow unauthenticated uploads hold no file descriptors and no temp files', async (t) => {
    const before = fds();
    const uploads = Array.from({ length: 300 }, () => rawUpload({ 'content-type': 'video/mp4', 'content-length': String(HUGE) }, 'x'));
    for (const u of uploads) trickle(u.socket, 1, 200);
    const answers = await within(10_000, Promise.all(uploads.map((u) => u.response)));
    t.same(new Set(answers.map(statusOf)), new Set([401]), 'each is answered 401 from its headers');
    await Promise.all(uploads.map((u) => u.closed));
    t.pass('and each connection closed by the node, though its client kept sending');
    const after = fds();
    t.ok(after <= before + 5, `the node's open files: ${before} before, ${after} after`);
    t.equal(await leftovers(), 0, 'no temp files (or chunks)');
  });

  /** `read` until it gives `want` (or 5 s pass); the last value. */
  async function eventually(read: () => Promise<number>, want: number): Promise<number> {
    const until = Date.now() + 5000;
    for (;;) {
      const v = await read();
      if (v === want || Date.now() > until) return v;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
