import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HLL_STANDARD_ERROR, HyperLogLog } from '../../src/analytics/hyperloglog.js';
import { LogHistogram, bucketOf } from '../../src/analytics/log-histogram.js';
import { PeriodAggregate, decodeAggregate, encodeAggregate, periodStart } from '../../src/analytics/aggregate.js';
import { Analytics } from '../../src/analytics/analytics.js';
import { analyticsReport, daysInRange } from '../../src/analytics/report.js';
import { LmdbStore } from '../../src/store/lmdb/lmdb-store.js';

t.test('HyperLogLog: 100k distinct ids within 3 standard errors; repeats change nothing; small sets exact', async (t) => {
  const h = new HyperLogLog();
  for (let i = 0; i < 100_000; i++) h.add(`user-${i}`);
  const est = h.estimate();
  t.ok(Math.abs(est - 100_000) / 100_000 < 3 * HLL_STANDARD_ERROR, `estimate ${est} of 100000 (σ ${(HLL_STANDARD_ERROR * 100).toFixed(2)}%)`);
  const before = [...h.registers];
  for (let i = 0; i < 1000; i++) h.add(`user-${i}`);
  t.strictSame([...h.registers], before, 'adding ids already counted changes no register');
  const small = new HyperLogLog();
  for (let i = 0; i < 50; i++) small.add(`u${i}`);
  t.equal(small.estimate(), 50, 'linear counting: 50 exact');
  t.equal(new HyperLogLog().estimate(), 0);
});

t.test('HyperLogLog: a merge is the sketch of the union', async (t) => {
  const a = new HyperLogLog();
  const b = new HyperLogLog();
  const both = new HyperLogLog();
  for (let i = 0; i < 30_000; i++) { a.add(`x${i}`); both.add(`x${i}`); }
  for (let i = 20_000; i < 60_000; i++) { b.add(`x${i}`); both.add(`x${i}`); }
  a.merge(b);
  t.strictSame([...a.registers], [...both.registers], 'register for register');
  t.ok(Math.abs(a.estimate() - 60_000) / 60_000 < 3 * HLL_STANDARD_ERROR, `union ≈ 60000: ${a.estimate()}`);
  t.throws(() => new HyperLogLog(new Uint8Array(10)), /registers/);
});

t.test('LogHistogram: percentiles within a bucket (±9%), merged by adding', async (t) => {
  const h = new LogHistogram();
  for (let ms = 1; ms <= 1000; ms++) h.record(ms);
  for (const [q, want] of [[0.5, 500], [0.9, 900], [0.99, 990]] as const) {
    const got = h.percentile(q)!;
    t.ok(Math.abs(got - want) / want < 0.1, `p${q * 100} ${got} ≈ ${want}`);
  }
  t.equal(new LogHistogram().percentile(0.5), undefined, 'none without observations');
  const o = new LogHistogram();
  o.record(0.2);
  o.record(1e12);
  h.merge(o);
  t.equal(h.count(), 1002);
  t.equal(bucketOf(0.2), 0, 'below 1 ms: the first bucket');
  t.equal(bucketOf(1e12), h.counts.length - 1, 'beyond the range: the last');
  t.equal(bucketOf(Number.NaN), 0);
});

t.test('PeriodAggregate: encode/decode round-trips; merge sums counters and unions sketches', async (t) => {
  const a = new PeriodAggregate();
  a.byKind.text = 3; a.direct = 2; a.group = 1; a.mediaBytes = 100; a.signups = 1; a.pushSent = 4;
  a.latency.record(20); a.active.add('u1');
  const b = decodeAggregate(encodeAggregate(a));
  t.strictSame(b, a, 'round trip');
  b.active.add('u2');
  b.merge(a);
  t.equal(b.byKind.text, 6); t.equal(b.direct, 4); t.equal(b.mediaBytes, 200); t.equal(b.pushSent, 8);
  t.equal(b.latency.count(), 2);
  t.equal(b.active.estimate(), 2, 'u1 once, u2');
});

t.test('periods and ranges', async (t) => {
  t.equal(periodStart('2026-12-02'), Date.UTC(2026, 11, 2));
  t.equal(periodStart('2026-12'), Date.UTC(2026, 11, 1));
  t.equal(periodStart('2026-02-30'), undefined, 'no such day');
  t.equal(periodStart('yesterday'), undefined);
  t.strictSame(daysInRange('2026-12-30', '2027-01-02'), ['2026-12-30', '2026-12-31', '2027-01-01', '2027-01-02']);
  t.throws(() => daysInRange('2026-12-02', '2026-12-01'), { code: 'invalid' });
  t.throws(() => daysInRange('2025-01-01', '2026-12-01'), { code: 'invalid' }, 'over 400 days');
  t.throws(() => daysInRange('2026-12', '2026-12-01'), { code: 'invalid' }, 'a month is not a day');
});

t.test('Analytics on the embedded store: flushed rows, the day rolls over, a restart continues the day, two nodes merge', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-analytics-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new LmdbStore(join(dir, 'db'));
  t.teardown(() => store.close());
  let now = Date.UTC(2026, 11, 2, 23, 59, 0);
  const clock = () => now;
  const a = new Analytics(store, 'local', { flushMs: 3_600_000, now: clock });
  a.start();
  a.active('alice'); a.active('bob'); a.active('alice');
  a.message('text', false); a.message('image', false); a.message('text', true);
  a.mediaUploaded('alice', 1000); a.signup('alice'); a.pushSent(); a.delivered(40);
  await a.flush();
  now += 120_000; // 00:01 the next day
  a.active('carol'); a.message('text', false);
  await a.stop();

  let r = await analyticsReport(store, '2026-12-02', '2026-12-03');
  const [d1, d2] = r.days;
  t.equal(d1!.dau, 2); t.strictSame(d1!.messages.byKind.text, 2); t.equal(d1!.messages.byKind.image, 1);
  t.equal(d1!.messages.direct, 2); t.equal(d1!.messages.group, 1);
  t.equal(d1!.mediaBytes, 1000); t.equal(d1!.signups, 1); t.equal(d1!.pushSent, 1);
  t.equal(d1!.latency.count, 1); t.ok(Math.abs(d1!.latency.p50! - 40) / 40 < 0.1, `p50 ≈ 40: ${d1!.latency.p50}`);
  t.equal(d2!.dau, 1, 'the next day: carol'); t.equal(d2!.messages.direct, 1);
  t.strictSame(r.months, [{ month: '2026-12', mau: 3 }]);

  // A restart under the same source reads its rows back and adds to them; another node's row merges in.
  const again = new Analytics(store, 'local', { flushMs: 3_600_000, now: clock });
  again.start();
  again.active('dave'); again.message('text', false);
  await again.stop();
  const peer = new Analytics(store, 'n2', { flushMs: 3_600_000, now: clock });
  peer.start();
  peer.active('carol'); peer.active('erin'); peer.message('video', true);
  await peer.stop();
  r = await analyticsReport(store, '2026-12-03', '2026-12-03');
  t.equal(r.days[0]!.dau, 3, 'carol, dave, erin: carol counted once across nodes');
  t.equal(r.days[0]!.messages.direct, 2, 'before and after the restart');
  t.equal(r.days[0]!.messages.group, 1);
  t.equal(r.days[0]!.messages.byKind.video, 1);
  t.strictSame(r.months, [{ month: '2026-12', mau: 5 }]);
});
