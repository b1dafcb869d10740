import t from 'tap';
import { RecentWindow } from '../../src/actors/recent-window.js';

t.test('holds the last `size` messages as it grows, and forgets older ones', async (t) => {
  const w = new RecentWindow(64);
  for (let s = 1; s <= 200; s++) w.add(s, s % 3 === 0 ? 'alice' : 'bob', 'text');
  t.equal(w.get(200)?.from, 'bob');
  t.equal(w.get(137)?.from, 'bob', 'the 64th newest is held');
  t.equal(w.get(136), undefined, 'older ones are gone');
  t.strictSame(w.sendersIn(195, 200), new Set(['alice', 'bob']));
  t.equal(w.sendersIn(100, 200), undefined, 'a range it no longer holds');
});

t.test('entries survive growth, deletions included', async (t) => {
  const w = new RecentWindow(2048);
  w.add(5, 'alice', 'image');
  w.markDeleted(5);
  for (let s = 6; s <= 1000; s++) w.add(s, 'bob', 'text');
  t.strictSame(w.get(5), { from: 'alice', kind: 'image', deleted: true });
  t.strictSame(w.get(1000), { from: 'bob', kind: 'text', deleted: false });
  t.equal(w.get(4), undefined, 'never added');
  t.equal(w.sendersIn(3, 10), undefined, 'a range that includes a seq never added');
  t.strictSame(w.sendersIn(5, 10), new Set(['bob']));
});

t.test('a conversation that starts at a high seq (loaded from the store) grows from there', async (t) => {
  const w = new RecentWindow(2048);
  for (let s = 90_001; s <= 90_040; s++) w.add(s, 'carol', 'text');
  t.equal(w.get(90_001)?.from, 'carol');
  t.equal(w.get(90_040)?.from, 'carol');
});
