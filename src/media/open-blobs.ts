import type { Store } from '../store/store.js';
import { ScyllaStore } from '../store/scylla/scylla-store.js';
import type { MediaBlobs } from './media-blobs.js';
import { DiskMediaBlobs } from './media-store.js';

/** The blobs of a node: in the shared database on the Scylla store (every node reads them), else on local disk. */
export function openMediaBlobs(store: Store, dir: string): MediaBlobs {
  if (!(store instanceof ScyllaStore)) return new DiskMediaBlobs(dir);
  const blobs = store.mediaBlobs();
  blobs.startSweeping(); // what nodes that died mid-upload left (stopped when the store closes)
  return blobs;
}
