import type { Store } from '../store/store.js';
import { ScyllaStore } from '../store/scylla/scylla-store.js';
import type { MediaBlobs } from './media-blobs.js';
import { DiskMediaBlobs } from './media-store.js';

/** The blobs of a node: in the shared database on the Scylla store (every node reads them), else on local disk. */
export function openMediaBlobs(store: Store, dir: string): MediaBlobs {
  return store instanceof ScyllaStore ? store.mediaBlobs() : new DiskMediaBlobs(dir);
}
