import type { Readable } from 'node:stream';

/**
 * Where media bytes live, content-addressed: a blob's id is the SHA-256 of its bytes, so the same bytes
 * are stored once and an id can't be guessed. Two implementations: local disk (media-store.ts, the
 * embedded default) and chunks in the shared database (src/store/scylla/media-blobs.ts), so that on the
 * Scylla store an upload through one node is readable through every other.
 */
export interface MediaBlobs {
  /** An upload in progress; `mime` is kept with the blob. The id is known only when it finishes. */
  begin(limit: number, mime: string): BlobUpload;
  /** A finished blob, or undefined: an upload still being written, or cut off, is never visible. */
  open(id: string): Promise<Blob | undefined>;
  /** Removes a blob; readers already streaming it may be cut short. Nothing if there is none. */
  delete(id: string): Promise<void>;
}

export interface Blob {
  readonly size: number;
  /** Bytes `start`..`end` (inclusive), streamed: at most a few chunks are held in memory at a time. */
  stream(start: number, end: number): Readable;
}

export interface BlobUpload {
  /**
   * Takes a chunk (the caller may reuse its memory after the call). Throws `too_large` past the limit (the
   * upload is then discarded) or the error a background write met. Returns false when the caller should
   * stop reading until `drained()` resolves: writes to the store are behind.
   */
  write(chunk: Uint8Array): boolean;
  drained(): Promise<void>;
  /** Makes the blob visible under its hash, once every byte is stored. `invalid` if nothing was written. */
  finish(): Promise<{ id: string; size: number }>;
  /** Drops what was written. Does nothing once `finish` was called or after an earlier discard. */
  discard(): void;
}

/** Media ids are lower-case hex SHA-256. */
export const isBlobId = (id: string): boolean => /^[0-9a-f]{64}$/.test(id);
