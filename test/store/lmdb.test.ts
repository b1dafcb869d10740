import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStore } from '../../src/store/lmdb/lmdb-store.js';
import { runStoreConformance } from './conformance.js';
import { runE2eConformance } from './e2e-conformance.js';
import { fakeClock } from '../helpers/fake-clock.js';
import { DEV_OUTBOX_TTL_MS } from '../../src/store/store.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-lmdb-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
// The peer is a second store on the same directory (as a second process would be: LMDB's write lock
// serializes their transactions), so the concurrent-writer cases run through both.
runStoreConformance(t, 'lmdb', async () => new LmdbStore(join(dir, 'db')), async () => new LmdbStore(join(dir, 'db')));
runE2eConformance(t, 'lmdb', async () => new LmdbStore(join(dir, 'e2e')), async () => new LmdbStore(join(dir, 'e2e')));

t.test('dev outbox entries expire after DEV_OUTBOX_TTL_MS (filtered on read; the hourly sweep removes them)', async (t) => {
  const clock = fakeClock(t);
  clock.setSystemTime(Date.UTC(2026, 0, 1));
  const store = new LmdbStore(join(dir, 'outbox'), { sweepEveryMs: 3_600_000 });
  t.teardown(() => store.close());
  await store.devOutboxAdd('sms', '+15550000009', new Uint8Array([1]));
  clock.tick(DEV_OUTBOX_TTL_MS - 1);
  await store.devOutboxAdd('sms', '+15550000009', new Uint8Array([2]));
  t.strictSame((await store.devOutboxList('sms', '+15550000009')).map((e) => [...e.data]), [[1], [2]], 'both, just before the first expires');
  clock.tick(1);
  t.strictSame((await store.devOutboxList('sms', '+15550000009')).map((e) => [...e.data]), [[2]], 'the first is gone at its expiry');
  clock.tick(DEV_OUTBOX_TTL_MS);
  t.strictSame(await store.devOutboxList('sms', '+15550000009'), [], 'and then the second');
});
