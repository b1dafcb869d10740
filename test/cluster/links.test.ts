import t from 'tap';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Links } from '../../src/cluster/links.js';
import type { LostReason } from '../../src/cluster/link-protocol.js';
import { startNatsServers } from '../helpers/nats-link-servers.js';

// The link over real nats-servers (two, clustered): items from one Links to another arrive once and in order,
// through a server killed -9 under them, and a receiver that comes back as a new incarnation never gets what
// was meant for the old one, while its sender is told exactly which items those were.

const ITEM_BYTES = 100;
const item = (n: number): Uint8Array => {
  const b = new Uint8Array(ITEM_BYTES);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};
const num = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);

async function conn(t: { teardown(fn: () => unknown): void }, servers: string[], name: string): Promise<NatsConnection> {
  const nc = await connect({ servers, name, reconnectTimeWait: 50, maxReconnectAttempts: -1, ignoreClusterUpdates: true, noRandomize: true });
  t.teardown(() => nc.close());
  return nc;
}

/** Resolves once `cond()` holds, checking every few ms; fails after `ms`. */
async function until(what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 2));
  }
}

/** The order check of one stream: every item the next one, counted; the first gap or repeat is kept. */
class Stream {
  count = 0;
  problem = '';
  constructor(private next = 1) {}
  take(n: number): void {
    if (n !== this.next && !this.problem) this.problem = `expected ${this.next}, got ${n} (after ${this.count} in order)`;
    this.next = n + 1;
    this.count++;
  }
}

/** Sends `from … to` as fast as the window lets: a chunk per macrotask, waiting for acks when it is full. */
async function pump(links: Links, to: string, from: number, upTo: number): Promise<void> {
  let n = from;
  while (n <= upTo) {
    for (let k = 0; k < 2000 && n <= upTo; k++) {
      if (links.send(to, item(n))) n++;
      else { await until('room in the window', () => links.unacked(to) < 25_000); break; }
    }
    await new Promise((res) => setImmediate(res));
  }
}

t.test('100,000 items through two clustered servers arrive once and in order, in bounded time', async (t) => {
  const nats = await startNatsServers(t, 2);
  const a = new Links(await conn(t, [nats.urls[0]!], 'a'), 'a');
  const b = new Links(await conn(t, [nats.urls[1]!], 'b'), 'b');
  t.teardown(() => { a.close(); b.close(); });
  const got = new Stream();
  b.onItem((from, it) => { if (from === 'a') got.take(num(it)); });
  const total = 100_000;
  const t0 = performance.now();
  await pump(a, 'b', 1, total);
  await until('every item delivered', () => got.count >= total || got.problem !== '');
  const ms = performance.now() - t0;
  t.equal(got.problem, '', 'in order, none missing or repeated');
  t.equal(got.count, total);
  await until('the last ack', () => a.unacked('b') === 0, 5_000);
  const s = a.stats();
  t.ok(ms < 30_000, `${total} items in ${ms.toFixed(0)} ms (${Math.round(total / (ms / 1000))}/s), ${s.framesOut} frames out`);
  t.ok(s.framesOut < total / 10, 'batched: many items a frame');
  t.equal(b.stats().deliveredItems, total);
});

t.test('the receiver\'s server killed -9 mid-stream, both ways: its client moves to the other server and every item still arrives once, in order', async (t) => {
  const nats = await startNatsServers(t, 2);
  const ncA = await conn(t, [nats.urls[0]!], 'a');
  const ncB = await conn(t, [nats.urls[1]!, nats.urls[0]!], 'b');
  const a = new Links(ncA, 'a');
  const b = new Links(ncB, 'b');
  t.teardown(() => { a.close(); b.close(); });
  const atB = new Stream();
  const atA = new Stream();
  b.onItem((from, it) => { if (from === 'a') atB.take(num(it)); });
  a.onItem((from, it) => { if (from === 'b') atA.take(num(it)); });
  const lost: number[] = [];
  a.onLost((_to, items) => lost.push(...items.map(num)));
  b.onLost((_to, items) => lost.push(...items.map(num)));
  let reconnected = '';
  void (async () => { for await (const s of ncB.status()) if (s.type === 'reconnect') reconnected = s.server; })();

  const total = 100_000;
  const pumps = Promise.all([pump(a, 'b', 1, total), pump(b, 'a', 1, total)]);
  await until('a third of the stream', () => atB.count >= 30_000);
  await nats.servers[1]!.kill();
  const killedAt = atB.count;
  await pumps;
  await until('every item delivered both ways', () => (atB.count >= total && atA.count >= total) || atB.problem !== '' || atA.problem !== '');
  t.equal(atB.problem, '', 'a → b in order, none missing or repeated');
  t.equal(atA.problem, '', 'b → a in order, none missing or repeated');
  t.equal(atB.count, total);
  t.equal(atA.count, total);
  t.ok(killedAt < total, `the server died with ${total - killedAt} items still to come`);
  t.match(reconnected, /127\.0\.0\.1/, `b's client reconnected (to ${reconnected})`);
  t.strictSame(lost, [], 'nobody restarted: nothing reported lost');
  await until('the last acks', () => a.unacked('b') === 0 && b.unacked('a') === 0, 10_000);
  t.ok(a.stats().retransmittedItems > 0, `frames lost with the server were resent (${a.stats().retransmittedItems} items by a, ${b.stats().retransmittedItems} by b)`);
});

t.test('a receiver recreated as a new incarnation: the sender is told exactly which items were lost, and the new one gets only what came after', async (t) => {
  const nats = await startNatsServers(t, 2);
  const a = new Links(await conn(t, [nats.urls[0]!], 'a'), 'a');
  const ncB = await conn(t, [nats.urls[1]!], 'b');
  const b1 = new Links(ncB, 'b');
  const got1: number[] = [];
  b1.onItem((_f, it) => got1.push(num(it)));
  const lost: { to: string; items: number[]; why: LostReason }[] = [];
  a.onLost((to, items, why) => lost.push({ to, items: items.map(num), why }));
  for (let n = 1; n <= 1000; n++) a.send('b', item(n));
  await until('b1 has them all, acked', () => got1.length === 1000 && a.unacked('b') === 0);
  b1.close();
  for (let n = 1001; n <= 1100; n++) a.send('b', item(n)); // nobody listens for these
  await new Promise((res) => setImmediate(res)); // published (to nobody)
  const b2 = new Links(ncB, 'b');
  t.teardown(() => { a.close(); b2.close(); });
  t.ok(b2.incarnation > b1.incarnation, 'a new incarnation, greater than the old');
  const got2: number[] = [];
  b2.onItem((_f, it) => got2.push(num(it)));
  await until('a learns b restarted', () => lost.length > 0);
  t.strictSame(lost, [{ to: 'b', items: Array.from({ length: 100 }, (_, i) => 1001 + i), why: 'restarted' }], 'exactly the items b1 never confirmed, in order, once');
  for (let n = 1101; n <= 1200; n++) a.send('b', item(n));
  await until('b2 has the new ones', () => got2.length >= 100);
  t.strictSame(got2, Array.from({ length: 100 }, (_, i) => 1101 + i), 'b2 got only what was sent to it, in order');
  t.equal(got1.length, 1000, 'b1 got nothing after it closed');
  await until('acked', () => a.unacked('b') === 0);
  t.equal(a.stats().lostItems, 100);
});

t.test('a sender recreated as a new incarnation: the receiver starts its stream over, and reports at once what it had sent the old one', async (t) => {
  const nats = await startNatsServers(t, 1);
  const ncA = await conn(t, nats.urls, 'a');
  const b = new Links(await conn(t, nats.urls, 'b'), 'b');
  const a1 = new Links(ncA, 'a');
  const atB: number[] = [];
  b.onItem((_f, it) => atB.push(num(it)));
  const lost: number[] = [];
  b.onLost((_to, items) => lost.push(...items.map(num)));
  for (let n = 1; n <= 500; n++) a1.send('b', item(n));
  await until('a1 acked', () => atB.length === 500 && a1.unacked('b') === 0);
  a1.close();
  for (let n = 1; n <= 50; n++) b.send('a', item(n)); // to a1, who is gone
  await new Promise((res) => setImmediate(res)); // published (to nobody)
  const a2 = new Links(ncA, 'a');
  t.teardown(() => { a2.close(); b.close(); });
  const atA2: number[] = [];
  a2.onItem((_f, it) => atA2.push(num(it)));
  for (let n = 1; n <= 500; n++) a2.send('b', item(n));
  await until('a2\'s stream arrived', () => atB.length === 1000);
  t.ok(atB.slice(500).every((n, i) => n === i + 1), 'a2\'s items 1 … 500, in order, after a1\'s');
  t.strictSame(lost, Array.from({ length: 50 }, (_, i) => i + 1), 'b hears of a2 and gives up on what a1 never acked');
  b.send('a', item(51));
  await until('b reaches a2', () => atA2.length === 1);
  t.strictSame(atA2, [51], 'a2 gets b\'s new stream only');
});

t.test('bad input: a frame that is not one is counted and skipped, the stream goes on; bad names and oversized items are refused at send', async (t) => {
  const nats = await startNatsServers(t, 1);
  const nc = await conn(t, nats.urls, 'x');
  const a = new Links(nc, 'a');
  const b = new Links(nc, 'b');
  t.teardown(() => { a.close(); b.close(); });
  const got: number[] = [];
  b.onItem((_f, it) => got.push(num(it)));
  a.send('b', item(1));
  await until('the first item', () => got.length === 1);
  nc.publish('parley.link.b', new Uint8Array([0xc1])); // not msgpack
  nc.publish('parley.link.b', new Uint8Array([0x93, 0x01, 0x02, 0x03])); // msgpack, not a frame
  a.send('b', item(2)); // after them on the same connection: its arrival means they were handled
  await until('the second item', () => got.length === 2);
  t.strictSame(got, [1, 2]);
  t.equal(b.stats().badFrames, 2);
  t.throws(() => a.send('b.c', item(3)), RangeError, 'a node name is one subject token');
  t.throws(() => a.send('b', new Uint8Array(600 * 1024)), RangeError, 'an item over maxItemBytes');
  t.throws(() => a.send('a', item(3)), RangeError, 'not to itself: the caller delivers locally');
  a.close();
  t.notOk(a.send('b', item(3)), 'a closed link takes nothing');
});
