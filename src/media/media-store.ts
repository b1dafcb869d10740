import { createHash } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, openSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ParleyError } from '../protocol/errors.js';
import { newId } from '../protocol/ids.js';
import { isBlobId, type Blob, type BlobUpload, type MediaBlobs } from './media-blobs.js';

/** A temp file this old belongs to no upload in flight (the longest takes about 68 minutes at the default minimum rate). */
const ABANDONED_MS = 24 * 3_600_000;

/** What may be uploaded. Encrypted media (end-to-end) is application/octet-stream. */
export const MEDIA_TYPES: ReadonlySet<string> = new Set([
  'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/heic',
  'video/mp4', 'video/webm', 'video/quicktime', 'video/3gpp',
  'application/octet-stream',
]);

/**
 * Content-addressed blobs on local disk, the embedded store's: a file's name is the SHA-256 of its bytes.
 * An upload goes to a temp file and is renamed to its hash when it finishes, so a half-written one is never
 * visible. One node's disk: a cluster runs on the Scylla store, whose blobs are in the database.
 */
export class DiskMediaBlobs implements MediaBlobs {
  constructor(private readonly dir: string) {
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    // Temp files of uploads a crashed process left: a day old can't be in flight (several processes may share the directory).
    for (const name of readdirSync(join(dir, 'tmp'))) {
      const p = join(dir, 'tmp', name);
      try { if (statSync(p).mtimeMs < Date.now() - ABANDONED_MS) unlinkSync(p); } catch { /* gone meanwhile */ }
    }
  }

  private path(id: string): string | undefined {
    return isBlobId(id) ? join(this.dir, id.slice(0, 2), id) : undefined;
  }

  async open(id: string): Promise<Blob | undefined> {
    const p = this.path(id);
    if (!p) return undefined;
    const st = await stat(p).catch(() => undefined);
    if (!st?.isFile()) return undefined;
    return { size: st.size, stream: (start, end) => createReadStream(p, { start, end }) };
  }

  async delete(id: string): Promise<void> {
    const p = this.path(id);
    if (p) await unlink(p).catch(() => undefined);
  }

  /** Chunks are hashed and appended to a temp file as they come (synchronously: the disk keeps up). */
  begin(limit: number): BlobUpload {
    const tmp = join(this.dir, 'tmp', newId(20));
    const fd = openSync(tmp, 'w');
    const hash = createHash('sha256');
    let size = 0;
    let done = false;
    const discard = () => {
      if (done) return;
      done = true;
      closeSync(fd);
      unlinkSync(tmp);
    };
    return {
      write: (chunk: Uint8Array) => {
        size += chunk.byteLength;
        if (size > limit) {
          discard();
          throw new ParleyError('too_large', `media is over the limit of ${limit} bytes`);
        }
        hash.update(chunk);
        writeSync(fd, chunk);
        return true;
      },
      drained: () => Promise.resolve(),
      finish: async () => {
        if (size === 0) {
          discard();
          throw new ParleyError('invalid', 'media is empty');
        }
        done = true;
        closeSync(fd);
        const id = hash.digest('hex');
        mkdirSync(join(this.dir, id.slice(0, 2)), { recursive: true });
        renameSync(tmp, this.path(id)!);
        return { id, size };
      },
      discard,
    };
  }
}
