import type { Test } from 'tap';
import { timedStore } from '../../src/ops/store-timing.js';
import { Metrics } from '../../src/ops/metrics.js';
import { ParleyError } from '../../src/protocol/errors.js';
import type { Message } from '../../src/protocol/frames.js';
import type { Store } from '../../src/store/store.js';

/**
 * The store timing wrapper (src/ops/store-timing.ts) around a real store (LMDB: test/unit/store-timing.test.ts;
 * Cassandra: test/scylla/store-timing.test.ts): every method is timed under its own name from call to
 * settling, failures are counted, and the callers see exactly what the store answers. The clock is injected:
 * each case says what it reads at the call and at the answer.
 */
export function runStoreTiming(t: Test, open: () => Promise<Store>): void {
  /** A fresh store, its timed wrapper, the metrics it reports to, and the clock's readings to hand out (ms). */
  async function setup(t: Test): Promise<{ store: Store; timed: Store; metrics: Metrics; readings: number[] }> {
    const store = await open();
    t.teardown(() => store.close());
    const metrics = new Metrics();
    const readings: number[] = [];
    const timed = timedStore(store, metrics, () => {
      if (!readings.length) throw new Error('the clock was read more often than the test said');
      return readings.shift()!;
    });
    return { store, timed, metrics, readings };
  }
  // Each case in a conversation of its own: the stores may be shared by the cases.
  let convs = 0;
  const conv = () => `d.ua${++convs}.ub${Date.now().toString(36)}`;
  const message = (c: string, seq: number): Message => ({ conv: c, seq, from: 'ua', dev: 'd1', cid: `c${seq}`, kind: 'text', ts: 1000 + seq, body: { text: `m${seq}` } });
  const sample = (text: string, line: string): number | undefined => {
    const m = new RegExp(`^${line.replace(/[{}()[\].+*?^$|\\]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };

  t.test('each call is timed under its method, from the call to its answer, and answers as the store does', async (t) => {
    const { store, timed, metrics, readings } = await setup(t);
    const c = conv();
    t.equal(timed.kind, store.kind, 'what is not a method is the store\'s');
    readings.push(1000, 1250); // the append takes 250 ms
    await timed.appendMessage(message(c, 1));
    readings.push(2000, 2000.4); // the read 0.4 ms
    const got = await timed.getMessage(c, 1);
    t.same(got, await store.getMessage(c, 1), 'the same answer as the store itself');
    readings.push(3000, 3000.05, 3000, 3000.2);
    t.equal(await timed.lastSeq(c), 1);
    t.equal(await timed.lastSeq(c), 1);
    t.same(readings, [], 'two clock readings a call');

    const text = await metrics.render();
    t.equal(sample(text, 'parley_store_seconds_bucket{op="appendMessage",le="0.1"}'), 0);
    t.equal(sample(text, 'parley_store_seconds_bucket{op="appendMessage",le="0.25"}'), 1, '250 ms is in the 0.25 s bucket');
    t.equal(sample(text, 'parley_store_seconds_sum{op="appendMessage"}'), 0.25);
    t.equal(sample(text, 'parley_store_seconds_bucket{op="getMessage",le="0.0005"}'), 1, '0.4 ms');
    t.equal(sample(text, 'parley_store_seconds_bucket{op="getMessage",le="0.00025"}'), 0);
    t.equal(sample(text, 'parley_store_seconds_count{op="lastSeq"}'), 2);
    t.equal(sample(text, 'parley_store_seconds_bucket{op="lastSeq",le="0.0001"}'), 1, '0.05 ms');
    const ops = new Set([...text.matchAll(/^parley_store_seconds_count\{op="(\w+)"\}/gm)].map((m) => m[1]));
    t.same([...ops].sort(), ['appendMessage', 'getMessage', 'lastSeq'], 'only what was called from outside: the store\'s own calls inside it are not counted');
  });

  t.test('a failure: the caller gets the store\'s own rejection, and it is timed and counted by operation', async (t) => {
    const { timed, metrics, readings } = await setup(t);
    const c = conv();
    readings.push(0, 1, 10, 11);
    const first = await timed.claimEpoch(`c/${c}`);
    await timed.claimEpoch(`c/${c}`); // a newer activation: the first epoch is stale
    readings.push(20, 23);
    const err = await timed.reserve(`c/${c}`, first.epoch, 1000).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof ParleyError && err.code === 'stale_owner', 'rejected as the store rejects: stale_owner');
    // Unhandled, a rejection still surfaces: the wrapper's promise rejects, it does not swallow it.
    readings.push(30, 31);
    const unhandled = new Promise<unknown>((resolve) => process.once('unhandledRejection', resolve));
    void timed.reserve(`c/${c}`, first.epoch, 2000);
    t.ok((await unhandled) instanceof ParleyError, 'a rejection nobody handles is still an unhandled rejection');

    const text = await metrics.render();
    t.equal(sample(text, 'parley_store_errors_total{op="reserve"}'), 2);
    t.equal(sample(text, 'parley_store_errors_total{op="claimEpoch"}'), undefined, 'no error where none failed');
    t.equal(sample(text, 'parley_store_seconds_count{op="reserve"}'), 2, 'failures are timed too');
    t.equal(sample(text, 'parley_store_seconds_sum{op="reserve"}'), 0.004);
  });

  t.test('concurrent calls: each is timed once, from its own start to its own answer', async (t) => {
    const { timed, metrics, readings } = await setup(t);
    const c = conv();
    // Three appends start at 0, 1 and 2 ms; the store answers them in its order, the clock reads 5, 6, 7 ms.
    readings.push(0, 1, 2, 5, 6, 7);
    await Promise.all([1, 2, 3].map((s) => timed.appendMessage(message(c, s))));
    const text = await metrics.render();
    t.equal(sample(text, 'parley_store_seconds_count{op="appendMessage"}'), 3);
    t.equal(Math.round(sample(text, 'parley_store_seconds_sum{op="appendMessage"}')! * 1e6), 15_000, '5 + 5 + 5 ms');
  });
}
