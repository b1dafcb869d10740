import t from 'tap';
import { fnv1a, Ring, shardOf } from '../../src/cluster/placement.js';

t.test('the hashes are stable: FNV-1a test vectors, and shardOf the same on every run', async (t) => {
  // Published FNV-1a 32-bit vectors.
  t.equal(fnv1a(''), 0x811c9dc5);
  t.equal(fnv1a('a'), 0xe40c292c);
  t.equal(fnv1a('foobar'), 0xbf9cf968);
  // UTF-8, not UTF-16 code units.
  t.equal(fnv1a('é'), fnv1a('\u00e9'));
  t.not(fnv1a('é'), fnv1a('e'));
  // Pinned values: a change here moves every entity of a running cluster.
  t.equal(shardOf('conv', 'd.alice.bob', 256), fnv1a('conv/d.alice.bob') % 256);
  t.strictSame(
    [shardOf('user', 'u1', 256), shardOf('conv', 'g.team', 256), shardOf('group', 'team', 1024)],
    [fnv1a('user/u1') % 256, fnv1a('conv/g.team') % 256, fnv1a('group/team') % 1024],
  );
  // Computed independently (Python): FNV-1a('user/u1') = 0xa053c7a5.
  t.equal(shardOf('user', 'u1', 256), 165, 'user/u1 is pinned');
  t.equal(shardOf('conv', 'g.team', 256), 200, 'conv/g.team is pinned');
  t.not(fnv1a('user/x'), fnv1a('conv/x'), 'the type is part of the key');
  t.throws(() => shardOf('user', 'u1', 0), RangeError);
});

t.test('a ring depends on the member set only, and pins its owners', async (t) => {
  const a = new Ring(['n1', 'n2', 'n3']);
  const b = new Ring(['n3', 'n1', 'n2', 'n1']);
  for (let s = 0; s < 256; s++) t.equal(a.owner(s), b.owner(s), `shard ${s}`);
  t.equal(new Ring([]).owner(0), undefined, 'an empty ring owns nothing');
  t.strictSame(new Ring(['only']).owned('only', 8), [0, 1, 2, 3, 4, 5, 6, 7]);
  const owned = ['n1', 'n2', 'n3'].map((n) => a.owned(n, 256));
  t.equal(owned.flat().length, 256, 'every shard has one owner');
  t.strictSame(owned.flat().sort((x, y) => x - y), Array.from({ length: 256 }, (_, i) => i));
  t.strictSame(owned.map((o) => o.length), [83, 92, 81], 'pinned split of n1, n2, n3');
});

/** Shards per member over `trials` different name sets, as multiples of the mean. */
function spread(members: number, trials: number, shards = 256): { min: number; max: number } {
  let min = Infinity;
  let max = 0;
  for (let trial = 0; trial < trials; trial++) {
    const names = Array.from({ length: members }, (_, i) => `node-${trial}-${i}`);
    const ring = new Ring(names);
    const mean = shards / members;
    for (const n of names) {
      const c = ring.owned(n, shards).length / mean;
      min = Math.min(min, c);
      max = Math.max(max, c);
    }
  }
  return { min, max };
}

t.test('balance: 256 shards over 3 and 10 members stay within the documented bounds', async (t) => {
  // The bounds (docs/architecture.md): over any of 100 name sets, every member of 3 holds 0.7–1.4× the mean
  // (60–120 of 256), of 10 holds 0.45–1.6× (12–41). The floor of the spread is the binomial one of 256
  // shards over random ring arcs; more virtual nodes don't lower it.
  const three = spread(3, 100);
  t.ok(three.min >= 0.7 && three.max <= 1.4, `3 members: ${three.min.toFixed(2)}–${three.max.toFixed(2)}× the mean`);
  const ten = spread(10, 100);
  t.ok(ten.min >= 0.45 && ten.max <= 1.6, `10 members: ${ten.min.toFixed(2)}–${ten.max.toFixed(2)}× the mean`);
});

t.test('minimal movement: a member joining takes shards only to itself; one leaving gives only its own', async (t) => {
  for (const size of [3, 10]) {
    const names = Array.from({ length: size }, (_, i) => `node-${i}`);
    const before = new Ring(names);
    const joined = new Ring([...names, 'newcomer']);
    const left = new Ring(names.filter((n) => n !== 'node-1'));
    let toNew = 0;
    let fromLeft = 0;
    for (let s = 0; s < 256; s++) {
      const was = before.owner(s);
      if (joined.owner(s) !== was) {
        t.equal(joined.owner(s), 'newcomer', `join (${size}): shard ${s} moved only to the newcomer`);
        toNew++;
      }
      if (left.owner(s) !== was) {
        t.equal(was, 'node-1', `leave (${size}): shard ${s} moved only from the member that left`);
        fromLeft++;
      }
    }
    t.equal(fromLeft, before.owned('node-1', 256).length, `leave (${size}): every shard of the leaver moved`);
    t.ok(toNew > 256 / (size + 1) / 2 && toNew < (256 / (size + 1)) * 2, `join (${size}): the newcomer took ${toNew}, about its share`);
  }
});
