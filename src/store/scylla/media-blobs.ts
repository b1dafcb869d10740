import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { types } from 'cassandra-driver';
import { ParleyError } from '../../protocol/errors.js';
import { log } from '../../log.js';
import { isBlobId, type Blob, type BlobUpload, type MediaBlobs } from '../../media/media-blobs.js';

/** Bytes per row of `media_chunks`: well under Scylla's and Cassandra's mutation and large-cell limits. */
export const CHUNK_BYTES = 256 * 1024;
/** Chunk writes one upload may have in flight before it asks its reader to pause (memory: this many chunks plus one). */
const WRITES_IN_FLIGHT = 2;
/** Chunks a reader fetches ahead of the one being sent. */
const READ_AHEAD = 1;
/**
 * An upload record this old belongs to an upload that can't still be running (at the default minimum rate
 * the largest upload takes 10 s + 64 MiB / 16 KiB/s, about 68 minutes): the node that ran it died.
 */
export const UPLOAD_ABANDONED_MS = 24 * 3_600_000;
/** How often a node sweeps abandoned uploads (and once soon after it starts). */
const SWEEP_EVERY_MS = 3_600_000;

/** How the blobs reach the database: the store's own session (tracked, errors mapped to store_unavailable). */
export interface CqlRunner {
  run(query: string, params: unknown[], o: { idempotent: boolean; serial?: boolean; fetchSize?: number; pageState?: string }): Promise<types.ResultSet>;
}

/**
 * Media bytes in the shared database, so every node reads what any node took in (schema v10):
 *   media_chunks ((upload, n)) → data       one partition per 256 KiB chunk, spread over the cluster
 *   media_blobs  (id)          → upload, size, mime, chunk_bytes, chunks   written last, IF NOT EXISTS
 * An upload writes its chunks under a random upload id while it hashes them; only when every chunk is
 * stored does `finish` insert the blob row under the hash, so a blob is visible whole or not at all. Two
 * uploads of the same bytes race on that lightweight transaction: the loser deletes its own chunks and
 * answers with the winner's blob (the same bytes). A Range read fetches only the chunks it overlaps, one
 * at a time and one ahead, so neither direction holds a blob in memory. An upload is recorded in
 * media_uploads before its first chunk and forgotten once settled; what a node that died mid-upload left
 * there is swept (its chunks deleted) once it is a day old, by any node (`sweepAbandoned`).
 */
export class ScyllaMediaBlobs implements MediaBlobs {
  private readonly q: ReturnType<typeof blobStatements>;

  constructor(ks: string, private readonly cql: CqlRunner) {
    this.q = blobStatements(ks);
  }

  async open(id: string): Promise<Blob | undefined> {
    if (!isBlobId(id)) return undefined;
    const row = await this.row(id, false);
    if (!row) return undefined;
    return { size: row.size, stream: (start, end) => Readable.from(this.chunks(row, start, end), { objectMode: true, highWaterMark: READ_AHEAD }) };
  }

  async delete(id: string): Promise<void> {
    if (!isBlobId(id)) return;
    const row = await this.row(id, false);
    if (!row) return;
    // The row first: from then on nobody finds the chunks. A new upload of the same bytes gets its own.
    await this.cql.run(this.q.deleteBlob, [id, row.upload], { idempotent: true, serial: false });
    await this.dropChunks(row.upload, row.chunks);
  }

  begin(limit: number, mime: string): BlobUpload {
    return new ScyllaUpload(this, limit, mime);
  }

  private timers: NodeJS.Timeout[] = [];

  /** Sweeps abandoned uploads a minute after this call and then hourly, until `stop`. */
  startSweeping(): void {
    if (this.timers.length) return;
    const run = () => void this.sweepAbandoned().catch((err: unknown) => log('warn', 'abandoned media uploads not swept', { error: String(err) }));
    this.timers = [setTimeout(run, 60_000), setInterval(run, SWEEP_EVERY_MS)];
    for (const t of this.timers) t.unref();
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  /**
   * Deletes what uploads started before `now - UPLOAD_ABANDONED_MS` left behind: their chunks, unless a blob
   * row names them (the node died after the blob was made, before it deleted the record), then the record.
   * Any node may run it, several at once: every step is idempotent. Returns how many uploads it removed.
   */
  async sweepAbandoned(now = Date.now()): Promise<number> {
    let removed = 0;
    let pageState: string | undefined;
    do {
      const rs = await this.cql.run(this.q.listUploads, [], { idempotent: true, fetchSize: 500, ...(pageState ? { pageState } : {}) });
      pageState = rs.pageState ?? undefined;
      for (const r of rs.rows) {
        const upload = String(r.get('upload'));
        if (Number(r.get('started_at')) > now - UPLOAD_ABANDONED_MS) continue;
        const id = r.get('id') as string | null;
        const blob = id ? await this.row(id, false) : undefined;
        if (blob?.upload !== upload) {
          await this.dropChunksUpTo(upload);
          removed++;
        }
        await this.forget(upload);
      }
    } while (pageState);
    return removed;
  }

  /** @internal An upload under way, recorded before its first chunk is written. */
  record(upload: string): Promise<unknown> {
    return this.cql.run(this.q.recordUpload, [upload, Date.now()], { idempotent: true });
  }

  /** @internal The hash an upload is about to be committed under (so a sweep can tell whether it was). */
  naming(upload: string, id: string): Promise<unknown> {
    return this.cql.run(this.q.nameUpload, [id, upload], { idempotent: true });
  }

  /** @internal The upload is settled: its record goes. */
  forget(upload: string): Promise<unknown> {
    return this.cql.run(this.q.forgetUpload, [upload], { idempotent: true });
  }

  /** The chunks of an upload of unknown length: up to the first run of misses longer than the writes that may land out of order. */
  private async dropChunksUpTo(upload: string): Promise<void> {
    let misses = 0;
    for (let n = 0; misses <= WRITES_IN_FLIGHT; n++) {
      const rs = await this.cql.run(this.q.hasChunk, [upload, n], { idempotent: true });
      if (!rs.rowLength) { misses++; continue; }
      misses = 0;
      await this.cql.run(this.q.deleteChunk, [upload, n], { idempotent: true });
    }
  }

  /** @internal one chunk of an upload. */
  putChunk(upload: string, n: number, data: Uint8Array): Promise<unknown> {
    return this.cql.run(this.q.putChunk, [upload, n, data], { idempotent: true });
  }

  /**
   * @internal Makes an upload's chunks the blob of `id`, unless another upload of the same bytes did first:
   * the upload that owns the blob row. A transaction whose answer was lost is settled by a serial read.
   */
  async commit(id: string, b: BlobRow): Promise<string> {
    let rs: types.ResultSet;
    try {
      rs = await this.cql.run(this.q.insertBlob, [id, b.upload, b.size, b.mime, b.chunkBytes, b.chunks, Date.now()], { idempotent: false });
    } catch (err) {
      let held: BlobRow | undefined;
      try {
        held = await this.row(id, true);
      } catch {
        // Neither answer came: the row may still land and name these chunks, so they must stay.
        unsettled.add(err as object);
        throw err;
      }
      if (!held) throw err;
      return held.upload;
    }
    if (rs.first().get('[applied]') === true) return b.upload;
    return String(rs.first().get('upload'));
  }

  /** @internal Removes an upload's chunks (its own, never a blob's still in use). */
  async dropChunks(upload: string, chunks: number): Promise<void> {
    for (let n = 0; n < chunks; n += 16) {
      await Promise.all(Array.from({ length: Math.min(16, chunks - n) }, (_, i) => this.cql.run(this.q.deleteChunk, [upload, n + i], { idempotent: true })));
    }
  }

  private async row(id: string, serial: boolean): Promise<BlobRow | undefined> {
    const rs = await this.cql.run(this.q.getBlob, [id], { idempotent: true, serial });
    if (!rs.rowLength) return undefined;
    const r = rs.first();
    return {
      upload: String(r.get('upload')), size: Number(r.get('size')), mime: String(r.get('mime')),
      chunkBytes: Number(r.get('chunk_bytes')), chunks: Number(r.get('chunks')),
    };
  }

  /** The bytes start..end of a blob, chunk by chunk (sliced at both ends). */
  private async *chunks(b: BlobRow, start: number, end: number): AsyncGenerator<Uint8Array> {
    for (let n = Math.floor(start / b.chunkBytes); n * b.chunkBytes <= end; n++) {
      const rs = await this.cql.run(this.q.getChunk, [b.upload, n], { idempotent: true });
      const data = rs.rowLength ? (rs.first().get('data') as Buffer | null) : null;
      // A chunk gone under a reader: the blob was deleted meanwhile. The stream errors; the response is cut.
      if (!data) throw new ParleyError('not_found', 'no such media');
      const base = n * b.chunkBytes;
      yield data.subarray(Math.max(0, start - base), Math.min(data.length, end - base + 1));
    }
  }
}

/** Errors of a blob commit whose outcome is unknown. */
const unsettled = new WeakSet<object>();

export interface BlobRow { upload: string; size: number; mime: string; chunkBytes: number; chunks: number }

class ScyllaUpload implements BlobUpload {
  private readonly upload = randomBytes(16).toString('hex');
  private readonly hash = createHash('sha256');
  private buf = Buffer.allocUnsafe(CHUNK_BYTES);
  private fill = 0;
  private size = 0;
  private chunks = 0;
  private readonly inFlight = new Set<Promise<unknown>>();
  private failed?: unknown;
  private state: 'open' | 'finishing' | 'discarded' = 'open';
  private waiters: { resolve(): void; reject(e: unknown): void }[] = [];
  /** The upload's record (media_uploads), written before its first chunk so a sweep finds what a crash left. */
  private recorded?: Promise<unknown>;

  constructor(private readonly blobs: ScyllaMediaBlobs, private readonly limit: number, private readonly mime: string) {}

  write(chunk: Uint8Array): boolean {
    if (this.state !== 'open') return true;
    if (this.failed) throw this.failed;
    this.size += chunk.byteLength;
    if (this.size > this.limit) {
      this.discard();
      throw new ParleyError('too_large', `media is over the limit of ${this.limit} bytes`);
    }
    this.hash.update(chunk);
    let at = 0;
    while (at < chunk.byteLength) {
      const n = Math.min(CHUNK_BYTES - this.fill, chunk.byteLength - at);
      this.buf.set(chunk.subarray(at, at + n), this.fill);
      this.fill += n;
      at += n;
      if (this.fill === CHUNK_BYTES) this.flush();
    }
    return this.inFlight.size < WRITES_IN_FLIGHT;
  }

  drained(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.inFlight.size < WRITES_IN_FLIGHT) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  async finish(): Promise<{ id: string; size: number }> {
    if (this.state !== 'open') throw new ParleyError('invalid', 'this upload is over');
    if (this.size === 0) {
      this.discard();
      throw new ParleyError('invalid', 'media is empty');
    }
    this.state = 'finishing';
    if (this.fill > 0) this.flush();
    try {
      while (this.inFlight.size) await Promise.all(this.inFlight);
      if (this.failed) throw this.failed;
      const id = this.hash.digest('hex');
      await this.blobs.naming(this.upload, id); // a node dying from here on leaves a record a sweep can settle
      const owner = await this.blobs.commit(id, { upload: this.upload, size: this.size, mime: this.mime, chunkBytes: CHUNK_BYTES, chunks: this.chunks });
      if (owner !== this.upload) this.dropOwn(); // the same bytes were stored by another upload first
      else this.blobs.forget(this.upload).catch(() => undefined); // left behind, a sweep finds the blob names it
      return { id, size: this.size };
    } catch (err) {
      if (unsettled.has(err as object)) log('warn', 'a media upload\'s outcome is unknown; its chunks are kept', { upload: this.upload });
      else this.dropOwn();
      throw err;
    }
  }

  discard(): void {
    if (this.state !== 'open') return;
    this.state = 'discarded';
    this.failed ??= new ParleyError('invalid', 'this upload was discarded');
    this.wake();
    void Promise.allSettled([...this.inFlight]).then(() => this.dropOwn());
  }

  /** The chunk filled so far goes to the database; the buffer is handed over, a fresh one takes its place. */
  private flush(): void {
    const data = this.fill === CHUNK_BYTES ? this.buf : this.buf.subarray(0, this.fill);
    this.buf = Buffer.allocUnsafe(CHUNK_BYTES);
    this.fill = 0;
    const n = this.chunks++;
    this.recorded ??= this.blobs.record(this.upload);
    const p = this.recorded.then(() => this.blobs.putChunk(this.upload, n, data));
    this.inFlight.add(p);
    p.then(
      () => { this.inFlight.delete(p); this.wake(); },
      (err: unknown) => { this.inFlight.delete(p); this.failed ??= err; this.wake(); },
    );
  }

  private wake(): void {
    if (!this.failed && this.inFlight.size >= WRITES_IN_FLIGHT) return;
    for (const w of this.waiters.splice(0)) this.failed ? w.reject(this.failed) : w.resolve();
  }

  /** Its chunks, then its record (kept if the chunks could not all be deleted: a sweep retries them). */
  private dropOwn(): void {
    this.blobs.dropChunks(this.upload, this.chunks).then(() => (this.recorded ? this.blobs.forget(this.upload) : undefined)).catch((err: unknown) =>
      log('warn', 'chunks of an unfinished media upload were not removed (a sweep will)', { upload: this.upload, error: String(err) }));
  }
}

function blobStatements(ks: string) {
  return {
    putChunk: `INSERT INTO ${ks}.media_chunks (upload, n, data) VALUES (?, ?, ?)`,
    getChunk: `SELECT data FROM ${ks}.media_chunks WHERE upload = ? AND n = ?`,
    deleteChunk: `DELETE FROM ${ks}.media_chunks WHERE upload = ? AND n = ?`,
    insertBlob: `INSERT INTO ${ks}.media_blobs (id, upload, size, mime, chunk_bytes, chunks, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    getBlob: `SELECT upload, size, mime, chunk_bytes, chunks FROM ${ks}.media_blobs WHERE id = ?`,
    hasChunk: `SELECT n FROM ${ks}.media_chunks WHERE upload = ? AND n = ?`,
    recordUpload: `INSERT INTO ${ks}.media_uploads (upload, started_at) VALUES (?, ?)`,
    nameUpload: `UPDATE ${ks}.media_uploads SET id = ? WHERE upload = ?`,
    forgetUpload: `DELETE FROM ${ks}.media_uploads WHERE upload = ?`,
    listUploads: `SELECT upload, started_at, id FROM ${ks}.media_uploads`,
    // Only the row of this upload: a delete racing a newer upload of the same bytes leaves the newer row.
    deleteBlob: `DELETE FROM ${ks}.media_blobs WHERE id = ? IF upload = ?`,
  };
}
