import t from 'tap';
import { start, stop } from 'nact';
import { Region, type Entity } from '../../src/actors/region.js';
import { EventWindow, TopN } from '../../src/actors/supervision-view.js';
import type { Envelope } from '../../src/messages/seam.js';

/**
 * Issue #16 §1: the supervision view of a region — counts over the last minute and hour, the busiest
 * mailboxes, crash loops with their reasons — bounded whatever the number of entities. The windows are
 * pure (time is passed in); the region runs on a real nact system.
 */

t.test('events: the last minute and the last hour, old minutes forgotten', async (t) => {
  const w = new EventWindow();
  const at = (min: number, sec = 0) => min * 60_000 + sec * 1000;
  w.add('spawned', at(10, 5));
  w.add('crashed', at(10, 30));
  w.add('crashed', at(11, 1));
  t.same(w.read(at(11, 2)).minute, { spawned: 1, passivated: 0, crashed: 2, stopped: 0 }, 'this minute and the one before');
  t.same(w.read(at(12, 30)).minute, { spawned: 0, passivated: 0, crashed: 1, stopped: 0 }, 'two minutes on, the first is out of the minute');
  t.equal(w.read(at(12, 30)).hour.crashed, 2, 'but in the hour');
  t.same(w.read(at(70, 59)).hour, { spawned: 0, passivated: 0, crashed: 1, stopped: 0 }, 'an hour on, only the minute-11 crash is left');
  t.same(w.read(at(200)).hour, { spawned: 0, passivated: 0, crashed: 0, stopped: 0 }, 'hours later, nothing');
  w.add('stopped', at(200, 1));
  t.equal(w.read(at(200, 2)).hour.stopped, 1, 'and it counts again');
});

t.test('top N: the largest, largest first, in one pass', async (t) => {
  const top = new TopN<number>(3);
  for (const x of [5, 1, 9, 3, 9, 7, 2]) top.offer(x, () => x);
  t.same(top.get(), [9, 9, 7]);
  const none = new TopN<number>(0);
  none.offer(1, () => 1);
  t.same(none.get(), []);
});

t.test('a region: loading entities and their mailboxes, crash loops flagged with the reason and the message', async (t) => {
  const system = start();
  t.teardown(() => stop(system));
  let releaseLoad!: () => void;
  const loaded = new Promise<void>((r) => { releaseLoad = r; });
  const handled: string[] = [];
  type M = Envelope & { t: string };
  const region = new Region<M>(system, {
    type: 'conv',
    load: async (id) => {
      if (id === 'slow') await loaded;
      return {
        handle(m: M) {
          if (m.t === 'poison') throw new Error(`cannot digest ${id}\nstack…`);
          handled.push(`${id}:${m.t}`);
        },
      } satisfies Entity<M>;
    },
  }, () => undefined, 60_000);
  t.teardown(() => region.stopAll());

  for (let i = 0; i < 5; i++) region.tell('slow', { t: `m${i}` });
  region.tell('quick', { t: 'hello' });
  await new Promise((r) => setTimeout(r, 20));
  let v = region.view(10);
  t.equal(v.active, 2);
  t.equal(v.loading, 1, 'one entity waits for its state');
  t.match(v.busiest, [{ id: 'slow', state: 'loading' }], 'the busiest mailbox is the loading one');
  t.ok(v.busiest[0]!.mailbox >= 4, `with its messages (${v.busiest[0]!.mailbox})`);
  t.equal(v.last.minute.spawned, 2);

  for (let i = 0; i < 3; i++) {
    region.tell('bad', { t: 'poison' });
    await new Promise((r) => setTimeout(r, 20));
  }
  v = region.view(10);
  t.match(v.crashLooping, [{ id: 'bad', state: 'crashing', recentCrashes: 3 }], 'three crashes in the window: a crash loop');
  t.match(v.lastCrashes[0], { id: 'bad', reason: 'cannot digest bad', message: 'poison', stopped: false }, 'the reason, first line only, and the message that did it');
  t.equal(v.last.minute.crashed, 3);
  for (let i = 0; i < 2; i++) {
    region.tell('bad', { t: 'poison' });
    await new Promise((r) => setTimeout(r, 20));
  }
  v = region.view(10);
  t.match(v.lastCrashes[0], { id: 'bad', stopped: true }, 'the fifth stops it');
  t.equal(v.last.minute.stopped, 1);
  t.same(v.crashLooping, [], 'a stopped entity is no longer live');

  releaseLoad();
  await new Promise((r) => setTimeout(r, 20));
  t.same(handled.filter((h) => h.startsWith('slow')), ['slow:m0', 'slow:m1', 'slow:m2', 'slow:m3', 'slow:m4'], 'the loaded entity takes its mailbox in order');
  t.same(region.view(10).busiest, [], 'and no mailbox is waiting');
});
