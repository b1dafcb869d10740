import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Client } from 'cassandra-driver';
import type { MediaBlobs } from '../../src/media/media-blobs.js';
import { DiskMediaBlobs } from '../../src/media/media-store.js';
import { ScyllaStore } from '../../src/store/scylla/scylla-store.js';
import { CHUNK_BYTES, UPLOAD_ABANDONED_MS } from '../../src/store/scylla/media-blobs.js';
import { cqlAdmin, cqlContact, cqlDataCenter, dropKeyspace, eventually, testKeyspace } from '../helpers/cql.js';
import { setLogLevel } from '../../src/log.js';

/**
 * The media blob stores, one suite on both: local disk (the embedded default) and chunks in a real Cassandra
 * (the Scylla store's). Ids are the bytes' SHA-256; a blob is visible only once whole; Range reads return
 * exactly their bytes, across chunk boundaries; same bytes uploaded twice at once end as one blob.
 */
setLogLevel('error');

const keyspace = testKeyspace('parley_blobs');
const dir = mkdtempSync(join(tmpdir(), 'parley-blobs-'));
let admin: Client;
let store: ScyllaStore;
let peer: ScyllaStore;
t.before(async () => {
  admin = await cqlAdmin();
  const opts = { contactPoints: [cqlContact()], localDataCenter: cqlDataCenter(), keyspace };
  store = await ScyllaStore.open(opts);
  peer = await ScyllaStore.open(opts);
});
t.teardown(async () => {
  await store?.close();
  await peer?.close();
  await dropKeyspace(admin, keyspace);
  await admin?.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(parts);
}
/** Writes `bytes` in pieces of `piece`, waiting whenever the store asks, and finishes. */
async function put(blobs: MediaBlobs, bytes: Uint8Array, piece = 100_001, limit = 64 * 1024 * 1024): Promise<{ id: string; size: number; paused: number }> {
  const up = blobs.begin(limit, 'image/png');
  let paused = 0;
  for (let at = 0; at < bytes.length; at += piece) {
    if (!up.write(bytes.subarray(at, at + piece))) {
      paused++;
      await up.drained();
    }
  }
  return { ...(await up.finish()), paused };
}
const chunkRows = async () => Number((await admin.execute(`SELECT count(*) FROM ${keyspace}.media_chunks`)).first().get(0));

interface Impl { name: string; blobs: () => MediaBlobs; other: () => MediaBlobs; leftovers: () => Promise<number> }
const impls: Impl[] = [
  { name: 'disk', blobs: () => new DiskMediaBlobs(dir), other: () => new DiskMediaBlobs(dir), leftovers: async () => readdirSync(join(dir, 'tmp')).length },
  { name: 'scylla', blobs: () => store.mediaBlobs(), other: () => peer.mediaBlobs(), leftovers: chunkRows },
];

for (const impl of impls) {
  t.test(`${impl.name} blobs`, async (t) => {
    const blobs = impl.blobs();

    t.test('an upload in odd pieces: its id is its hash; read whole and by ranges, also through another client', async (t) => {
      const bytes = randomBytes(3 * CHUNK_BYTES + 12_345);
      const done = await put(blobs, bytes);
      t.same({ id: done.id, size: done.size }, { id: sha(bytes), size: bytes.length });
      for (const reader of [blobs, impl.other()]) {
        const blob = (await reader.open(done.id))!;
        t.equal(blob.size, bytes.length);
        t.ok((await readAll(blob.stream(0, bytes.length - 1))).equals(bytes), 'whole');
        const ranges: [number, number][] = [
          [0, 0], [1, 10], [CHUNK_BYTES - 1, CHUNK_BYTES], [CHUNK_BYTES, 2 * CHUNK_BYTES - 1], [CHUNK_BYTES - 5, 3 * CHUNK_BYTES + 5],
          [bytes.length - 1, bytes.length - 1], [3 * CHUNK_BYTES, bytes.length - 1],
        ];
        for (const [a, b] of ranges) t.ok((await readAll(blob.stream(a, b))).equals(bytes.subarray(a, b + 1)), `bytes ${a}-${b}`);
      }
      t.equal(await impl.leftovers(), impl.name === 'disk' ? 0 : 4, 'nothing left over (scylla: its 4 chunks)');
      await blobs.delete(done.id);
      t.equal(await blobs.open(done.id), undefined, 'deleted');
      t.equal(await impl.leftovers(), 0, 'and its chunks');
    });

    t.test('empty, over the limit, discarded, never finished: nothing visible, nothing left', async (t) => {
      const empty = blobs.begin(1000, 'image/png');
      await t.rejects(empty.finish(), { code: 'invalid' }, 'empty');
      const big = randomBytes(CHUNK_BYTES + 10);
      const over = blobs.begin(CHUNK_BYTES, 'image/png');
      t.throws(() => { over.write(big.subarray(0, CHUNK_BYTES)); over.write(big.subarray(CHUNK_BYTES)); }, { code: 'too_large' });
      const discarded = randomBytes(2 * CHUNK_BYTES);
      const d = blobs.begin(10 * CHUNK_BYTES, 'image/png');
      d.write(discarded);
      await d.drained().catch(() => undefined);
      d.discard();
      // Cut off mid-way (a node that died): chunks may be stored, the blob isn't.
      const cut = randomBytes(2 * CHUNK_BYTES + 1);
      const c = blobs.begin(10 * CHUNK_BYTES, 'image/png');
      c.write(cut);
      await c.drained();
      for (const b of [big, discarded, cut]) t.equal(await blobs.open(sha(b)), undefined, 'not visible');
      t.equal(await blobs.open('00'.repeat(32)), undefined, 'an id nobody uploaded');
      t.equal(await blobs.open('../etc/passwd'), undefined, 'not an id');
      c.discard(); // the cut one's leftovers are removed only by a discard: a crashed node's stay (docs)
      t.equal(await eventually(impl.leftovers, (n) => n === 0), 0, 'what was written is removed');
    });

    t.test('the same bytes uploaded twice at once, through two clients: one blob, both answered with it', async (t) => {
      const bytes = randomBytes(2 * CHUNK_BYTES + 7);
      const [a, b] = await Promise.all([put(blobs, bytes, 65_536), put(impl.other(), bytes, 99_999)]);
      t.equal(a.id, sha(bytes));
      t.equal(b.id, a.id);
      t.ok((await readAll((await blobs.open(a.id))!.stream(0, bytes.length - 1))).equals(bytes));
      t.equal(await eventually(impl.leftovers, (n) => n <= 3), impl.name === 'disk' ? 0 : 3, 'one upload\'s chunks left (scylla: 3)');
      await blobs.delete(a.id);
      t.equal(await eventually(impl.leftovers, (n) => n === 0), 0);
    });

    if (impl.name === 'scylla') {
      t.test('a fast writer is asked to pause while chunk writes are in flight, and the bytes all land', async (t) => {
        const bytes = randomBytes(16 * CHUNK_BYTES);
        const done = await put(blobs, bytes, 4 * CHUNK_BYTES);
        t.ok(done.paused > 0, `paused ${done.paused} times`);
        t.ok((await readAll((await blobs.open(done.id))!.stream(0, bytes.length - 1))).equals(bytes));
        await blobs.delete(done.id);
      });

      t.test('what a node that died mid-upload left is swept once a day old; a blob made before the death is kept', async (t) => {
        const sb = store.mediaBlobs();
        const uploads = async () => (await admin.execute(`SELECT upload, id FROM ${keyspace}.media_uploads`)).rows.map((r) => [String(r.get('upload')), r.get('id') as string | null] as const);
        t.strictSame(await eventually(uploads, (u) => u.length === 0), [], 'settled uploads leave no record');
        // Abandoned: chunks written, never finished nor discarded (its process "died").
        const cut = sb.begin(10 * CHUNK_BYTES, 'image/png');
        cut.write(randomBytes(3 * CHUNK_BYTES + 5));
        t.equal(await eventually(chunkRows, (n) => n === 3), 3, 'its chunks are stored');
        const [[abandoned]] = await uploads() as [[string, null]];
        // Named but never committed (died between the two), and committed but its record left behind.
        const named = randomBytes(CHUNK_BYTES + 1);
        const kept = await put(sb, named);
        const nameless = randomBytes(2 * CHUNK_BYTES);
        const ghost = sb.begin(10 * CHUNK_BYTES, 'image/png');
        ghost.write(nameless);
        t.equal(await eventually(chunkRows, (n) => n === 7), 7, 'three uploads\' chunks');
        const keptUpload = String((await admin.execute(`SELECT upload FROM ${keyspace}.media_blobs WHERE id = ?`, [kept.id], { prepare: true })).first().get('upload'));
        await admin.execute(`INSERT INTO ${keyspace}.media_uploads (upload, started_at, id) VALUES (?, 0, ?)`, [keptUpload, kept.id], { prepare: true });
        const ghostUpload = (await uploads()).find(([u]) => u !== abandoned && u !== keptUpload)![0];
        await admin.execute(`UPDATE ${keyspace}.media_uploads SET id = ? WHERE upload = ?`, [sha(nameless), ghostUpload], { prepare: true });

        t.equal(await sb.sweepAbandoned(), 0, 'a sweep now takes nothing of the young ones (the old record names a live blob)');
        t.equal(await chunkRows(), 7);
        t.equal(await peer.mediaBlobs().sweepAbandoned(Date.now() + UPLOAD_ABANDONED_MS + 1000), 2, 'a day later, from another node: the two dead uploads');
        t.equal(await chunkRows(), 2, 'only the blob\'s chunks are left');
        t.ok((await readAll((await sb.open(kept.id))!.stream(0, named.length - 1))).equals(named), 'and the blob reads whole');
        t.strictSame(await uploads(), [], 'every record settled');
        await sb.delete(kept.id);
      });
    }
  });
}
