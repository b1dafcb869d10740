import t from 'tap';
import FakeTimers from '@sinonjs/fake-timers';
import { LATENCY_BUCKETS, Series, quantile } from '../../src/ops/latency-histogram.js';
import { LiveSeries, type LiveReading } from '../../src/ops/live-series.js';

/** Issue #16 §5: the series the ops console charts, kept by the node (src/ops/live-series.ts). */

t.test('quantile interpolates inside its bucket and answers the top bound above it', async (t) => {
  const bounds = [0.001, 0.01, 0.1];
  t.equal(quantile(bounds, [0, 0, 0, 0], 0.5), undefined, 'no observation, no quantile');
  t.equal(quantile(bounds, [10, 0, 0, 0], 0.5), 0.0005, 'half way through the first bucket, from 0');
  t.ok(Math.abs(quantile(bounds, [0, 10, 0, 0], 0.99)! - (0.001 + 0.009 * 0.99)) < 1e-12, 'linear inside the bucket');
  t.equal(quantile(bounds, [50, 0, 50, 0], 0.5), 0.001, 'the median at the end of the first half');
  t.equal(quantile(bounds, [99, 0, 0, 1], 0.999), 0.1, 'above the highest bound: that bound');
});

t.test('each point is the interval since the last: rates per second and the latencies observed in it', async (t) => {
  const clock = FakeTimers.install({ now: 1_000_000, toFake: ['setInterval', 'clearInterval', 'Date'] });
  t.teardown(() => clock.uninstall());
  const r: LiveReading = {
    connections: 2, sends: 0, deliveries: 0, errors: 0, sent: new Series(LATENCY_BUCKETS, {}), delivered: new Series(LATENCY_BUCKETS, {}),
    loopMaxMs: 3.14, heapBytes: 52_340_000, entities: 7,
  };
  const live = new LiveSeries(() => r, 2000, 3);
  t.teardown(() => live.stop());
  t.same(live.since(), [], 'no point before the first interval ends');

  r.sends = 10;
  r.deliveries = 30;
  for (let i = 0; i < 100; i++) r.sent.observe(0.002); // every tick in (0.001, 0.0025]
  clock.tick(2000);
  const [first] = live.since();
  t.match(first, {
    at: 1_002_000, connections: 2, sendsPerSec: 5, deliveriesPerSec: 15, errorsPerSec: 0,
    deliveredP50Ms: null, deliveredP99Ms: null, loopMaxMs: 3.1, heapMb: 52.3, entities: 7,
  });
  t.ok(first!.sentP99Ms! > 1 && first!.sentP99Ms! <= 2.5, `p99 inside the bucket: ${first!.sentP99Ms} ms`);

  r.delivered.observe(0.2); // one slow delivery, in the next interval only
  r.errors = 4;
  clock.tick(2000);
  const second = live.since(first!.at);
  t.equal(second.length, 1, 'since: only the points after it');
  t.match(second[0], { sendsPerSec: 0, sentP50Ms: null, errorsPerSec: 2 }, 'the earlier ticks are not this interval\'s');
  t.ok(second[0]!.deliveredP99Ms! > 100 && second[0]!.deliveredP99Ms! <= 250);

  clock.tick(4000);
  t.same(live.since().map((p) => p.at), [1_004_000, 1_006_000, 1_008_000], 'the oldest points go past `keep`');
});
