import { Ring, shardOf } from '../../src/cluster/placement.js';
import { directConversationId } from '../../src/protocol/ids.js';
import type { StreamSpec, VuSpec } from '../load/messages.js';

/** A node of the cluster under test: its member name (as /v1/admin/cluster says) and its URL. */
export interface ClusterNodeRef { name: string; url: string }

/**
 * The hops of one 1:1 message from a to b and its receipts (docs/architecture.md, "The path of one
 * message"): a's socket → the conversation (send), the conversation → a's socket (the `sent` tick), the
 * conversation → b's user entity (deliver), b's user → b's socket (push), b's socket → b's user (ack), b's
 * user → the conversation (delivered), the conversation → a's socket (the receipt, over pub/sub).
 */
export const MESSAGE_HOPS = ['send', 'sent', 'deliver', 'push', 'ack', 'delivered', 'receipt'] as const;
export type MessageHop = (typeof MESSAGE_HOPS)[number];

export interface Crossing {
  pairs: number;
  /** Pairs whose two users are connected to different nodes. */
  split_pairs: number;
  /** Of those, pairs whose conversation is owned by a third node. */
  conv_on_third_node: number;
  /** Per hop: the share of messages for which it goes from one node to another. */
  hop_crosses: Record<MessageHop, number>;
  /** How many of the 7 hops cross nodes, averaged over messages. */
  crossing_hops_per_msg: number;
  /** Virtual users connected to each node. */
  sockets_by_node: Record<string, number>;
}

/**
 * Chooses each user's node so that the two users of a pair sit on different nodes and, with three nodes or
 * more, neither on the node that owns their conversation (placement is deterministic: the conversation's
 * shard, then the ring over the members, which is the lease table once the cluster has settled). The
 * user entities fall where the ring puts them: their hops are counted, not chosen.
 */
export function placeAcrossNodes(vus: readonly VuSpec[], streams: readonly StreamSpec[], nodes: readonly ClusterNodeRef[], shards: number): { vus: VuSpec[]; crossing: Crossing } {
  if (!nodes.length) throw new Error('placeAcrossNodes: no nodes');
  const ring = new Ring(nodes.map((n) => n.name));
  const owner = (type: string, id: string) => ring.owner(shardOf(type, id, shards))!;
  const byIdx = new Map(vus.map((v) => [v.idx, v]));
  const nodeOf = new Map<number, ClusterNodeRef>();
  const turn = new Map<string, number>();
  let split = 0, third = 0, pairs = 0;
  for (const s of streams) {
    const a = byIdx.get(s.senders[0]!)!, b = byIdx.get(s.recipients[0]!)!;
    if (nodeOf.has(a.idx) || nodeOf.has(b.idx)) continue; // the pair's other stream
    pairs++;
    const conv = owner('conv', directConversationId(a.user!, b.user!));
    const others = nodes.filter((n) => n.name !== conv);
    // Alternate who takes which node, so that each node holds as many senders as recipients.
    const k = turn.get(conv) ?? 0;
    turn.set(conv, k + 1);
    const [na, nb] = others.length >= 2
      ? [others[k % others.length]!, others[(k + 1) % others.length]!]
      : others.length === 1 ? (k % 2 ? [others[0]!, nodes.find((n) => n.name === conv)!] : [nodes.find((n) => n.name === conv)!, others[0]!]) : [nodes[0]!, nodes[0]!];
    nodeOf.set(a.idx, na);
    nodeOf.set(b.idx, nb);
    if (na !== nb) { split++; if (na.name !== conv && nb.name !== conv) third++; }
  }
  const placed = vus.map((v) => ({ ...v, url: (nodeOf.get(v.idx) ?? nodes[v.idx % nodes.length]!).url }));
  const hops = Object.fromEntries(MESSAGE_HOPS.map((h) => [h, 0])) as Record<MessageHop, number>;
  let messages = 0;
  for (const s of streams) {
    const a = byIdx.get(s.senders[0]!)!, b = byIdx.get(s.recipients[0]!)!;
    const conv = owner('conv', directConversationId(a.user!, b.user!));
    const sa = nodeOf.get(a.idx)!.name, sb = nodeOf.get(b.idx)!.name, ub = owner('user', b.user!);
    const crosses: Record<MessageHop, boolean> = { send: sa !== conv, sent: sa !== conv, deliver: conv !== ub, push: ub !== sb, ack: sb !== ub, delivered: ub !== conv, receipt: conv !== sa };
    for (const h of MESSAGE_HOPS) if (crosses[h]) hops[h]++;
    messages++;
  }
  const sockets: Record<string, number> = Object.fromEntries(nodes.map((n) => [n.name, 0]));
  for (const v of vus) sockets[(nodeOf.get(v.idx) ?? nodes[v.idx % nodes.length]!).name]!++;
  const share = (n: number) => (messages ? Math.round((n / messages) * 1000) / 1000 : 0);
  return {
    vus: placed,
    crossing: {
      pairs, split_pairs: split, conv_on_third_node: third,
      hop_crosses: Object.fromEntries(MESSAGE_HOPS.map((h) => [h, share(hops[h])])) as Record<MessageHop, number>,
      crossing_hops_per_msg: messages ? Math.round((MESSAGE_HOPS.reduce((x, h) => x + hops[h], 0) / messages) * 100) / 100 : 0,
      sockets_by_node: sockets,
    },
  };
}

/** Shards per member on the ring: what the lease table shows once every node holds what the ring gives it. */
export function ringShares(members: readonly string[], shards: number): Record<string, number> {
  const ring = new Ring(members);
  const out: Record<string, number> = Object.fromEntries([...members].sort().map((m) => [m, 0]));
  for (let s = 0; s < shards; s++) out[ring.owner(s)!]!++;
  return out;
}
