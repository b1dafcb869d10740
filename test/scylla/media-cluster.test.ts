import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { http, type Fixture } from '../helpers/fixture.js';
import { eventually, twoNodesOnOneKeyspace } from '../helpers/cql.js';
import { rawRequest, statusOf, within } from '../helpers/raw-http.js';
import { uploadMedia } from '../../src/client/accounts-api.js';
import { SHARED_SECRET } from '../features/ownership-cases.js';
import { CHUNK_BYTES } from '../../src/store/scylla/media-blobs.js';

/**
 * Issue #13 point 9: media on every node. Two nodes on one keyspace (a real Cassandra 5): what is uploaded
 * through one is read through the other, whole and by Range; an upload cut off leaves nothing readable; the
 * same bytes uploaded through both at once are one blob; a 64 MiB upload and download don't pass through
 * either node's memory (RSS sampled from /proc while it runs).
 */
const two = twoNodesOnOneKeyspace(t, 'parley_media_two', SHARED_SECRET);

const sha = (x: Uint8Array) => createHash('sha256').update(x).digest('hex');
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const MiB = 1024 * 1024;

t.test('uploaded through one node, read through the other: whole, and by ranges across chunks', async (t) => {
  const alice = await two.a.device(t);
  const bob = (await two.b.signInOnly()).session;
  const bytes = randomBytes(3 * CHUNK_BYTES + 1000);
  const up = await uploadMedia(two.a.url, alice.session.token, bytes, 'video/mp4');
  t.equal(up.id, sha(bytes));
  const whole = await http(two.b.url, `/v1/media/${up.id}`, { headers: bearer(alice.session.token) });
  t.same([whole.status, whole.headers.get('content-type'), whole.bytes.equals(bytes)], [200, 'video/mp4', true], 'through B: the uploader, whole');
  for (const [from, to] of [[0, 99], [CHUNK_BYTES - 10, CHUNK_BYTES + 9], [CHUNK_BYTES, 3 * CHUNK_BYTES + 999]] as const) {
    const r = await http(two.b.url, `/v1/media/${up.id}`, { headers: { ...bearer(alice.session.token), range: `bytes=${from}-${to}` } });
    t.same([r.status, r.headers.get('content-range'), r.bytes.equals(bytes.subarray(from, to + 1))],
      [206, `bytes ${from}-${to}/${bytes.length}`, true], `through B: bytes ${from}-${to}`);
  }
  const suffix = await http(two.b.url, `/v1/media/${up.id}`, { headers: { ...bearer(alice.session.token), range: 'bytes=-5' } });
  t.ok(suffix.bytes.equals(bytes.subarray(bytes.length - 5)), 'the last 5 bytes');

  // Sent in a chat through A (ticked: its refs are stored with it), the other user fetches it through B:
  // who may fetch is in the store, and so are the bytes.
  t.equal((await http(two.b.url, `/v1/media/${up.id}`, { headers: bearer(bob.token) })).status, 404, 'bob, before it was sent to him');
  await alice.client.send({ to: bob.user }, 'video', { media: up.id });
  t.ok((await http(two.b.url, `/v1/media/${up.id}`, { headers: bearer(bob.token) })).bytes.equals(bytes), 'bob, through B');
  const signed = await http(two.b.url, `/v1/media/${up.id}/url`, { headers: bearer(bob.token) });
  t.ok((await http(two.a.url, signed.json.url)).bytes.equals(bytes), 'a signed URL made by B works on A (one secret)');
});

t.test('an upload cut off half way leaves nothing readable; the same bytes uploaded afterwards are whole', async (t) => {
  const alice = await two.a.device(t);
  const bytes = randomBytes(4 * CHUNK_BYTES);
  // Counted before any byte goes: a node quick to store the first chunks would otherwise have them counted in `before`.
  const rows = () => two.admin.execute(`SELECT count(*) FROM ${two.keyspace}.media_chunks`).then((r) => Number(r.first().get(0)));
  const before = await rows();
  const up = rawRequest(two.b.node.port, 'POST', '/v1/media', {
    ...bearer(alice.session.token), 'content-type': 'image/png', 'content-length': String(bytes.length),
  });
  up.socket.write(bytes.subarray(0, 2 * CHUNK_BYTES + 77));
  t.ok((await eventually(rows, (n) => n >= before + 2)) >= before + 2, 'chunks of it were stored');
  up.socket.destroy();
  const blob = await two.admin.execute(`SELECT id FROM ${two.keyspace}.media_blobs WHERE id = ?`, [sha(bytes)], { prepare: true });
  t.equal(blob.rowLength, 0, 'no blob row: nothing names those chunks');
  t.equal(await eventually(rows, (n) => n === before), before, 'and the node that took them removes them');
  const again = await uploadMedia(two.a.url, alice.session.token, bytes, 'image/png');
  t.equal(again.id, sha(bytes));
  t.ok((await http(two.b.url, `/v1/media/${again.id}`, { headers: bearer(alice.session.token) })).bytes.equals(bytes), 'read whole through B');
});

t.test('the same bytes uploaded through both nodes at once: one blob, both answered with it', async (t) => {
  const [alice, bob] = await Promise.all([two.a.device(t), two.b.device(t, { session: (await two.b.signInOnly()).session })]);
  const bytes = randomBytes(2 * CHUNK_BYTES + 3);
  const [x, y] = await Promise.all([
    uploadMedia(two.a.url, alice.session.token, bytes, 'image/jpeg'),
    uploadMedia(two.b.url, bob.session.token, bytes, 'image/jpeg'),
  ]);
  t.same([x.id, y.id], [sha(bytes), sha(bytes)]);
  t.ok((await http(two.b.url, `/v1/media/${x.id}`, { headers: bearer(alice.session.token) })).bytes.equals(bytes), 'alice through B');
  t.ok((await http(two.a.url, `/v1/media/${y.id}`, { headers: bearer(bob.session.token) })).bytes.equals(bytes), 'bob through A');
  const unowned = async () => {
    const chunks = await two.admin.execute(`SELECT upload FROM ${two.keyspace}.media_chunks`);
    const owners = new Set((await two.admin.execute(`SELECT upload FROM ${two.keyspace}.media_blobs`)).rows.map((r) => String(r.get('upload'))));
    return chunks.rows.filter((r) => !owners.has(String(r.get('upload')))).length;
  };
  t.equal(await eventually(unowned, (n) => n === 0), 0, 'the loser\'s chunks are removed: every chunk left belongs to a blob');
  const owner = await two.admin.execute(`SELECT upload, chunks FROM ${two.keyspace}.media_blobs WHERE id = ?`, [x.id], { prepare: true });
  t.equal(owner.first().get('chunks'), 3);
});

const STREAMED_MAX = 52 * MiB;

t.test('64 MiB up through A and down through B: neither node holds it in memory', async (t) => {
  const alice = await two.a.device(t);
  const bytes = randomBytes(64 * MiB);
  const watchA = watchRss(two.a);
  const up = await uploadMedia(two.a.url, alice.session.token, bytes, 'video/mp4');
  const grewA = watchA();
  t.equal(up.id, sha(bytes));
  const watchB = watchRss(two.b);
  const res = await fetch(`${two.b.url}/v1/media/${up.id}`, { headers: bearer(alice.session.token) });
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) { hash.update(c); size += c.byteLength; }
  const grewB = watchB();
  t.same([res.status, size, hash.digest('hex')], [200, bytes.length, up.id], 'read back whole through B');
  // Streamed, RSS grew 17-43 MiB in runs here and in CI (buffers, GC timing); held whole it would grow by 64
  // or more: the bound sits between the two (40 failed once in CI, at 42.9).
  t.ok(grewA < STREAMED_MAX, `the upload raised A's resident memory by at most ${(grewA / MiB).toFixed(1)} MiB (a blob held whole would be 64 or more)`);
  t.ok(grewB < STREAMED_MAX, `the download raised B's resident memory by at most ${(grewB / MiB).toFixed(1)} MiB (a blob held whole would be 64 or more)`);
});

/** Samples the node's RSS every 20 ms from now; the returned function stops and gives the largest growth. */
function watchRss(f: Fixture): () => number {
  const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${f.node.proc.pid}/status`, 'utf8'))![1]) * 1024;
  const base = rss();
  let max = base;
  const timer = setInterval(() => { max = Math.max(max, rss()); }, 20);
  return () => { clearInterval(timer); return Math.max(max, rss()) - base; };
}

t.test('a request on the connection after an upload that paused for the database is answered', async (t) => {
  const alice = await two.a.device(t);
  const bytes = randomBytes(3 * MiB);
  const up = rawRequest(two.a.node.port, 'POST', '/v1/media', { ...bearer(alice.session.token), 'content-type': 'image/png', 'content-length': String(bytes.length) });
  up.socket.write(bytes);
  const first = await within(20_000, up.response);
  t.equal(statusOf(first), 201);
  let second = '';
  const answered = new Promise<string>((resolve) => up.socket.on('data', (d) => { second += d.toString(); if (/\r\n\r\n/.test(second)) resolve(second); }));
  up.socket.write(`GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
  t.equal(statusOf(await within(5000, answered)), 200);
  up.socket.destroy();
});
