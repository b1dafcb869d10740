import t from 'tap';
import { Sweeper } from '../../src/actors/sweeper.js';
import { fakeClock } from '../helpers/fake-clock.js';

t.test('each entity is swept a period after it joined, again while it asks, and not after it is removed', async (t) => {
  const clock = fakeClock(t);
  const swept: string[] = [];
  const at: number[] = [];
  const again = new Set(['b']);
  const s = new Sweeper<string>(400, 20, (item, now) => { swept.push(item); at.push(now); return again.has(item); });
  s.add('a'); // due at 400
  clock.tick(200);
  s.add('b'); // due at 600
  s.add('b'); // joining twice is joining once
  s.add('c');
  s.delete('c');
  clock.tick(199);
  t.strictSame(swept, [], 'nothing before its period');
  clock.tick(1); // 400
  t.strictSame(swept, ['a'], 'each is swept as it falls due, not all at once');
  clock.tick(199);
  t.strictSame(swept, ['a'], 'b is not due before 600');
  clock.tick(1); // 600: b asks again → due at 1000
  t.strictSame(swept, ['a', 'b'], 'c was removed');
  again.delete('b');
  clock.tick(399);
  t.strictSame(swept, ['a', 'b'], 'b waits a whole period again');
  clock.tick(1); // 1000
  t.strictSame(swept, ['a', 'b', 'b'], 'b came back once more');
  t.strictSame(at, [400, 600, 1000], 'each sweep is told the time of its tick');
  t.equal(clock.countTimers(), 0, 'then nothing is left to sweep and the timer stops');
  clock.tick(5000);
  t.strictSame(swept, ['a', 'b', 'b'], 'b asked no more');

  s.add('d');
  clock.tick(400);
  t.strictSame(swept, ['a', 'b', 'b', 'd'], 'a later entity starts the timer again');
});

t.test('entities that joined over a period are swept in slices, each at the first tick after it is due', async (t) => {
  const clock = fakeClock(t);
  const slices: number[][] = [];
  const s = new Sweeper<number>(1000, 100, (item, now) => {
    if (slices.at(-1)?.[0] !== now) slices.push([now]);
    slices.at(-1)!.push(item);
    return false;
  });
  for (let i = 0; i < 1000; i++) { s.add(i); clock.tick(1); } // one a millisecond
  clock.tick(1000);
  t.strictSame(slices.map(([now]) => now), [1000, 1100, 1200, 1300, 1400, 1500, 1600, 1700, 1800, 1900, 2000], 'eleven ticks, not one burst');
  t.strictSame(slices.map((x) => x.length - 1), [1, 100, 100, 100, 100, 100, 100, 100, 100, 100, 99], 'each tick takes those due by then');
  t.strictSame(slices.flatMap((x) => x.slice(1)), Array.from({ length: 1000 }, (_, i) => i), 'in the order they joined, each once');
});
