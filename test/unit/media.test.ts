import t from 'tap';
import { MediaUrlSigner } from '../../src/media/media-urls.js';
import { UploadGate, tooSlow } from '../../src/media/upload-gate.js';
import { MediaAccess, isMediaId, mediaOf, refsForMessage } from '../../src/media/media-access.js';
import { LmdbStore } from '../../src/store/lmdb/lmdb-store.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mediaHeaders } from '../../src/http/media-routes.js';
import { directConversationId } from '../../src/protocol/ids.js';

/** Security issue #10 (media): the pure parts — signed URLs against an injected clock, the upload rate and gate. */

const MEDIA = 'ab'.repeat(32);
const OTHER = 'cd'.repeat(32);
const T0 = 1_700_000_000_000;
const query = (url: string) => new URL(url, 'http://x').searchParams;

t.test('a signed media URL works for its media and user until it expires, and for nothing else', async (t) => {
  const signer = new MediaUrlSigner(Buffer.from('node-secret'), 60_000);
  const { url, expiresAt } = signer.sign(MEDIA, 'alice', T0);
  t.equal(expiresAt, T0 + 60_000);
  t.match(url, new RegExp(`^/v1/media/${MEDIA}\\?u=alice&exp=${T0 + 60_000}&sig=[A-Za-z0-9_-]{43}$`));
  const q = query(url);
  t.equal(signer.verify(MEDIA, q, T0), 'alice', 'at once');
  t.equal(signer.verify(MEDIA, q, T0 + 59_999), 'alice', 'until just before it expires');
  t.equal(signer.verify(MEDIA, q, T0 + 60_000), undefined, 'not at its expiry');
  t.equal(signer.verify(MEDIA, q, T0 + 3_600_000), undefined, 'nor after');
  t.equal(signer.verify(OTHER, q, T0), undefined, 'only for the media it names');

  const altered = (k: string, v: string) => { const c = new URLSearchParams(q); c.set(k, v); return c; };
  t.equal(signer.verify(MEDIA, altered('u', 'mallory'), T0), undefined, 'another user');
  t.equal(signer.verify(MEDIA, altered('exp', String(T0 + 86_400_000)), T0), undefined, 'a later expiry');
  t.equal(signer.verify(MEDIA, altered('sig', q.get('sig')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))), T0), undefined, 'a changed signature');
  t.equal(signer.verify(MEDIA, altered('sig', ''), T0), undefined, 'an empty one');
  t.equal(signer.verify(MEDIA, altered('exp', '1e20'), T0), undefined, 'a malformed expiry');
  t.equal(signer.verify(MEDIA, new URLSearchParams(), T0), undefined, 'none at all');
  t.equal(new MediaUrlSigner(Buffer.from('another-secret'), 60_000).verify(MEDIA, q, T0), undefined, 'another node secret');
});

t.test('an upload is too slow once it is behind the minimum rate, counted from the end of the grace period', async (t) => {
  const l = { graceMs: 10_000, minBytesPerSec: 1000 };
  t.notOk(tooSlow(T0, 0, T0 + 10_000, l), 'nothing is asked during the grace period');
  t.ok(tooSlow(T0, 0, T0 + 10_001, l), 'nothing at all after it');
  t.notOk(tooSlow(T0, 5000, T0 + 15_000, l), 'exactly at the rate');
  t.ok(tooSlow(T0, 4999, T0 + 15_000, l), 'a byte behind');
  t.notOk(tooSlow(T0, 1_000_000, T0 + 20_000, l), 'a fast upload');
  t.ok(tooSlow(T0, 1_000_000, T0 + 10_000 + 1_000_001, l), 'even a big one must be done by grace + length / rate');
});

t.test('the upload gate: per user, per node (count and temp disk), released once, slow ones cut once', async (t) => {
  let now = T0;
  const gate = new UploadGate({ perUser: 2, inFlight: 3, diskBytes: 1000, graceMs: 1000, minBytesPerSec: 100 }, () => now);
  const cut: string[] = [];
  const a1 = gate.admit('alice', 100, now, () => cut.push('a1'));
  const a2 = gate.admit('alice', 100, now, () => cut.push('a2'));
  t.throws(() => gate.admit('alice', 100, now, () => undefined), { code: 'rate_limited', retryAfterMs: 1000 }, 'a third of alice\'s');
  const b1 = gate.admit('bob', 100, now, () => cut.push('b1'));
  t.throws(() => gate.admit('carol', 100, now, () => undefined), { code: 'over_capacity' }, 'the node is full');
  t.same([gate.inFlight, gate.bytesReserved], [3, 300]);
  a1.release();
  a1.release();
  t.same([gate.inFlight, gate.bytesReserved], [2, 200], 'a release counts once');
  t.throws(() => gate.admit('carol', 801, now, () => undefined), { code: 'over_capacity' }, 'over the temp disk budget');
  const c1 = gate.admit('carol', 800, now, () => cut.push('c1'));
  c1.release();
  b1.release();
  a2.release();
  t.equal(gate.inFlight, 0);
  const huge = gate.admit('dave', 5000, now, () => cut.push('huge'));
  t.pass('one upload is let in whatever its size, so a small budget cannot stop every upload');
  huge.release();

  // The rate: after the grace period each must keep up 100 bytes/s.
  const fast = gate.admit('alice', 400, now, () => cut.push('fast'));
  const slow = gate.admit('bob', 400, now, () => cut.push('slow'));
  now += 2000;
  fast.received = 100;
  slow.received = 99;
  gate.sweep();
  t.same(cut, ['slow'], 'the one behind is cut');
  t.equal(gate.inFlight, 1, 'and its slot given back');
  gate.sweep();
  t.same(cut, ['slow'], 'once');
  fast.release();
  t.equal(gate.inFlight, 0);
});

t.test('which refs a message grants, which media it names, what media responses say', async (t) => {
  const conv = directConversationId('alice', 'bobby');
  t.same(refsForMessage(conv, 7), [{ holder: 'u:alice', seq: 0 }, { holder: 'u:bobby', seq: 0 }], 'a 1:1 chat: both users');
  t.same(refsForMessage('g.abcd', 7), [{ holder: 'c:g.abcd', seq: 7 }], 'a group: the conversation as of the seq');
  t.equal(mediaOf('image', { media: MEDIA }), MEDIA);
  t.equal(mediaOf('video', { media: MEDIA, caption: 'x' }), MEDIA);
  t.equal(mediaOf('text', { text: 'x', media: MEDIA }), undefined, 'only image and video name media');
  t.equal(mediaOf('image', new Uint8Array([1, 2])), undefined, 'a ciphertext body is not read');
  t.ok(isMediaId(MEDIA));
  t.notOk(isMediaId('../../etc/passwd'));
  t.notOk(isMediaId(MEDIA.toUpperCase()));
  t.same(mediaHeaders(MEDIA, 'image/jpeg'), {
    'x-content-type-options': 'nosniff', 'content-security-policy': "default-src 'none'; sandbox", 'content-disposition': `inline; filename="${MEDIA}.jpg"`,
  });
  t.equal(mediaHeaders(MEDIA, 'application/octet-stream')['content-disposition'], `attachment; filename="${MEDIA}.bin"`, 'anything else downloads');
});

t.test('media uploaded before refs were kept stays its first uploader\'s', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-media-'));
  const store = new LmdbStore(join(dir, 'db'));
  t.teardown(async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); });
  const access = new MediaAccess(store, async () => { throw new Error('no group holds it: no conversation is asked'); });
  await store.putMedia({ id: MEDIA, mime: 'image/png', size: 10, owner: 'alice', createdAt: T0 });
  t.equal(await access.mayFetch('alice', MEDIA), true, 'the owner in its metadata');
  t.equal(await access.mayFetch('bobby', MEDIA), false, 'nobody else');
  t.equal(await access.mayFetch('alice', '../' + MEDIA), false, 'not an id');
});
