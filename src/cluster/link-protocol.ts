import type { Incarnation, LinkFrame, RefuseReason } from './link-frames.js';

/**
 * The link between nodes as two state machines — a tiny TCP over core NATS, which delivers at most once and
 * loses what was in flight when a client moves to another server. Pure: no I/O and no timers; the caller
 * passes the time in and publishes what `flush` returns (src/cluster/links.ts).
 *
 * A *stream* runs from one incarnation of a node to one incarnation of a peer; its items get seqs 1, 2, …
 *
 * - Sender, per peer: items wait until cumulatively acked; new ones go out in frames of up to
 *   `maxBatchItems`/`maxBatchBytes` on the next flush. With no ack for `rtoMs` (doubling to `rtoMaxMs`,
 *   back to `rtoMs` on progress) the oldest unacked items are sent again — `retransmitItems` of them, then
 *   the next ones as each partial ack shows where the next hole is (the receiver keeps what came after a
 *   hole, so one resent frame usually fills it). The window (`windowItems`, `windowBytes` of unacked items)
 *   bounds memory: past it `send` refuses and counts.
 * - Receiver, per peer: delivers items in seq order exactly once, keeps frames that came early (bounded by
 *   `oooFrames`/`oooBytes`; past it they are dropped and come again), and acks cumulatively, one ack for a
 *   whole burst of frames (what arrived before the next flush): at once when the burst brought `ackItems`
 *   or more, a resend, a duplicate or a hole (an ack then names the first seq it holds past the hole, so
 *   the sender resends just the hole), else at the next tick; on every reverse data frame for free.
 * - Incarnations: a sender learns its peer's by a hello before its first data frame, and every data frame
 *   names it, so a frame meant for a previous incarnation is refused (`stale`, naming the current one) and
 *   never delivered to a restarted receiver. The sender then tells its caller which items were not confirmed
 *   (`lost`, `restarted`) and starts a new stream at seq 1. A receiver that hears a newer incarnation of a
 *   sender starts over for it; frames of older incarnations are ignored. `peerGone` quarantines the peer's
 *   incarnation (Akka's quarantine): a node declared gone must come back as a new incarnation to be heard.
 */
export interface LinkOptions {
  /** Items per data frame. */
  maxBatchItems: number;
  /** Bytes of items per data frame (a larger item goes alone in its frame). */
  maxBatchBytes: number;
  /** Unacked items per peer; past it `send` refuses. */
  windowItems: number;
  /** Unacked bytes per peer; past it `send` refuses. */
  windowBytes: number;
  /** The first retransmission timeout; doubles on each timeout without progress, up to `rtoMaxMs`. */
  rtoMs: number;
  rtoMaxMs: number;
  /** Items resent at a timeout or a partial ack, from the oldest unacked. */
  retransmitItems: number;
  /**
   * A receiver acks at once after a burst that brought this many items since its last ack, or a resend, a
   * duplicate or a hole; otherwise at the next tick (TCP's delayed ack). An ack is a NATS message: with
   * a few items per burst, acking each burst cost as much as the items (bench/micro/link.ts).
   */
  ackItems: number;
  /** Early frames a receiver keeps per peer, and their bytes. */
  oooFrames: number;
  oooBytes: number;
}

export const LINK_DEFAULTS: Readonly<LinkOptions> = {
  maxBatchItems: 1024,
  maxBatchBytes: 64 * 1024,
  windowItems: 50_000,
  windowBytes: 16 * 1024 * 1024,
  rtoMs: 200,
  rtoMaxMs: 5_000,
  retransmitItems: 8 * 1024,
  ackItems: 512,
  oooFrames: 512,
  oooBytes: 16 * 1024 * 1024,
};

/** Why items were not confirmed: the peer restarted (a new incarnation), or refused us as gone. */
export type LostReason = 'restarted' | 'refused' | 'gone';

export interface LinkEvents {
  /** An item of `from`'s stream, in seq order, once. */
  deliver(from: string, item: Uint8Array): void;
  /** Items sent to `to` that its incarnation never confirmed, in seq order (some may have reached it before it died). */
  lost(to: string, items: Uint8Array[], why: LostReason): void;
  /** `deliver` threw; the item counts as delivered (the link goes on). */
  handlerError?(err: unknown): void;
  /** A data frame's first transmission to the ack that covered it, ms (the receiver's delayed ack included). */
  ackTime?(to: string, ms: number): void;
}

export interface Outgoing { to: string; frame: LinkFrame }

export interface LinkStats {
  /** Items accepted by `send`, first transmissions and retransmissions of them, frames out. */
  sentItems: number;
  retransmittedItems: number;
  framesOut: number;
  /** Items delivered to the handler; duplicates and early frames dropped; frames in. */
  deliveredItems: number;
  duplicateItems: number;
  earlyDropped: number;
  framesIn: number;
  /** `send` refused (window full); unconfirmed items handed to `lost`; discarded by `peerGone`. */
  refusedItems: number;
  lostItems: number;
  discardedItems: number;
  /** Now: unacked items and bytes over every peer; early frames held; peers with a sender. */
  unackedItems: number;
  unackedBytes: number;
  earlyFrames: number;
  peers: number;
  handlerErrors: number;
}

/** The sending side of one stream: items `acked + 1 … next - 1` are `items[head …]`. */
class Outbound {
  peerInc: Incarnation = 0; // 0: not learned yet (a hello is out)
  items: (Uint8Array | undefined)[] = [];
  head = 0;
  acked = 0;
  sent = 0; // every item up to here went out at least once
  next = 1;
  bytes = 0;
  rto: number;
  deadline = -1; // -1: no timer running
  recoverUpTo = 0; // after a timeout: acks below this pull the next burst
  resentUpTo = 0; // the end of the last burst
  burst = 0; // items in the next burst: doubles each round (TCP's slow start)
  holeFrom = 0; // the last hole resent, and when: not again for rtoMs
  holeAt = 0;
  helloDue = false;
  // One timed item at a time (TCP's RTT sample): the last of a first transmission, until an ack covers it.
  // Karn's rule: a resend clears it, since the ack can't tell which copy it answers.
  probe = 0;
  probeAt = 0;
  constructor(readonly peer: string, rto: number) { this.rto = rto; }
  get unacked(): number { return this.next - 1 - this.acked; }
}

/** The receiving side of one stream. */
class Inbound {
  expected = 1;
  early: DataFrame[] = []; // data frames above `expected`, by seq
  earlyBytes = 0;
  ackDue = false;
  heard = false; // frames since the last tick
  sinceAck = 0; // items delivered since the last ack went
  constructor(readonly node: string, readonly sinc: Incarnation) {}
}

type DataFrame = Extract<LinkFrame, { k: 'data' }>;

export class LinkState {
  private readonly opts: LinkOptions;
  private readonly out = new Map<string, Outbound>();
  private readonly in = new Map<string, Inbound>();
  /** Per node, the highest incarnation declared gone (by us, or by it refusing us): not heard again. */
  private readonly gone = new Map<string, Incarnation>();
  private readonly dirty = new Set<Outbound>();
  private readonly ackDue = new Set<Inbound>();
  private readonly extra: Outgoing[] = []; // retransmissions
  private readonly refusals = new Map<string, Outgoing>(); // one per (node, incarnation) per flush
  private readonly counts = {
    sentItems: 0, retransmittedItems: 0, framesOut: 0, deliveredItems: 0, duplicateItems: 0, earlyDropped: 0,
    framesIn: 0, refusedItems: 0, lostItems: 0, discardedItems: 0, handlerErrors: 0,
  };

  constructor(readonly self: string, readonly inc: Incarnation, private readonly events: LinkEvents, opts: Partial<LinkOptions> = {}) {
    this.opts = { ...LINK_DEFAULTS, ...opts };
    if (!Number.isSafeInteger(inc) || inc <= 0) throw new RangeError('an incarnation is a positive integer');
  }

  /** Queues an item for `to`; false (and counted) when its window is full. */
  send(to: string, item: Uint8Array): boolean {
    let o = this.out.get(to);
    if (!o) {
      o = new Outbound(to, this.opts.rtoMs);
      this.out.set(to, o);
      // Heard from already: that is its incarnation, no hello needed.
      const i = this.in.get(to);
      if (i) o.peerInc = i.sinc;
    }
    if (o.unacked >= this.opts.windowItems || (o.unacked > 0 && o.bytes + item.byteLength > this.opts.windowBytes)) {
      this.counts.refusedItems++;
      return false;
    }
    o.items.push(item);
    o.next++;
    o.bytes += item.byteLength;
    this.counts.sentItems++;
    if (o.peerInc === 0 && o.deadline < 0) o.helloDue = true;
    this.dirty.add(o);
    return true;
  }

  /** Handles one frame addressed to this node; items are delivered (through `events.deliver`) before it returns. */
  receive(f: LinkFrame, now: number): void {
    this.counts.framesIn++;
    if (f.from === this.self && f.finc === this.inc) return; // our own frame (a misrouted subject): nothing to learn
    const goneInc = this.gone.get(f.from) ?? 0;
    switch (f.k) {
      case 'data':
        if (f.finc <= goneInc) return this.refuse(f.from, f.finc, 'gone');
        if (f.tinc !== this.inc) return this.refuse(f.from, f.finc, 'stale');
        if (f.ack >= 0) this.acked(f.from, f.finc, f.ack, f.next, now);
        return this.data(f);
      case 'hello': {
        if (f.finc <= goneInc) return this.refuse(f.from, f.finc, 'gone');
        const i = this.inbound(f.from, f.finc);
        if (i) this.dueAck(i);
        return;
      }
      case 'ack':
        if (f.finc <= goneInc || f.tinc !== this.inc) return;
        return this.acked(f.from, f.finc, f.upTo, f.next, now);
      case 'refuse':
        if (f.finc <= goneInc || f.tinc !== this.inc) return;
        return this.refused(f.from, f.finc, f.why, now);
    }
  }

  /** Frames to publish now: new data (acks riding on it), hellos, acks, retransmissions, refusals. */
  flush(now: number): Outgoing[] {
    const frames: Outgoing[] = this.extra.splice(0);
    for (const r of this.refusals.values()) frames.push(r);
    this.refusals.clear();
    for (const o of this.dirty) {
      if (o.helloDue) {
        o.helloDue = false;
        frames.push({ to: o.peer, frame: { k: 'hello', from: this.self, finc: this.inc } });
        if (o.deadline < 0) o.deadline = now + o.rto;
      }
      if (o.peerInc === 0 || o.sent >= o.next - 1) continue;
      const from = o.sent + 1;
      o.sent = o.next - 1;
      if (o.probe === 0) { o.probe = o.sent; o.probeAt = now; }
      this.frames(o, from, o.sent, frames);
      if (o.deadline < 0) o.deadline = now + o.rto;
    }
    this.dirty.clear();
    for (const i of this.ackDue) {
      if (!i.ackDue) continue; // rode on a data frame
      i.ackDue = false;
      i.sinceAck = 0;
      frames.push({ to: i.node, frame: { k: 'ack', from: this.self, finc: this.inc, tinc: i.sinc, upTo: i.expected - 1, next: i.early[0]?.seq ?? 0 } });
    }
    this.ackDue.clear();
    this.counts.framesOut += frames.length;
    return frames;
  }

  /** True when `flush` has something to send. */
  get due(): boolean {
    return this.dirty.size > 0 || this.ackDue.size > 0 || this.extra.length > 0 || this.refusals.size > 0;
  }

  /**
   * The timer: retransmissions and hellos whose timeout passed, and an ack again to every peer heard from
   * since the last tick (in case the burst's ack was lost). Call it every few tens of ms, then `flush`.
   */
  tick(now: number): void {
    for (const o of this.out.values()) {
      if (o.deadline < 0 || now < o.deadline) continue;
      if (o.peerInc === 0) {
        if (o.unacked === 0) { o.deadline = -1; continue; } // nothing to say to it (after a refusal)
        o.helloDue = true;
        this.dirty.add(o);
      } else if (o.acked < o.sent) {
        this.recover(o, now);
      }
      o.rto = Math.min(o.rto * 2, this.opts.rtoMaxMs);
      o.deadline = o.acked < o.sent || o.peerInc === 0 ? now + o.rto : -1;
    }
    for (const i of this.in.values()) {
      if (!i.heard) continue;
      i.heard = false;
      this.dueAck(i);
    }
  }

  /**
   * After the connection came back (it may have lost whatever was in flight): resend now what is unacked
   * and ack every stream, without waiting for timeouts or doubling them.
   */
  kick(now: number): void {
    for (const o of this.out.values()) {
      if (o.peerInc === 0) {
        if (o.unacked > 0) { o.helloDue = true; this.dirty.add(o); }
      } else if (o.acked < o.sent) {
        this.recover(o, now);
        o.deadline = now + o.rto;
      }
    }
    for (const i of this.in.values()) this.dueAck(i);
  }

  /** Forgets `node`: its unacked items are discarded (counted) and its current incarnation is not heard again. */
  peerGone(node: string): void {
    const o = this.out.get(node);
    const i = this.in.get(node);
    const inc = Math.max(o?.peerInc ?? 0, i?.sinc ?? 0, this.gone.get(node) ?? 0);
    if (inc > 0) this.gone.set(node, inc);
    if (o) {
      // Handed to the caller, not dropped: what a gone node never confirmed may still have a place to go
      // (its shards' next owners). Some may have reached it before it went.
      const unconfirmed = o.items.slice(o.head) as Uint8Array[];
      this.counts.discardedItems += o.unacked;
      this.out.delete(node);
      this.dirty.delete(o);
      if (unconfirmed.length > 0) this.events.lost(node, unconfirmed, 'gone');
    }
    if (i) {
      this.in.delete(node);
      this.ackDue.delete(i);
    }
  }

  stats(): LinkStats {
    let unackedItems = 0;
    let unackedBytes = 0;
    let earlyFrames = 0;
    for (const o of this.out.values()) { unackedItems += o.unacked; unackedBytes += o.bytes; }
    for (const i of this.in.values()) earlyFrames += i.early.length;
    return { ...this.counts, unackedItems, unackedBytes, earlyFrames, peers: this.out.size };
  }

  /** Unacked items to one peer (tests, and a caller deciding whether to wait). */
  unacked(to: string): number {
    return this.out.get(to)?.unacked ?? 0;
  }

  // ---- receiving

  private data(f: DataFrame): void {
    const i = this.inbound(f.from, f.finc);
    if (!i) return; // an older incarnation of the sender
    i.heard = true;
    const end = f.seq + f.items.length - 1;
    if (end < i.expected) {
      this.counts.duplicateItems += f.items.length;
      return this.dueAck(i); // the sender is resending: tell it at once
    }
    if (f.seq > i.expected) {
      this.keepEarly(i, f);
      return this.dueAck(i); // a hole: the ack names it
    }
    const before = i.expected;
    this.deliver(f.from, i, f);
    const filled = i.early.length > 0;
    while (i.early.length > 0 && i.early[0]!.seq <= i.expected && this.in.get(f.from) === i) {
      const e = i.early.shift()!;
      i.earlyBytes -= itemBytes(e.items);
      this.deliver(f.from, i, e);
    }
    i.sinceAck += i.expected - before;
    if (f.resend || filled || i.sinceAck >= this.opts.ackItems) this.dueAck(i);
  }

  /** Delivers the part of `f` at and above `i.expected`; what is below was delivered before. */
  private deliver(from: string, i: Inbound, f: DataFrame): void {
    const skip = i.expected - f.seq;
    if (skip > 0) this.counts.duplicateItems += Math.min(skip, f.items.length);
    for (let k = Math.max(0, skip); k < f.items.length; k++) {
      i.expected++;
      this.counts.deliveredItems++;
      try {
        this.events.deliver(from, f.items[k]!);
      } catch (err) {
        this.counts.handlerErrors++;
        this.events.handlerError?.(err);
      }
      // The handler may have declared the sender gone (or something reset it): stop delivering this stream.
      if (this.in.get(from) !== i) return;
    }
  }

  private keepEarly(i: Inbound, f: DataFrame): void {
    const bytes = itemBytes(f.items);
    if (i.early.length >= this.opts.oooFrames || i.earlyBytes + bytes > this.opts.oooBytes) {
      this.counts.earlyDropped += f.items.length;
      return;
    }
    // Sorted by seq; a frame already held with the same first seq and at least as many items makes this one a duplicate.
    let lo = 0;
    let hi = i.early.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (i.early[mid]!.seq < f.seq) lo = mid + 1;
      else hi = mid;
    }
    const at = i.early[lo];
    if (at && at.seq === f.seq) {
      if (at.items.length >= f.items.length) { this.counts.duplicateItems += f.items.length; return; }
      i.earlyBytes -= itemBytes(at.items);
      i.early[lo] = f;
    } else {
      i.early.splice(lo, 0, f);
    }
    i.earlyBytes += bytes;
  }

  /** The receiving state for `node`'s incarnation `sinc` (a newer incarnation starts over), or none for an older one. */
  private inbound(node: string, sinc: Incarnation): Inbound | undefined {
    const cur = this.in.get(node);
    if (cur && cur.sinc === sinc) return cur;
    if (cur && cur.sinc > sinc) return undefined;
    if (cur) this.ackDue.delete(cur);
    // A newer incarnation of the node means the older one is dead: what we sent it is lost now, not at its refusal.
    // Its frames also tell us its incarnation, as an answer to our hello would.
    const o = this.out.get(node);
    if (o && o.peerInc !== 0 && o.peerInc < sinc) this.restart(o, sinc, 'restarted');
    else if (o && o.peerInc === 0) this.learn(o, sinc);
    const i = new Inbound(node, sinc);
    this.in.set(node, i);
    return i;
  }

  private dueAck(i: Inbound): void {
    i.ackDue = true;
    this.ackDue.add(i);
  }

  private refuse(node: string, finc: Incarnation, why: RefuseReason): void {
    this.refusals.set(`${node}\u0000${finc}`, { to: node, frame: { k: 'refuse', from: this.self, finc: this.inc, tinc: finc, why } });
  }

  // ---- sending

  private acked(node: string, finc: Incarnation, upTo: number, next: number, now: number): void {
    const o = this.out.get(node);
    if (!o) return;
    if (o.peerInc === 0) return this.learn(o, finc); // the answer to our hello: the stream starts now
    if (finc < o.peerInc) return; // an older incarnation's late ack
    if (finc > o.peerInc) return this.restart(o, finc, 'restarted');
    upTo = Math.min(upTo, o.sent); // nobody acks what was never sent
    const progress = upTo > o.acked;
    if (progress) {
      for (let s = o.acked; s < upTo; s++) {
        o.bytes -= o.items[o.head]!.byteLength;
        o.items[o.head++] = undefined;
      }
      o.acked = upTo;
      if (o.probe !== 0 && upTo >= o.probe) {
        this.events.ackTime?.(node, now - o.probeAt);
        o.probe = 0;
      }
      if (o.head >= 1024 && o.head * 2 >= o.items.length) {
        o.items = o.items.slice(o.head);
        o.head = 0;
      }
      o.rto = this.opts.rtoMs;
      o.deadline = o.acked < o.sent ? now + o.rto : -1;
      if (o.recoverUpTo > 0 && o.acked >= o.recoverUpTo) o.recoverUpTo = 0;
    }
    if (o.acked >= o.sent) return;
    if (next > o.acked + 1) {
      // The receiver holds items from `next` on: what lies between is lost (NATS keeps order on one path),
      // resend it now — once: the acks that follow name the same hole until the resend arrives.
      if (o.holeFrom === o.acked + 1 && now - o.holeAt < this.opts.rtoMs) return;
      o.holeFrom = o.acked + 1;
      o.holeAt = now;
      o.resentUpTo = Math.max(o.resentUpTo, this.resend(o, o.acked + 1, next - 1));
    } else if (o.recoverUpTo > 0 && progress && o.acked >= o.resentUpTo) {
      // After a timeout, the last burst all came and the receiver holds nothing beyond: a burst twice as big.
      o.burst = Math.min(o.burst * 2, this.opts.retransmitItems);
      o.resentUpTo = this.resend(o, o.acked + 1, Math.min(o.recoverUpTo, o.acked + o.burst));
    }
  }

  private refused(node: string, finc: Incarnation, why: RefuseReason, now: number): void {
    const o = this.out.get(node);
    if (why === 'gone') {
      // The peer declared this incarnation of us gone: quarantine it back, and wait for a new one of it.
      this.gone.set(node, Math.max(finc, this.gone.get(node) ?? 0));
      const i = this.in.get(node);
      if (i && i.sinc <= finc) { this.in.delete(node); this.ackDue.delete(i); }
      if (o) {
        this.restart(o, 0, 'refused');
        o.deadline = now + o.rto;
      }
      return;
    }
    if (!o || finc <= o.peerInc) return;
    if (o.peerInc === 0) return this.acked(node, finc, 0, 0, now); // told its incarnation before our hello came back
    this.restart(o, finc, 'restarted');
  }

  private learn(o: Outbound, peerInc: Incarnation): void {
    o.peerInc = peerInc;
    o.rto = this.opts.rtoMs;
    o.deadline = -1;
    o.helloDue = false;
    this.dirty.add(o);
  }

  /** The peer is a new incarnation (`peerInc`, 0 if unknown): hand back what the old one never confirmed, start over. */
  private restart(o: Outbound, peerInc: Incarnation, why: LostReason): void {
    const lost = o.items.slice(o.head) as Uint8Array[];
    o.items = [];
    o.head = 0;
    o.acked = 0;
    o.sent = 0;
    o.next = 1;
    o.bytes = 0;
    o.recoverUpTo = 0;
    o.resentUpTo = 0;
    o.holeFrom = 0;
    o.probe = 0;
    o.rto = this.opts.rtoMs;
    o.deadline = -1;
    o.peerInc = peerInc;
    o.helloDue = false;
    if (lost.length > 0) {
      this.counts.lostItems += lost.length;
      this.events.lost(o.peer, lost, why);
    }
  }

  /**
   * A timeout (or a reconnect): resend one frame's worth from the oldest unacked item. The acks say what
   * the receiver holds: the holes before what it holds are resent as they are named, and if it holds
   * nothing beyond, bursts double from there — so a receiver with little room is not flooded again with
   * what it had to drop, and a stream lost whole comes back in a few round trips.
   */
  private recover(o: Outbound, now: number): void {
    o.recoverUpTo = o.sent;
    o.burst = Math.min(this.opts.maxBatchItems, this.opts.retransmitItems);
    o.holeFrom = o.acked + 1;
    o.holeAt = now;
    o.resentUpTo = this.resend(o, o.acked + 1, o.acked + o.burst);
  }

  /** Resends seqs `from … to` (at most `retransmitItems` of them); returns the last seq resent. */
  private resend(o: Outbound, from: number, to: number): number {
    const upTo = Math.min(to, o.sent, from + this.opts.retransmitItems - 1);
    if (upTo < from) return from - 1;
    if (o.probe >= from) o.probe = 0;
    this.counts.retransmittedItems += upTo - from + 1;
    this.frames(o, from, upTo, this.extra, true);
    return upTo;
  }

  /** Data frames for seqs `from … to` of `o`, within the batch limits; each carries our ack of the peer's stream (it costs a few bytes). */
  private frames(o: Outbound, from: number, to: number, into: Outgoing[], resend = false): void {
    const i = this.in.get(o.peer);
    let ack = -1;
    let next = 0;
    if (i && i.sinc === o.peerInc) {
      ack = i.expected - 1;
      next = i.early[0]?.seq ?? 0;
      i.ackDue = false;
      i.sinceAck = 0;
    }
    let s = from;
    while (s <= to) {
      const start = o.head + (s - o.acked - 1);
      let n = 0;
      let bytes = 0;
      while (s + n <= to && n < this.opts.maxBatchItems) {
        const len = o.items[start + n]!.byteLength;
        if (n > 0 && bytes + len > this.opts.maxBatchBytes) break;
        bytes += len;
        n++;
      }
      into.push({
        to: o.peer,
        frame: { k: 'data', from: this.self, finc: this.inc, tinc: o.peerInc, seq: s, items: o.items.slice(start, start + n) as Uint8Array[], ack, next, resend },
      });
      s += n;
    }
  }
}

const itemBytes = (items: Uint8Array[]): number => {
  let n = 0;
  for (const it of items) n += it.byteLength;
  return n;
};
