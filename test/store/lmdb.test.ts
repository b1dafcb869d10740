import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStore } from '../../src/store/lmdb/lmdb-store.js';
import { runStoreConformance } from './conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-lmdb-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
// The peer is a second store on the same directory (as a second process would be: LMDB's write lock
// serializes their transactions), so the concurrent-writer cases run through both.
runStoreConformance(t, 'lmdb', async () => new LmdbStore(join(dir, 'db')), async () => new LmdbStore(join(dir, 'db')));
