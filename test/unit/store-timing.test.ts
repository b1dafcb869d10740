import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStore } from '../../src/store/lmdb/lmdb-store.js';
import { runStoreTiming } from '../store/timing-cases.js';

/** The store timing wrapper around LMDB (the cases: test/store/timing-cases.ts). */
const dir = mkdtempSync(join(tmpdir(), 'parley-store-timing-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
runStoreTiming(t, async () => new LmdbStore(join(dir, `db${++n}`)));
