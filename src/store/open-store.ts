import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Store } from './store.js';
import { LmdbStore } from './lmdb/lmdb-store.js';
import { ScyllaStore } from './scylla/scylla-store.js';
import { messageTtlSeconds } from '../gdpr/retention.js';

/** The store a node runs on: embedded LMDB by default, ScyllaDB (or Cassandra) with PARLEY_STORE=scylla. */
export async function openStore(cfg: Config): Promise<Store> {
  const { retention } = cfg;
  if (cfg.store === 'lmdb') {
    return new LmdbStore(join(cfg.dataDir, 'lmdb'), {
      flushEachWrite: cfg.lmdbFlush, ...(retention.mode === 'days' ? { retentionMs: retention.ms, retentionSweepMs: retention.sweepMs } : {}),
    });
  }
  const s = cfg.scylla;
  return ScyllaStore.open({
    contactPoints: s.contactPoints,
    localDataCenter: s.localDataCenter,
    keyspace: s.keyspace,
    replication: s.replication,
    consistency: s.consistency,
    serialConsistency: s.serialConsistency,
    ...(s.credentials ? { credentials: s.credentials } : {}),
    requestTimeoutMs: s.requestTimeoutMs,
    connectTimeoutMs: s.connectTimeoutMs,
    reconnectMaxDelayMs: s.reconnectMaxDelayMs,
    messageTtlSeconds: messageTtlSeconds(retention),
  });
}
