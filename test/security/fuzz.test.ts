import t from 'tap';
import { Packr } from 'msgpackr';
import { Fixture, http } from '../helpers/fixture.js';
import { texts, type TestDevice } from '../helpers/clients.js';
import type { RawSocket } from '../helpers/raw-socket.js';

/**
 * Issue #10 §10: random and mutated frames of every type, in both formats, from two devices, while a real
 * conversation goes on. The node must not crash, log an error, or stall its event loop over 100 ms, and
 * every message it acked must be there afterwards. Bounded: a fixed count of frames from a fixed seed.
 */

let f: Fixture;
t.before(async () => { f = await Fixture.start({ PARLEY_RATE_PER_S: '100000', PARLEY_RATE_BURST: '100000' }); });
t.teardown(() => f.destroy());

const FRAMES_PER_FORMAT = 6000;
let seed = 20261201;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

/** One valid frame of every client type: the fuzzer's starting points. */
function templates(me: string, other: string, conv: string, group: string): Record<string, unknown>[] {
  return [
    { t: 'sync', since: 0 }, { t: 'ack', ptr: 1 }, { t: 'ping', rid: 'p' },
    { t: 'send', cid: 'c', kind: 'text', to: other, body: { text: 'hi' } },
    { t: 'send', cid: 'c', kind: 'image', conv, body: { media: 'a'.repeat(64), mime: 'image/png', caption: 'c' } },
    { t: 'send', cid: 'c', kind: 'location', to: other, body: { lat: 1, lng: 2, name: 'x' } },
    { t: 'send', cid: 'c', kind: 'edit', conv, target: 1, body: { text: 'e' } },
    { t: 'send', cid: 'c', kind: 'delete', conv, target: 1 },
    { t: 'send', cid: 'c', kind: 'reaction', conv, target: 1, body: { emoji: '👍' } },
    { t: 'send', cid: 'c', kind: 'text', to: other, body: new Uint8Array(16) },
    { t: 'read', conv, seq: 1 }, { t: 'typing', conv, on: true },
    { t: 'history', rid: 'h', conv, before: 10, limit: 5 }, { t: 'receipts', rid: 'r', conv },
    { t: 'presence.sub', users: [other] }, { t: 'presence.unsub', users: [other] },
    { t: 'group.create', rid: 'g', name: 'n', members: [other] }, { t: 'group.add', rid: 'g', group, users: [other] },
    { t: 'group.remove', rid: 'g', group, users: [other] }, { t: 'group.admin', rid: 'g', group, user: other },
    { t: 'group.rename', rid: 'g', group, name: 'm' }, { t: 'group.leave', rid: 'g', group }, { t: 'group.info', rid: 'g', group },
    { t: 'profile.set', rid: 'p', name: 'x' }, { t: 'profile.get', rid: 'p', user: me },
    { t: 'settings.set', rid: 's', lastSeen: 'nobody' }, { t: 'contacts.add', rid: 'c', users: [other] },
    { t: 'contacts.remove', rid: 'c', users: [other] }, { t: 'users.lookup', rid: 'l', phones: ['+14155550100'] },
    { t: 'push.register', rid: 'p', platform: 'fcm', token: 'tok' },
  ];
}

function randomValue(depth = 0): unknown {
  switch (Math.floor(rnd() * (depth > 3 ? 9 : 11))) {
    case 0: return null;
    case 1: return rnd() < 0.5;
    case 2: return Math.floor(rnd() * 2 ** 31) * (rnd() < 0.3 ? -1 : 1);
    case 3: return pick([0, -1, 2 ** 53, -(2 ** 53), 1.5, 1e308, -0, 2 ** 32]);
    case 4: return 'x'.repeat(Math.floor(rnd() * 300));
    case 5: return pick(['', '\u0000', '\ud800', '😀'.repeat(50), '__proto__', 'constructor', 'd.a.b', 'g.x', '+1']);
    case 6: return new Uint8Array(Math.floor(rnd() * 100));
    case 7: return 'y'.repeat(Math.floor(rnd() * 9000));
    case 8: return Array.from({ length: Math.floor(rnd() * 5) }, () => randomValue(depth + 1));
    default: return Object.fromEntries(Array.from({ length: Math.floor(rnd() * 4) }, () => [pick(['t', 'text', 'body', 'x', '__proto__', 'rid']), randomValue(depth + 1)]));
  }
}

/** A template with one to three of its fields replaced, removed or added. */
function mutate(frame: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...frame };
  for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) {
    const keys = Object.keys(out);
    const r = rnd();
    if (r < 0.4 && keys.length) out[pick(keys)] = randomValue();
    else if (r < 0.6 && keys.length) delete out[pick(keys)];
    else if (r < 0.8) out[pick(['body', 'rid', 'cid', 'conv', 'to', 'users', 'since', 'limit', 'target', 'reply', 'extra'])] = randomValue();
    else if (out.body && typeof out.body === 'object' && !(out.body instanceof Uint8Array)) (out.body as Record<string, unknown>)[pick(['text', 'media', 'lat', 'emoji', 'caption'])] = randomValue();
  }
  return out;
}

const plain = new Packr({ useRecords: false, mapsAsObjects: true });
const exotic = [new Packr({ structuredClone: true }), new Packr({ useRecords: true }), new Packr({ moreTypes: true }), new Packr({ useFloat32: 1 })];

/** The bytes or text of one fuzzed frame for a socket of `format`. */
function fuzzFrame(tpl: Record<string, unknown>[], format: 'msgpack' | 'json'): Uint8Array | string {
  const r = rnd();
  if (r < 0.05) return Uint8Array.from({ length: Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256));
  const frame = rnd() < 0.9 ? mutate(pick(tpl)) : (randomValue() as Record<string, unknown>);
  if (format === 'json') {
    const text = JSON.stringify(frame, (_k, v) => (v instanceof Uint8Array ? { $bin: Buffer.from(v).toString('base64') } : v)) ?? 'null';
    return r < 0.1 ? text.slice(0, Math.floor(rnd() * text.length)) : text;
  }
  const bytes = (r < 0.15 ? pick(exotic) : plain).pack(frame);
  if (r < 0.25) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
  return r < 0.3 ? bytes.subarray(0, Math.floor(rnd() * bytes.length)) : bytes;
}

const BURST = 100;

async function eventLoopMaxMs(): Promise<number> {
  const m = /parley_event_loop_delay_max_10s_ms (\d+)/.exec((await http(f.url, '/metrics')).bytes.toString());
  return Number(m?.[1]);
}

t.test('fuzzed frames of every type, in both formats, while a chat goes on', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const alice2 = await f.secondDevice(t, alice);
  const carol = await f.device(t);
  const group = await alice.client.createGroup('fuzz', [bob.user, carol.user]);
  const first = await alice.client.text({ to: bob.user }, 'first');
  const tplAlice = templates(alice.user, bob.user, first.conv, group.id);
  const tplCarol = templates(carol.user, alice.user, group.conv, group.id);
  const fuzzers: [RawSocket, Record<string, unknown>[], 'msgpack' | 'json'][] = [
    [await f.raw(t, alice2.session.token, 'msgpack'), tplAlice, 'msgpack'],
    [await f.raw(t, carol.session.token, 'json'), tplCarol, 'json'],
  ];
  await alice2.close(); // its raw socket replaces it
  // Pre-generated, so the test's own CPU goes to sending while the node works.
  const batches = fuzzers.map(([s, tpl, format]) => ({ s, frames: Array.from({ length: FRAMES_PER_FORMAT }, () => fuzzFrame(tpl, format)) }));

  // The window of the node's event-loop figure must not hold its start-up.
  for (let i = 0; i < 150 && (await eventLoopMaxMs()) >= 100; i++) await new Promise((r) => setTimeout(r, 100));

  const acked: number[] = [];
  const chat = (async () => {
    for (let i = 0; i < 100; i++) acked.push((await alice.client.text({ to: bob.user }, `during ${i}`)).seq);
  })();
  // 100 frames per socket between round trips: what one loop turn may take in at once is then bounded by the
  // test, not by how fast the chat beside it runs (a burst of 400 ordinary frames is ~60 ms of work here).
  for (let off = 0; off < FRAMES_PER_FORMAT; off += BURST) {
    for (const { s, frames } of batches) {
      if (s.closed) continue;
      for (const data of frames.slice(off, off + BURST)) s.sendRaw(data);
    }
    await Promise.all(batches.filter((b) => !b.s.closed).map((b) => b.s.roundTrip()));
  }
  await chat;

  const stall = await eventLoopMaxMs();
  t.ok(stall < 100, `the node's event loop was never blocked 100 ms (worst: ${stall} ms)`);
  t.equal(f.node.proc.exitCode, null, 'the node is up');
  t.same(f.errorLogs(), [], 'and logged no error');
  const answered = batches.map((b) => b.s.frames.length);
  t.ok(answered.every((n) => n > 1000), `the fuzzers were answered (${answered.join(', ')} frames)`);

  // Nothing acked is lost: bob has every message, in order, and so does history.
  const expect = ['first', ...Array.from({ length: 100 }, (_, i) => `during ${i}`)];
  await bob.waitMessage((m) => m.seq === acked.at(-1), 'the last message');
  t.same(texts(bob.messages, first.conv).filter((x) => expect.includes(x)), expect, 'bob got every acked message in order');
  const later: TestDevice = await f.device(t, { session: bob.session, phone: bob.phone });
  const history = await later.client.history(first.conv, { limit: 500 });
  for (const seq of acked) t.ok(history.some((m) => m.seq === seq && m.from === alice.user), `seq ${seq} is stored`, { diagnostic: false });
});
