import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Store } from './store.js';
import { LmdbStore } from './lmdb/lmdb-store.js';

/** The store a node runs on: embedded LMDB by default, ScyllaDB with PARLEY_STORE=scylla. */
export async function openStore(cfg: Config): Promise<Store> {
  if (cfg.store === 'lmdb') return new LmdbStore(join(cfg.dataDir, 'lmdb'));
  throw new Error('PARLEY_STORE=scylla is not wired in yet');
}
