import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStore } from '../../src/store/lmdb/lmdb-store.js';
import { runStoreConformance } from './conformance.js';
import { runE2eConformance } from './e2e-conformance.js';
import { fakeClock } from '../helpers/fake-clock.js';
import { ANALYTICS_KEEP_MS, DEV_OUTBOX_TTL_MS } from '../../src/store/store.js';

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

t.test('analytics rows are kept ANALYTICS_KEEP_MS from their last write (filtered on read; the hourly sweep removes them)', async (t) => {
  const clock = fakeClock(t);
  clock.setSystemTime(Date.UTC(2026, 0, 1));
  const store = new LmdbStore(join(dir, 'analytics'), { sweepEveryMs: 3_600_000 });
  t.teardown(() => store.close());
  await store.putAnalytics('2026-01-01', 'local', new Uint8Array([1]));
  await store.putAnalytics('2026-01', 'local', new Uint8Array([2]));
  // Moved without running 400 days of the store's intervals (the sync every second).
  clock.setSystemTime(Date.UTC(2026, 0, 1) + ANALYTICS_KEEP_MS - 1);
  await store.putAnalytics('2026-01', 'local', new Uint8Array([3])); // the month's row written again: kept from now
  t.strictSame((await store.analyticsRows(['2026-01-01', '2026-01'])).map((r) => [r.period, ...r.data]), [['2026-01-01', 1], ['2026-01', 3]], 'both, just before the day expires');
  clock.setSystemTime(Date.UTC(2026, 0, 1) + ANALYTICS_KEEP_MS);
  t.strictSame((await store.analyticsRows(['2026-01-01', '2026-01'])).map((r) => [r.period, ...r.data]), [['2026-01', 3]], 'the day is gone at its expiry');
  clock.tick(3_600_000); // the hourly sweep runs
  await store.putAnalytics('x', 'local', new Uint8Array([0])); // a write after it: the sweep's transaction is committed
  // Read as of before the expiry: a row only filtered would show again; a swept one is gone.
  clock.setSystemTime(Date.UTC(2026, 0, 1));
  t.strictSame((await store.analyticsRows(['2026-01-01', '2026-01'])).map((r) => r.period), ['2026-01'], 'the sweep deleted it');
});
