import t from 'tap';
import { Sweeper } from '../../src/actors/sweeper.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Periods of 400 ms and checks 100 ms away from any due time, so a busy machine doesn't change the outcome.
t.test('each entity is swept a period after it joined, again while it asks, and not after it is removed', async (t) => {
  const swept: string[] = [];
  const again = new Set(['b']);
  const s = new Sweeper<string>(400, 20, (item) => { swept.push(item); return again.has(item); });
  s.add('a'); // due at 400
  await sleep(200);
  s.add('b'); // due at 600
  s.add('b'); // joining twice is joining once
  s.add('c');
  s.delete('c');
  t.strictSame(swept, [], 'nothing before its period');
  await sleep(300); // 500
  t.strictSame(swept, ['a'], 'each is swept as it falls due, not all at once');
  await sleep(200); // 700: b swept at 600, asks again → due at 1000
  t.strictSame(swept, ['a', 'b'], 'c was removed');
  again.delete('b');
  await sleep(400); // 1100
  t.strictSame(swept, ['a', 'b', 'b'], 'b came back once more, then asked no more');
  await sleep(500);
  t.strictSame(swept, ['a', 'b', 'b'], 'nothing is left to sweep');
});
