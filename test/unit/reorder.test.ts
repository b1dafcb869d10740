import t from 'tap';
import { ReorderBuffer } from '../../src/actors/reorder.js';

const seqs = (l: { seq: number }[]) => l.map((x) => x.seq);

t.test('writes are released in seq order whatever order they complete in', async (t) => {
  const b = new ReorderBuffer<string, 'ok' | 'failed'>();
  for (const s of [1, 2, 3, 4, 5]) b.add(s, `m${s}`);
  t.strictSame(b.settle(3, 'ok'), [], 'a later write done first waits');
  t.strictSame(b.settle(2, 'ok'), [], 'still waiting on 1');
  t.equal(b.get(3), 'm3', 'a settled write not yet released is still found');
  t.strictSame(b.settle(1, 'ok'), [
    { seq: 1, value: 'm1', outcome: 'ok' }, { seq: 2, value: 'm2', outcome: 'ok' }, { seq: 3, value: 'm3', outcome: 'ok' },
  ], '1 releases 1, 2 and 3 together, in order');
  t.equal(b.size, 2);
  t.equal(b.get(1), undefined, 'a released write is gone');
  t.strictSame(seqs(b.settle(5, 'ok')), []);
  t.strictSame(seqs(b.settle(4, 'ok')), [4, 5]);
  t.equal(b.size, 0);
});

t.test('a failed write in the middle is released in its place (skipped by the caller), and does not hold the rest', async (t) => {
  const b = new ReorderBuffer<number, 'ok' | 'failed'>();
  for (const s of [10, 11, 12]) b.add(s, s);
  t.strictSame(b.settle(12, 'ok'), []);
  const out = [...b.settle(10, 'ok'), ...b.settle(11, 'failed')];
  t.strictSame(out.map((x) => `${x.seq}:${x.outcome}`), ['10:ok', '11:failed', '12:ok']);
});

t.test('seqs need not be contiguous (another incarnation took some); an unknown or repeated outcome changes nothing', async (t) => {
  const b = new ReorderBuffer<number, boolean>();
  b.add(3, 3);
  b.add(7, 7);
  b.add(8, 8);
  t.throws(() => b.add(8, 8), 'a seq is issued once, in increasing order');
  t.strictSame(b.settle(5, true), [], 'never issued here');
  t.strictSame(seqs(b.settle(7, true)), []);
  t.strictSame(b.settle(7, false), [], 'a second outcome for 7 is ignored');
  t.strictSame(b.settle(3, true).map((x) => [x.seq, x.outcome]), [[3, true], [7, true]], 'the first outcome stands');
  t.strictSame(b.clear(), [8], 'clear hands back what was never released');
  t.equal(b.size, 0);
  t.strictSame(b.settle(8, true), [], 'and forgets it');
});

t.test('a long backlog: thousands in flight complete in reverse, released once in order', async (t) => {
  const b = new ReorderBuffer<number, true>();
  const n = 5000;
  for (let s = 1; s <= n; s++) b.add(s, s);
  const out: number[] = [];
  for (let s = n; s >= 2; s--) out.push(...seqs(b.settle(s, true)));
  t.strictSame(out, [], 'nothing released while seq 1 is out');
  out.push(...seqs(b.settle(1, true)));
  t.equal(out.length, n);
  t.ok(out.every((s, i) => s === i + 1), 'all of them, in seq order');
  // Interleaved: release as we go, so the buffer compacts its released prefix.
  for (let s = n + 1; s <= 3 * n; s++) b.add(s, s);
  const got: number[] = [];
  for (let s = n + 1; s <= 3 * n; s += 2) got.push(...seqs(b.settle(s + 1, true)), ...seqs(b.settle(s, true)));
  t.equal(got.length, 2 * n);
  t.ok(got.every((s, i) => s === n + 1 + i), 'pairs completed out of order come out in order');
  t.equal(b.size, 0);
});
