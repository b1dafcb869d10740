import t from 'tap';
import { Packr } from 'msgpackr';
import { checkMsgpackFrame, MAX_FRAME_DEPTH } from '../../src/protocol/msgpack-guard.js';
import { decodeFrame, pack } from '../../src/protocol/codec.js';

const refused = (bytes: Uint8Array) => {
  try { checkMsgpackFrame(bytes); return undefined; } catch (err) { return (err as { code?: string }).code; }
};

/** A body whose shared halves stand for 2^depth leaves: the bomb of issue #10. */
function sharedGraph(depth: number): unknown {
  let x: unknown = { a: 'x' };
  for (let i = 0; i < depth; i++) x = { l: x, r: x };
  return x;
}

t.test('every frame Parley sends or a client writes passes', async (t) => {
  for (const frame of [
    { t: 'send', cid: 'c1', kind: 'text', to: 'u1', body: { text: 'héllo ✓' } },
    { t: 'send', cid: 'c2', kind: 'image', conv: 'g.x', body: { media: 'm', mime: 'image/png', caption: 'x'.repeat(300) } },
    { t: 'send', cid: 'c3', kind: 'location', to: 'u', body: { lat: -33.5, lng: 151.25, name: 'Opera' } },
    { t: 'send', cid: 'c4', kind: 'text', to: 'u', body: new Uint8Array(40_000) },
    { t: 'sync', since: 2 ** 40 }, { t: 'ack', ptr: 65_536 }, { t: 'ping' },
    { t: 'presence.sub', users: Array.from({ length: 200 }, (_, i) => `u${i}`) },
    { t: 'x', n: -1, m: -200, big: -(2 ** 40), f: 1.5, no: null, yes: true, nested: [[[[{ a: [] }]]]], empty: {} },
  ]) {
    t.equal(refused(pack(frame)), undefined, JSON.stringify(frame).slice(0, 60));
  }
  // Every width of string, bin, array and map header (8/16/32 bits) that another encoder may choose.
  const str32 = Uint8Array.from([0x81, 0xdb, 0, 0, 0, 1, 0x74, 0xdb, 0, 0, 0, 1, 0x61]);
  const arr32 = Uint8Array.from([0xdf, 0, 0, 0, 1, 0xd9, 1, 0x74, 0xdd, 0, 0, 0, 2, 0xc4, 1, 9, 0xc5, 0, 1, 9]);
  t.equal(refused(str32), undefined);
  t.equal(refused(arr32), undefined);
  t.same(decodeFrame(arr32, true), { t: [new Uint8Array([9]), new Uint8Array([9])] });
});

t.test('references, records and every other extension are refused before decoding', async (t) => {
  const bomb = new Packr({ structuredClone: true }).pack({ t: 'send', cid: 'c', kind: 'text', to: 'u', body: sharedGraph(30) });
  t.ok(bomb.length < 600, `the bomb is ${bomb.length} bytes`);
  t.equal(refused(bomb), 'bad_frame', 'structured-clone references');
  const records = new Packr({ useRecords: true }).pack({ t: 'send', body: [{ a: 1, b: 2 }, { a: 3, b: 4 }] });
  t.equal(refused(records), 'bad_frame', 'record definitions');
  const extensions = new Packr({ moreTypes: true, structuredClone: true });
  for (const [what, v] of [['a Set', new Set([1])], ['a Date', new Date(0)], ['a RegExp', /x/], ['a Float64Array', new Float64Array(2)], ['undefined', [undefined]]] as const) {
    t.equal(refused(extensions.pack({ t: 'x', v })), 'bad_frame', what);
  }
  t.throws(() => decodeFrame(bomb, true), { code: 'bad_frame' }, 'decodeFrame refuses it too');
});

t.test('depth, lying lengths, key types and trailing bytes', async (t) => {
  let deep: unknown = 1;
  for (let i = 0; i < MAX_FRAME_DEPTH; i++) deep = [deep];
  t.equal(refused(pack(deep)), undefined, `${MAX_FRAME_DEPTH} levels pass`);
  t.equal(refused(pack([deep])), 'bad_frame', 'one more is refused');
  t.equal(refused(new Uint8Array(65_536).fill(0x91)), 'bad_frame', '64 KiB of nested lists: refused at once, no recursion');
  t.equal(refused(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff])), 'bad_frame', 'a list claiming 4 billion items');
  t.equal(refused(Uint8Array.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61])), 'bad_frame', 'a string longer than the frame');
  t.equal(refused(Uint8Array.from([0xc5, 0x00])), 'bad_frame', 'a header cut short');
  t.equal(refused(Uint8Array.from([0x81, 0xc2, 0x01])), 'bad_frame', 'a map key false (would decode to "false")');
  t.equal(refused(Uint8Array.from([0x81, 0xe0, 0x01])), 'bad_frame', 'a map key -32');
  t.equal(refused(Uint8Array.from([0x90, 0x90])), 'bad_frame', 'two values');
  t.equal(refused(Uint8Array.from([0xc1])), 'bad_frame', 'the reserved byte');
  t.equal(refused(new Uint8Array(0)), 'bad_frame', 'nothing');
});

t.test('random and mutated bytes: refused, or decoded into a tree no larger than the frame', async (t) => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const base = pack({ t: 'send', cid: 'c', kind: 'text', to: 'u', body: { text: 'hi', list: [1, 2.5, 'x', { y: null }] } });
  const nodes = (v: unknown): number => (typeof v !== 'object' || v === null || v instanceof Uint8Array ? 1
    : 1 + (Array.isArray(v) ? v : Object.values(v)).reduce<number>((n, x) => n + nodes(x), 0));
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    const bytes = i % 2 ? Uint8Array.from(base) : Uint8Array.from({ length: 1 + Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256));
    if (i % 2) for (let k = 0; k < 1 + rnd() * 3; k++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
    let v: unknown;
    try { v = decodeFrame(bytes, true); } catch (err) {
      if ((err as { code?: string }).code !== 'bad_frame') t.fail(`threw ${String(err)}`);
      continue;
    }
    decoded++;
    if (nodes(v) > bytes.length) t.fail(`${bytes.length} bytes decoded to ${nodes(v)} values`);
  }
  t.ok(decoded > 1000, `${decoded} of 20,000 decoded, every one bounded by its size`);
});
