import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ParleyError } from '../protocol/errors.js';
import { newId } from '../protocol/ids.js';

/** What may be uploaded. Encrypted media (end-to-end) is application/octet-stream. */
export const MEDIA_TYPES: ReadonlySet<string> = new Set([
  'image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/heic',
  'video/mp4', 'video/webm', 'video/quicktime', 'video/3gpp',
  'application/octet-stream',
]);

/**
 * Content-addressed blobs on local disk: a file's name is the SHA-256 of its bytes, so an upload of the same
 * bytes is stored once and an id can't be guessed. A CDN or object store takes this role at scale.
 */
export class MediaStore {
  constructor(private readonly dir: string) {
    mkdirSync(join(dir, 'tmp'), { recursive: true });
  }

  path(id: string): string {
    if (!/^[0-9a-f]{64}$/.test(id)) throw new ParleyError('not_found', 'no such media');
    return join(this.dir, id.slice(0, 2), id);
  }

  size(id: string): number | undefined {
    const p = this.path(id);
    return existsSync(p) ? statSync(p).size : undefined;
  }

  /** Deletes the bytes (erasure: nobody references them any more); none there is fine. */
  remove(id: string): void {
    try { unlinkSync(this.path(id)); } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; }
  }

  /** A write in progress: chunks are hashed and appended; `finish` names the file by its hash. */
  begin(limit: number): Upload {
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
      },
      finish: () => {
        if (size === 0) {
          discard();
          throw new ParleyError('invalid', 'media is empty');
        }
        done = true;
        closeSync(fd);
        const id = hash.digest('hex');
        const final = this.path(id);
        mkdirSync(join(this.dir, id.slice(0, 2)), { recursive: true });
        renameSync(tmp, final);
        return { id, size };
      },
      discard,
    };
  }
}

export interface Upload {
  write(chunk: Uint8Array): void;
  finish(): { id: string; size: number };
  discard(): void;
}
