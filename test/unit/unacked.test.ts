import t from 'tap';
import { Unacked } from '../../src/actors/unacked.js';

const ptrs = (q: Unacked<{ ptr: number; v?: string }>) => [...q.values()].map((d) => d.ptr);

t.test('deliveries leave in ptr order, from the head', async (t) => {
  const q = new Unacked<{ ptr: number }>();
  for (const ptr of [1, 2, 3, 5]) q.add({ ptr });
  t.equal(q.size, 4);
  const acked: number[] = [];
  for (let d = q.first(); d && d.ptr <= 3; d = q.first()) { q.shift(); acked.push(d.ptr); }
  t.same(acked, [1, 2, 3], 'an ack up to 3 takes 1..3');
  t.same(ptrs(q), [5], 'and leaves the rest');
  q.shift();
  t.equal(q.size, 0);
  t.equal(q.first(), undefined, 'empty');
  q.shift(); // nothing to remove
  t.equal(q.size, 0, 'stays empty');
  q.add({ ptr: 9 });
  t.same(ptrs(q), [9], 'and takes new ones after draining');
});

t.test('a ptr sent again takes its own place; one below the newest goes in order', async (t) => {
  const q = new Unacked<{ ptr: number; v?: string }>();
  for (const ptr of [10, 20, 30]) q.add({ ptr, v: 'first' });
  q.add({ ptr: 20, v: 'again' });
  t.same(ptrs(q), [10, 20, 30], 'no duplicate');
  t.equal([...q.values()][1]!.v, 'again', 'the newer entry replaced the older');
  q.add({ ptr: 15 });
  q.add({ ptr: 5 });
  t.same(ptrs(q), [5, 10, 15, 20, 30], 'kept in ptr order');
  t.equal(q.size, 5);
});

t.test('a long-lived queue compacts as its head advances', async (t) => {
  const q = new Unacked<{ ptr: number }>();
  let next = 1;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 100; i++) q.add({ ptr: next++ });
    for (let i = 0; i < 99; i++) q.shift(); // one more stays each round: the queue never empties
  }
  t.equal(q.size, 50, 'one more left after each round');
  t.same(ptrs(q), Array.from({ length: 50 }, (_, i) => 4951 + i), 'the newest, in order (the oldest were taken)');
  t.ok((q as unknown as { items: unknown[] }).items.length < 2048, 'acked entries are not kept');
});
