import t from 'tap';
import { LinkState, type LinkOptions, type LostReason, type Outgoing } from '../../src/cluster/link-protocol.js';
import { LINK_VERSION, LinkDecodeError, decodeLinkFrame, encodeLinkFrame, type LinkFrame } from '../../src/cluster/link-frames.js';
import { Packr } from 'msgpackr';

// The link's state machines with time passed in by hand: no timers, no sockets. Every frame crosses the
// codec (encoded, then decoded) on its way, as it would over NATS.

const item = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};
const num = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);

interface End {
  name: string;
  state: LinkState;
  got: Map<string, number[]>;
  lost: { to: string; items: number[]; why: LostReason }[];
}

/** An endpoint; its acks go after every burst (ackItems 1) unless the test says otherwise. */
function end(name: string, inc: number, opts: Partial<LinkOptions> = {}): End {
  const e: End = { name, state: undefined as unknown as LinkState, got: new Map(), lost: [] };
  e.state = new LinkState(name, inc, {
    deliver: (from, it) => {
      const l = e.got.get(from) ?? [];
      l.push(num(it));
      e.got.set(from, l);
    },
    lost: (to, items, why) => e.lost.push({ to, items: items.map(num), why }),
  }, { ackItems: 1, ...opts });
  return e;
}

const wire = (o: Outgoing): LinkFrame => decodeLinkFrame(encodeLinkFrame(o.frame));
const range = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** Hands every frame to the endpoint it is addressed to, until nobody has anything to say. Returns the frames seen. */
function settle(ends: End[], now: number, keep: (o: Outgoing) => boolean = () => true): Outgoing[] {
  const byName = new Map(ends.map((e) => [e.name, e]));
  const seen: Outgoing[] = [];
  for (let round = 0; round < 1000; round++) {
    let any = false;
    for (const e of ends) {
      for (const o of e.state.flush(now)) {
        any = true;
        seen.push(o);
        if (keep(o)) byName.get(o.to)?.state.receive(wire(o), now);
      }
    }
    if (!any) return seen;
  }
  throw new Error('the endpoints never went quiet');
}

const sendAll = (e: End, to: string, ns: number[]): void => {
  for (const n of ns) if (!e.state.send(to, item(n))) throw new Error(`refused ${n}`);
};

t.test('a burst of sends: a hello first, then frames of at most maxBatchItems / maxBatchBytes, delivered in order, acked once', async (t) => {
  const a = end('a', 10);
  const b = end('b', 20);
  sendAll(a, 'b', range(1, 2500));
  let out = a.state.flush(0);
  t.strictSame(out.map((o) => o.frame.k), ['hello'], 'nothing is sent before the peer\'s incarnation is known');
  b.state.receive(wire(out[0]!), 0);
  out = b.state.flush(0);
  t.strictSame(out.map((o) => [o.frame.k, o.to]), [['ack', 'a']], 'the hello is answered with an ack naming b\'s incarnation');
  a.state.receive(wire(out[0]!), 0);
  out = a.state.flush(0);
  t.strictSame(out.map((o) => (o.frame.k === 'data' ? [o.frame.seq, o.frame.items.length, o.frame.tinc] : o.frame.k)), [[1, 1024, 20], [1025, 1024, 20], [2049, 452, 20]]);
  for (const o of out) b.state.receive(wire(o), 0);
  t.strictSame(b.got.get('a'), range(1, 2500));
  out = b.state.flush(0);
  t.strictSame(out.map((o) => o.frame), [{ k: 'ack', from: 'b', finc: 20, tinc: 10, upTo: 2500, next: 0 }], 'one ack for the burst of three frames');
  a.state.receive(wire(out[0]!), 0);
  t.equal(a.state.unacked('b'), 0);
  t.equal(a.state.stats().unackedBytes, 0);

  // Big items: the byte bound cuts frames; an item above it goes alone.
  const c = end('c', 30, { maxBatchBytes: 10_000 });
  const d = end('d', 40);
  const big = (n: number, size: number) => { const x = new Uint8Array(size); x.set(item(n)); return x; };
  for (const [n, size] of [[1, 4000], [2, 4000], [3, 4000], [4, 25_000], [5, 100]] as const) c.state.send('d', big(n, size));
  const frames = settle([c, d], 0).filter((o) => o.frame.k === 'data');
  t.strictSame(frames.map((o) => (o.frame.k === 'data' ? o.frame.items.map(num) : [])), [[1, 2], [3], [4], [5]]);
  t.strictSame(d.got.get('c'), [1, 2, 3, 4, 5]);
});

t.test('traffic both ways: the acks ride on the reverse data frames', async (t) => {
  const a = end('a', 1);
  const b = end('b', 2);
  sendAll(a, 'b', [1]);
  sendAll(b, 'a', [1]);
  settle([a, b], 0);
  sendAll(a, 'b', range(2, 10));
  settle([a, b], 0, (o) => o.to === 'b'); // b's ack of them is lost
  sendAll(b, 'a', range(2, 10));
  const out = b.state.flush(0);
  t.strictSame(out.map((o) => o.frame.k), ['data'], 'no ack of its own');
  const f = out[0]!.frame;
  t.ok(f.k === 'data' && f.ack === 10, 'the data frame acks a\'s items up to 10');
  a.state.receive(wire(out[0]!), 0);
  t.equal(a.state.unacked('b'), 0);
});

t.test('a node already heard from needs no hello: the first frame back is data, addressed to that incarnation', async (t) => {
  const a = end('a', 1);
  const b = end('b', 2);
  sendAll(a, 'b', [1]);
  settle([a, b], 0);
  sendAll(b, 'a', [1]);
  const out = b.state.flush(0);
  t.strictSame(out.map((o) => o.frame.k === 'data' && [o.frame.tinc, o.frame.seq]), [[1, 1]]);
  a.state.receive(wire(out[0]!), 0);
  t.strictSame(a.got.get('b'), [1]);
});

t.test('delayed acks: a small burst is acked at the next tick; ackItems items, a resend, a duplicate or a hole at once', async (t) => {
  const a = end('a', 1, { maxBatchItems: 10 });
  const b = end('b', 2, { ackItems: 100 });
  sendAll(a, 'b', [0]);
  settle([a, b], 0);
  b.state.tick(0);
  settle([a, b], 0);
  t.equal(a.state.unacked('b'), 0);
  const acks = () => b.state.flush(10).filter((o) => o.frame.k === 'ack');
  sendAll(a, 'b', range(1, 50));
  for (const o of a.state.flush(10)) b.state.receive(wire(o), 10);
  t.equal(acks().length, 0, '50 items: no ack yet');
  b.state.tick(50);
  const late = b.state.flush(50);
  t.strictSame(late.map((o) => o.frame.k === 'ack' && o.frame.upTo), [51], 'the tick acks them (item n has seq n + 1)');
  a.state.receive(wire(late[0]!), 50);
  sendAll(a, 'b', range(51, 150));
  for (const o of a.state.flush(60)) b.state.receive(wire(o), 60);
  t.strictSame(acks().map((o) => o.frame.k === 'ack' && o.frame.upTo), [151], '100 items: at once');
  sendAll(a, 'b', range(151, 170));
  const [f1, f2] = a.state.flush(70);
  b.state.receive(wire(f2!), 70);
  t.strictSame(acks().map((o) => o.frame.k === 'ack' && [o.frame.upTo, o.frame.next]), [[151, 162]], 'a hole: at once, naming what is held past it');
  b.state.receive(wire(f1!), 70);
  t.strictSame(acks().map((o) => o.frame.k === 'ack' && o.frame.upTo), [171], 'the hole filled: at once');
  b.state.receive(wire(f1!), 70);
  t.strictSame(acks().map((o) => o.frame.k === 'ack' && o.frame.upTo), [171], 'a duplicate: at once');
});

t.test('loss: the oldest unacked items are resent after rtoMs, which doubles without progress and resets on it', async (t) => {
  const a = end('a', 1);
  const b = end('b', 2);
  sendAll(a, 'b', [0]);
  settle([a, b], 0);
  sendAll(a, 'b', range(1, 5));
  const lost = settle([a, b], 1000, (o) => o.frame.k !== 'data');
  t.equal(lost.length, 1, 'the frame went and was lost');
  const timeouts: number[] = [];
  for (let now = 1000; now <= 3000 && timeouts.length < 3; now += 10) {
    a.state.tick(now);
    const out = a.state.flush(now);
    if (out.some((o) => o.frame.k === 'data')) timeouts.push(now - 1000);
    // Lost again each time.
  }
  t.strictSame(timeouts, [200, 600, 1400], '200 ms, then 400, then 800');
  t.strictSame(b.got.get('a'), [0], 'nothing came through yet');
  a.state.tick(2600); // the fourth timeout (at 1000 + 200 + 400 + 800 + 1600 = 4000) has not come
  t.equal(a.state.flush(2600).length, 0);
  a.state.tick(4000);
  settle([a, b], 4000);
  t.strictSame(b.got.get('a'), [0, 1, 2, 3, 4, 5], 'the fourth resend gets through');
  t.equal(a.state.unacked('b'), 0);
  // Progress reset the timeout: the next loss waits 200 ms again.
  sendAll(a, 'b', [6]);
  settle([a, b], 5000, (o) => o.frame.k !== 'data');
  a.state.tick(5199);
  t.equal(a.state.flush(5199).length, 0);
  a.state.tick(5200);
  settle([a, b], 5200);
  t.strictSame(b.got.get('a'), range(0, 6));
  t.equal(a.state.stats().retransmittedItems, 4 * 5 + 1);
});

t.test('round-trip samples: a first transmission to the ack covering it, one at a time; none across a resend (Karn)', async (t) => {
  const times: number[] = [];
  const a = end('a', 1);
  a.state = new LinkState('a', 1, { deliver: () => undefined, lost: () => undefined, ackTime: (to, ms) => { t.equal(to, 'b'); times.push(ms); } }, { ackItems: 1 });
  const b = end('b', 2, { ackItems: 100 });
  sendAll(a, 'b', [0]);
  settle([a, b], 0);
  b.state.tick(0);
  settle([a, b], 0); // the hello's answer, then the item's ack: no time passed
  t.strictSame(times, [0]);
  sendAll(a, 'b', range(1, 3));
  for (const o of a.state.flush(100)) b.state.receive(wire(o), 100);
  sendAll(a, 'b', [4]);
  for (const o of a.state.flush(120)) b.state.receive(wire(o), 120); // while the first is timed: not timed itself
  b.state.tick(150); // the delayed ack, at the receiver's tick
  for (const o of b.state.flush(150)) a.state.receive(wire(o), 150);
  t.strictSame(times, [0, 50], 'timed from the first transmission, delayed ack included');
  sendAll(a, 'b', [5]);
  a.state.flush(200); // lost
  a.state.tick(400); // resent at the timeout
  for (const o of a.state.flush(400)) b.state.receive(wire(o), 400);
  b.state.tick(400);
  for (const o of b.state.flush(400)) a.state.receive(wire(o), 400);
  t.equal(a.state.unacked('b'), 0, 'the resend was acked');
  t.strictSame(times, [0, 50], 'an ack after a resend is no sample');
});

t.test('duplicates: every frame twice, every item once', async (t) => {
  const a = end('a', 1);
  const b = end('b', 2, {});
  sendAll(a, 'b', range(1, 3000));
  for (let round = 0; round < 10; round++) {
    for (const e of [a, b]) {
      for (const o of e.state.flush(0)) {
        const other = o.to === 'a' ? a : b;
        other.state.receive(wire(o), 0);
        other.state.receive(wire(o), 0);
      }
    }
  }
  t.strictSame(b.got.get('a'), range(1, 3000));
  t.equal(b.state.stats().duplicateItems, 3000);
  t.equal(a.state.unacked('b'), 0);
});

t.test('reordering: frames arriving last first are held and delivered in order', async (t) => {
  const a = end('a', 1, { maxBatchItems: 10 });
  const b = end('b', 2);
  sendAll(a, 'b', [0]);
  settle([a, b], 0);
  sendAll(a, 'b', range(1, 100));
  const frames = a.state.flush(0);
  t.equal(frames.length, 10);
  for (const o of frames.slice(1).reverse()) b.state.receive(wire(o), 0);
  t.strictSame(b.got.get('a'), [0], 'nothing past the hole');
  t.equal(b.state.stats().earlyFrames, 9);
  b.state.receive(wire(frames[0]!), 0);
  t.strictSame(b.got.get('a'), range(0, 100));
  t.equal(b.state.stats().earlyFrames, 0);
});

t.test('a lost ack: the periodic ack covers it; without that, the resend is dropped as a duplicate and acked', async (t) => {
  const a = end('a', 1);
  const b = end('b', 2);
  sendAll(a, 'b', [1]);
  settle([a, b], 0);
  sendAll(a, 'b', range(2, 10));
  settle([a, b], 0, (o) => o.frame.k !== 'ack');
  t.equal(a.state.unacked('b'), 9);
  b.state.tick(50);
  const out = b.state.flush(50);
  t.strictSame(out.map((o) => o.frame), [{ k: 'ack', from: 'b', finc: 2, tinc: 1, upTo: 10, next: 0 }], 'the tick acks a peer heard since the last one');
  a.state.receive(wire(out[0]!), 50);
  t.equal(a.state.unacked('b'), 0);
  b.state.tick(100);
  t.equal(b.state.flush(100).length, 0, 'nothing heard since: no more acks');

  sendAll(a, 'b', range(11, 20));
  settle([a, b], 200, (o) => o.frame.k !== 'ack');
  b.state.tick(250);
  b.state.flush(250); // lost too
  a.state.tick(400);
  settle([a, b], 400);
  t.strictSame(b.got.get('a'), range(1, 20), 'once each');
  t.equal(b.state.stats().duplicateItems, 10);
  t.equal(a.state.unacked('b'), 0);
});

t.test('the window: past windowItems or windowBytes unacked, send refuses and counts; acks make room', async (t) => {
  const a = end('a', 1, { windowItems: 100, windowBytes: 1000 });
  const b = end('b', 2);
  t.ok(range(1, 100).every((n) => a.state.send('b', item(n))), '100 unacked items are taken');
  t.notOk(a.state.send('b', item(101)), 'the 101st unacked item is refused');
  t.equal(a.state.stats().refusedItems, 1);
  settle([a, b], 0);
  t.ok(a.state.send('b', item(101)), 'acked: room again');
  settle([a, b], 0);
  t.strictSame(b.got.get('a'), range(1, 101), 'the refused item was not sent; its resend was');
  t.ok(a.state.send('b', new Uint8Array(600)));
  t.notOk(a.state.send('b', new Uint8Array(600)), 'bytes: 1,200 unacked would be over 1,000');
  t.ok(a.state.send('c', new Uint8Array(600)), 'windows are per peer');
  t.equal(a.state.stats().refusedItems, 2);
});

t.test('a restarted receiver: frames meant for its previous incarnation are refused; the sender is told what was lost and starts a new stream', async (t) => {
  const a = end('a', 1);
  const b1 = end('b', 20);
  sendAll(a, 'b', range(1, 10));
  settle([a, b1], 0);
  t.equal(a.state.unacked('b'), 0);
  sendAll(a, 'b', range(11, 15));
  const inFlight = a.state.flush(10); // b1 dies before these arrive
  t.equal(inFlight.length, 1);
  const b2 = end('b', 21); // same node, new incarnation
  sendAll(a, 'b', range(16, 17)); // queued before a learns
  // A copy of the frame for b1 arrives at b2 late:
  b2.state.receive(wire(inFlight[0]!), 20);
  t.equal(b2.got.size, 0, 'never delivered to the new incarnation');
  const refusal = b2.state.flush(20);
  t.strictSame(refusal.map((o) => [o.to, o.frame]), [['a', { k: 'refuse', from: 'b', finc: 21, tinc: 1, why: 'stale' }]]);
  a.state.receive(wire(refusal[0]!), 20);
  t.strictSame(a.lost, [{ to: 'b', items: range(11, 17), why: 'restarted' }], 'every item b1 did not confirm, in order, once');
  sendAll(a, 'b', range(18, 20));
  const frames = settle([a, b2], 20);
  t.strictSame(b2.got.get('a'), [18, 19, 20]);
  const first = frames.find((o) => o.frame.k === 'data')!.frame;
  t.ok(first.k === 'data' && first.seq === 1 && first.tinc === 21, 'the new stream starts at seq 1, addressed to b2, with no hello');
  t.equal(a.state.stats().lostItems, 7);
  // The sender's retransmission timer does the same when no stray frame tells it: b3.
  sendAll(a, 'b', range(21, 22));
  a.state.flush(30); // lost with b2
  const b3 = end('b', 22);
  a.state.tick(230);
  settle([a, b3], 230);
  t.strictSame(a.lost.at(-1), { to: 'b', items: [21, 22], why: 'restarted' });
  t.equal(b3.got.size, 0);
});

t.test('a restarted sender: the receiver starts over for the new incarnation and ignores the old one\'s frames; its own stream to the old one is lost at once', async (t) => {
  const a1 = end('a', 100);
  const b = end('b', 2);
  sendAll(a1, 'b', range(1, 5));
  sendAll(b, 'a', range(1, 3));
  settle([a1, b], 0);
  sendAll(a1, 'b', range(6, 8));
  const late = a1.state.flush(1); // in flight when a1 dies
  sendAll(b, 'a', range(4, 6));
  b.state.flush(1); // lost with a1
  const a2 = end('a', 101);
  sendAll(a2, 'b', [1001, 1002]);
  settle([a2, b], 2);
  t.strictSame(b.got.get('a'), [1, 2, 3, 4, 5, 1001, 1002], 'a2\'s stream from its start');
  t.strictSame(b.lost, [{ to: 'a', items: [4, 5, 6], why: 'restarted' }], 'what b sent a1 and a1 never acked');
  for (const o of late) b.state.receive(wire(o), 3);
  t.equal(b.state.flush(3).filter((o) => o.frame.k === 'data').length, 0);
  t.strictSame(b.got.get('a'), [1, 2, 3, 4, 5, 1001, 1002], 'a1\'s late frame is ignored');
  sendAll(b, 'a', [7]);
  settle([a2, b], 4);
  t.strictSame(a2.got.get('b'), [7], 'b talks to a2 from a new stream');
});

t.test('both sides restart at once: nothing is delivered twice or to the wrong incarnation, and every unconfirmed item is told', async (t) => {
  const a1 = end('a', 1);
  const b1 = end('b', 2);
  sendAll(a1, 'b', range(1, 4));
  sendAll(b1, 'a', range(1, 4));
  settle([a1, b1], 0);
  sendAll(a1, 'b', [5, 6]);
  sendAll(b1, 'a', [5, 6]);
  const stray = [...a1.state.flush(1), ...b1.state.flush(1)];
  const a2 = end('a', 3);
  const b2 = end('b', 4);
  sendAll(a2, 'b', [10, 11]);
  sendAll(b2, 'a', [10, 11]);
  // The strays arrive at the new incarnations first, then everybody talks.
  const byName = { a: a2, b: b2 };
  for (const o of stray) byName[o.to as 'a' | 'b'].state.receive(wire(o), 2);
  settle([a2, b2], 2);
  t.strictSame(a2.got.get('b'), [10, 11]);
  t.strictSame(b2.got.get('a'), [10, 11]);
  t.strictSame([a2.lost, b2.lost], [[], []], 'the new incarnations lost nothing: their streams started fresh');
});

t.test('peerGone: unacked items are handed back (gone) and counted, and the gone incarnation is refused until it comes back as a new one', async (t) => {
  const a = end('a', 1);
  const b = end('b', 2);
  sendAll(a, 'b', [1]);
  sendAll(b, 'a', [1]);
  settle([a, b], 0);
  sendAll(b, 'a', [2, 3]);
  b.state.flush(1); // lost
  b.state.peerGone('a');
  t.equal(b.state.stats().discardedItems, 2);
  t.equal(b.state.unacked('a'), 0);
  t.strictSame(b.lost, [{ to: 'a', items: [2, 3], why: 'gone' }], 'what a never confirmed goes back to the caller');
  // a (a zombie, as far as b knows) goes on talking.
  sendAll(a, 'b', [2]);
  settle([a, b], 2);
  t.strictSame(b.got.get('a'), [1], 'not heard');
  t.strictSame(a.lost, [{ to: 'b', items: [2], why: 'refused' }], 'a is told b refused it');
  sendAll(a, 'b', [3]);
  settle([a, b], 3);
  t.strictSame(b.got.get('a'), [1], 'still not heard: a quarantined b back, and b refuses it');
  const a2 = end('a', 5);
  sendAll(a2, 'b', [100]);
  sendAll(b, 'a', [100]);
  settle([a2, b], 4);
  t.strictSame(b.got.get('a'), [1, 100], 'a new incarnation of a is heard');
  t.strictSame(a2.got.get('b'), [100]);
});

t.test('the early-frame buffer is bounded; what it dropped comes again and the stream completes', async (t) => {
  const a = end('a', 1, { maxBatchItems: 10, retransmitItems: 10 });
  const b = end('b', 2, { oooFrames: 2 });
  sendAll(a, 'b', [0]);
  settle([a, b], 0);
  sendAll(a, 'b', range(1, 60));
  const frames = a.state.flush(0);
  for (const o of frames.slice(1)) b.state.receive(wire(o), 0);
  t.equal(b.state.stats().earlyFrames, 2);
  t.equal(b.state.stats().earlyDropped, 30);
  settle([a, b], 0);
  a.state.tick(200);
  settle([a, b], 200);
  t.strictSame(b.got.get('a'), range(0, 60), 'the resend of the hole, then of each hole a partial ack shows');
  t.equal(a.state.unacked('b'), 0);
});

t.test('everything in flight lost (a reconnect): one timeout, then partial acks pull the rest without more timeouts', async (t) => {
  const a = end('a', 1, { retransmitItems: 2048 });
  const b = end('b', 2);
  sendAll(a, 'b', [0]);
  settle([a, b], 0);
  sendAll(a, 'b', range(1, 50_000));
  t.equal(a.state.flush(0).length, 49, 'all lost');
  a.state.tick(200);
  settle([a, b], 200);
  t.equal(a.state.unacked('b'), 0, 'recovered at the first timeout');
  t.strictSame(b.got.get('a'), range(0, 50_000));
  t.equal(a.state.stats().retransmittedItems, 50_000, 'each item resent once');
  // kick (after a reconnect) does the same without waiting for the timeout.
  sendAll(a, 'b', range(50_001, 52_000));
  a.state.flush(300);
  a.state.kick(301);
  settle([a, b], 301);
  t.equal(a.state.unacked('b'), 0);
  t.equal(b.got.get('a')!.length, 52_001);
});

t.test('a handler that throws: logged through handlerError, the item counts as delivered, the stream goes on', async (t) => {
  const errors: unknown[] = [];
  const got: number[] = [];
  const b = new LinkState('b', 2, {
    deliver: (_from, it) => { if (num(it) === 2) throw new Error('boom'); got.push(num(it)); },
    lost: () => {},
    handlerError: (e) => errors.push(e),
  }, { ackItems: 1 });
  const a = end('a', 1);
  sendAll(a, 'b', [1, 2, 3]);
  settle([a, { name: 'b', state: b, got: new Map(), lost: [] }], 0);
  t.strictSame(got, [1, 3]);
  t.equal(errors.length, 1);
  t.equal(a.state.unacked('b'), 0);
});

t.test('the codec: every kind round-trips; anything else is a LinkDecodeError', async (t) => {
  const frames: LinkFrame[] = [
    { k: 'data', from: 'n1', finc: 7, tinc: 9, seq: 3, items: [new Uint8Array([1, 2]), new Uint8Array(0)], ack: -1, next: 0, resend: false },
    { k: 'data', from: 'n1', finc: 7, tinc: 9, seq: 3, items: [new Uint8Array([1])], ack: 12, next: 20, resend: true },
    { k: 'ack', from: 'n-2', finc: 1_800_000_000_000_000, tinc: 5, upTo: 0, next: 0 },
    { k: 'ack', from: 'n-2', finc: 2, tinc: 5, upTo: 10, next: 14 },
    { k: 'hello', from: 'x_y', finc: 4 },
    { k: 'refuse', from: 'n1', finc: 8, tinc: 3, why: 'stale' },
    { k: 'refuse', from: 'n1', finc: 8, tinc: 3, why: 'gone' },
  ];
  for (const f of frames) {
    const back = decodeLinkFrame(encodeLinkFrame(f));
    if (f.k === 'data' && back.k === 'data') t.strictSame({ ...back, items: back.items.map((i) => [...i]) }, { ...f, items: f.items.map((i) => [...i]) });
    else t.strictSame(back, f);
  }
  const p = new Packr({ useRecords: false });
  const bad: [string, unknown][] = [
    ['another version', [LINK_VERSION + 1, 2, 'a', 1]],
    ['an unknown kind', [LINK_VERSION, 9, 'a', 1]],
    ['no sender', [LINK_VERSION, 2, '', 1]],
    ['a sender that is not a subject token', [LINK_VERSION, 2, 'a.b', 1]],
    ['incarnation 0', [LINK_VERSION, 2, 'a', 0]],
    ['a fractional seq', [LINK_VERSION, 0, 'a', 1, 2, 1.5, [new Uint8Array(1)], -1, 0, 0]],
    ['seq 0', [LINK_VERSION, 0, 'a', 1, 2, 0, [new Uint8Array(1)], -1, 0, 0]],
    ['no items', [LINK_VERSION, 0, 'a', 1, 2, 1, [], -1, 0, 0]],
    ['an item that is not bytes', [LINK_VERSION, 0, 'a', 1, 2, 1, ['x'], -1, 0, 0]],
    ['a bad ack', [LINK_VERSION, 0, 'a', 1, 2, 1, [new Uint8Array(1)], -2, 0, 0]],
    ['data without the hole hint', [LINK_VERSION, 0, 'a', 1, 2, 1, [new Uint8Array(1)], -1]],
    ['a resend flag that is not 0 or 1', [LINK_VERSION, 0, 'a', 1, 2, 1, [new Uint8Array(1)], -1, 0, 2]],
    ['an ack without upTo', [LINK_VERSION, 1, 'a', 1, 2]],
    ['an ack with a negative hint', [LINK_VERSION, 1, 'a', 1, 2, 3, -1]],
    ['an unknown refusal', [LINK_VERSION, 3, 'a', 1, 2, 7]],
    ['a map', { k: 'hello' }],
  ];
  for (const [what, v] of bad) t.throws(() => decodeLinkFrame(p.pack(v)), LinkDecodeError, what);
  t.throws(() => decodeLinkFrame(new Uint8Array([0xc1])), LinkDecodeError, 'not msgpack');
});

// ---- fuzz: a lossy, duplicating, reordering pipe, seeded

function rng(seed: number): () => number {
  // mulberry32
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

interface Pipe { loss: number; dup: number; maxDelay: number }

/**
 * Runs endpoints over a pipe that loses, duplicates and delays (so reorders) frames, with the timer ticking
 * every 50 ms and a flush after every delivery, as links.ts does. `during(now)` may send or restart.
 */
function run(ends: Map<string, End>, pipe: Pipe, random: () => number, untilMs: number, during: (now: number) => void, done: () => boolean): number {
  const buckets = new Map<number, { to: string; bytes: Uint8Array }[]>(); // by the ms a frame arrives
  const post = (now: number, e: End) => {
    for (const o of e.state.flush(now)) {
      if (random() < pipe.loss) continue;
      const copies = random() < pipe.dup ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        const at = now + Math.floor(random() * (pipe.maxDelay + 1));
        const list = buckets.get(at) ?? [];
        list.push({ to: o.to, bytes: encodeLinkFrame(o.frame) });
        buckets.set(at, list);
      }
    }
  };
  let now = 0;
  for (; now <= untilMs; now += 1) {
    during(now);
    for (const e of ends.values()) post(now, e);
    const due = buckets.get(now) ?? [];
    for (let k = 0; k < due.length; k++) { // grows while it runs: frames with no delay arrive in this ms
      const m = due[k]!;
      const e = ends.get(m.to);
      if (!e) continue;
      e.state.receive(decodeLinkFrame(m.bytes), now);
      post(now, e);
    }
    buckets.delete(now);
    if (now % 50 === 0) for (const e of ends.values()) { e.state.tick(now); post(now, e); }
    if (done()) return now;
  }
  return now;
}

t.test('fuzz: 20,000 items each way through loss (10%), duplication (5%) and reordering arrive exactly once, in order', async (t) => {
  for (const seed of [1, 2, 3]) {
    const random = rng(seed);
    const a = end('a', 1, { maxBatchItems: 16, ackItems: 64 });
    const b = end('b', 2, { maxBatchItems: 16, oooFrames: 32, ackItems: 64 });
    const ends = new Map([['a', a], ['b', b]]);
    const total = 20_000;
    const next = { a: 1, b: 1 };
    const refused = { a: 0, b: 0 };
    const at = run(ends, { loss: 0.1, dup: 0.05, maxDelay: 30 }, random, 120_000, () => {
      for (const [name, to] of [['a', 'b'], ['b', 'a']] as const) {
        const burst = Math.floor(random() * 40);
        for (let k = 0; k < burst && next[name] <= total; k++) {
          if (ends.get(name)!.state.send(to, item(next[name]))) next[name]++;
          else { refused[name]++; break; }
        }
      }
    }, () => next.a > total && next.b > total && a.state.unacked('b') === 0 && b.state.unacked('a') === 0);
    t.strictSame(b.got.get('a'), range(1, total), `seed ${seed}: a → b exactly once, in order`);
    t.strictSame(a.got.get('b'), range(1, total), `seed ${seed}: b → a exactly once, in order`);
    t.ok(at < 120_000, `seed ${seed}: done at ${at} ms of fake time (${a.state.stats().retransmittedItems + b.state.stats().retransmittedItems} items resent, ${refused.a + refused.b} sends refused by the window)`);
    t.ok(a.state.stats().retransmittedItems > 0 && b.state.stats().duplicateItems > 0, `seed ${seed}: the pipe did lose and duplicate`);
  }
});

t.test('fuzz with restarts: the receiver restarts three times mid-stream; nothing is delivered twice, each incarnation gets its items in order, everything else is told lost', async (t) => {
  for (const seed of [7, 8]) {
    const random = rng(seed);
    const a = end('a', 1, { maxBatchItems: 16 });
    const ends = new Map([['a', a], ['b', end('b', 100, { ackItems: 64 })]]);
    const incarnations: End[] = [ends.get('b')!];
    let next = 1;
    const total = 10_000;
    let inc = 100;
    run(ends, { loss: 0.05, dup: 0.05, maxDelay: 20 }, random, 200_000, (now) => {
      if (now > 0 && now % 300 === 0 && incarnations.length < 4) {
        const b = end('b', ++inc, { ackItems: 64 });
        ends.set('b', b);
        incarnations.push(b);
      }
      const burst = Math.floor(random() * 10);
      for (let k = 0; k < burst && next <= total; k++) {
        if (a.state.send('b', item(next))) next++;
        else break;
      }
    }, () => next > total && a.state.unacked('b') === 0);
    const delivered = incarnations.flatMap((b) => b.got.get('a') ?? []);
    const lost = a.lost.flatMap((l) => l.items);
    t.equal(new Set(delivered).size, delivered.length, `seed ${seed}: no item delivered twice, across incarnations`);
    for (const b of incarnations) {
      const got = b.got.get('a') ?? [];
      t.ok(got.every((n, i) => i === 0 || n > got[i - 1]!), `seed ${seed}: incarnation ${b.state.inc} got its items in order`);
    }
    const seen = new Set([...delivered, ...lost]);
    t.equal(seen.size, total, `seed ${seed}: every item was delivered or told lost`);
    t.ok(lost.length > 0, `seed ${seed}: the restarts did lose some (${lost.length})`);
    const last = incarnations.at(-1)!.got.get('a') ?? [];
    t.ok(last.length > 0 && lost.every((n) => !last.includes(n)), `seed ${seed}: nothing told lost reached the last incarnation`);
  }
});
