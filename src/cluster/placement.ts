/**
 * Placement, pure: entity → shard by a stable hash, shard → node by consistent hashing with virtual nodes
 * over the live members. Every node computes the same answer from the same member list, so nobody has to
 * ask anyone where a shard belongs; the lease table (shard-leases.ts) then records who actually holds it.
 *
 * The hash is FNV-1a (32 bits) written here rather than taken from a package: it is ten lines, it must
 * never change (a different hash after an upgrade would move every entity of a running cluster), and it
 * runs for every message routed. Ring points also go through murmur3's 32-bit finalizer, because FNV-1a
 * of strings that differ only in a trailing counter (`node-1#0`, `node-1#1`, …) clusters on the ring.
 */

const encoder = new TextEncoder();

/** FNV-1a over the UTF-8 bytes of `s`, as an unsigned 32-bit integer. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of encoder.encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** murmur3's fmix32: spreads nearby inputs over the whole 32-bit range. */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The shard of an entity: stable across processes, versions and machines. */
export function shardOf(type: string, id: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`shards must be a positive integer, not ${shards}`);
  return fnv1a(`${type}/${id}`) % shards;
}

/**
 * Where a shard sits on the ring: Fibonacci hashing (shard × 2^32/φ), not a random hash. Shards 0 … n-1 then
 * lie almost evenly around the ring for every n (the three-gap theorem), so a member's share of shards
 * follows its share of the ring and not also the luck of 256 random throws (which doubled the spread).
 */
const shardPoint = (shard: number): number => Math.imul(shard, 0x9e3779b9) >>> 0;

/**
 * A consistent-hash ring: each member stands at `vnodes` points; a shard belongs to the first member point
 * at or after its own point (wrapping). Adding a member only takes shards to it; removing one only gives
 * its shards away: no shard moves between two members that both stay.
 */
export class Ring {
  readonly members: readonly string[];
  private readonly points: Uint32Array;
  /** The member at each point, by index into `members`. */
  private readonly at: Uint32Array;

  constructor(members: readonly string[], readonly vnodes = 64) {
    if (!Number.isInteger(vnodes) || vnodes < 1) throw new RangeError(`vnodes must be a positive integer, not ${vnodes}`);
    // Sorted and unique: the ring depends on the set, not on the order a node happened to learn it in.
    this.members = [...new Set(members)].sort();
    const all: { point: number; member: number }[] = [];
    this.members.forEach((m, member) => {
      for (let v = 0; v < vnodes; v++) all.push({ point: mix32(fnv1a(`${m}#${v}`)), member });
    });
    // Ties (two points on one value) go to the smaller member name, the same everywhere.
    all.sort((a, b) => a.point - b.point || a.member - b.member);
    this.points = Uint32Array.from(all, (p) => p.point);
    this.at = Uint32Array.from(all, (p) => p.member);
  }

  /** The member owning `shard`, or undefined on an empty ring. */
  owner(shard: number): string | undefined {
    const n = this.points.length;
    if (n === 0) return undefined;
    const p = shardPoint(shard);
    // First point >= p (binary search), wrapping to the first point.
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < p) lo = mid + 1;
      else hi = mid;
    }
    return this.members[this.at[lo === n ? 0 : lo]!];
  }

  /** The shards of `0 … shards-1` that `node` owns, ascending. */
  owned(node: string, shards: number): number[] {
    const out: number[] = [];
    for (let s = 0; s < shards; s++) if (this.owner(s) === node) out.push(s);
    return out;
  }
}
