import t from 'tap';
import { directConversationId, parseConversationId, newId, isId } from '../../src/protocol/ids.js';
import { decodeFrame, encodeDelivery, pack, unpack } from '../../src/protocol/codec.js';
import { validateClientFrame } from '../../src/protocol/validate.js';
import { DEFAULT_LIMITS } from '../../src/protocol/limits.js';
import { ParleyError } from '../../src/protocol/errors.js';
import { parseRange } from '../../src/media/range.js';
import { allWatermark } from '../../src/actors/receipts.js';
import { TokenBucket } from '../../src/transport/rate-limit.js';

t.test('conversation ids are order-independent and parse back', async (t) => {
  const a = newId(), b = newId();
  t.ok(isId(a));
  t.equal(directConversationId(a, b), directConversationId(b, a));
  t.same(parseConversationId(directConversationId(a, b)), { kind: 'direct', users: [a, b].sort() });
  t.same(parseConversationId(`g.${a}`), { kind: 'group', group: a });
  t.equal(parseConversationId(`d.${b > a ? b : a}.${b > a ? a : b}`), undefined, 'unsorted pair is not an id');
  t.equal(parseConversationId('x.y'), undefined);
});

t.test('a spliced delivery frame decodes like a packed one', async (t) => {
  const m = { conv: 'd.aaaa.bbbb', seq: 7, from: 'aaaa', dev: 'dd', cid: 'c1', kind: 'text', ts: 1, body: { text: 'hi' } };
  for (const ptr of [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40]) {
    t.same(unpack(encodeDelivery(ptr, pack(m), 'msgpack') as Uint8Array), { t: 'msg', ptr, m });
    t.same(JSON.parse(encodeDelivery(ptr, pack(m), 'json') as string), { t: 'msg', ptr, m });
  }
});

t.test('frames are validated with stable codes', async (t) => {
  const v = (x: unknown) => validateClientFrame(x, DEFAULT_LIMITS);
  const code = (x: unknown) => { try { v(x); return 'ok'; } catch (e) { return (e as ParleyError).code; } };
  t.equal(code('nope'), 'bad_frame');
  t.equal(code({ t: 'warp' }), 'unknown_type');
  t.equal(code({ t: 'send', cid: 'c', to: 'aaaaaaaa', kind: 'sticker', body: {} }), 'unknown_kind');
  t.equal(code({ t: 'send', cid: 'c', to: 'aaaaaaaa', kind: 'text', body: { text: 'x'.repeat(DEFAULT_LIMITS.maxTextChars + 1) } }), 'invalid');
  t.equal(code({ t: 'send', cid: 'c', to: 'aaaaaaaa', kind: 'text', body: new Uint8Array(DEFAULT_LIMITS.maxBodyBytes + 1) }), 'too_large');
  t.equal(code({ t: 'send', cid: 'c', to: 'aaaaaaaa', kind: 'location', body: { lat: 91, lng: 0 } }), 'invalid');
  t.equal(code({ t: 'send', cid: 'c', to: 'aaaaaaaa', kind: 'location', body: { lat: 52.5, lng: 13.4, name: 'Berlin' } }), 'ok');
  t.equal(code({ t: 'send', cid: 'c', to: 'aaaaaaaa', kind: 'edit', body: { text: 'x' } }), 'invalid', 'edit needs a target');
  t.equal(code({ t: 'send', cid: 'c', to: 'aaaaaaaa', conv: 'g.aaaaaaaa', kind: 'text', body: { text: 'x' } }), 'invalid', 'to and conv');
  t.equal(code({ t: 'send', cid: 'c', to: 'aaaaaaaa', kind: 'text', body: new Uint8Array(10) }), 'ok', 'ciphertext passes unread');
  t.equal(code({ t: 'ack', ptr: -1 }), 'invalid');
  t.throws(() => decodeFrame(new Uint8Array([0x82, 0xa1]), true), { code: 'bad_frame' });
});

t.test('range headers', async (t) => {
  t.same(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  t.same(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  t.same(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  t.same(parseRange('bytes=50-1000', 100), { start: 50, end: 99 });
  t.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  t.equal(parseRange('bytes=0-1,5-6', 100), undefined);
});

t.test('all-members watermark', async (t) => {
  const senders: Record<number, string> = { 1: 'a', 2: 'b', 3: 'a', 4: 'c' };
  const cur = (c: Record<string, number>) => (u: string) => c[u] ?? 0;
  const of = (s: number) => senders[s];
  t.equal(allWatermark(0, cur({ a: 0, b: 2, c: 3 }), ['a', 'b', 'c'], of, 4), 1, 'a sent 1 itself; 2 waits for a');
  t.equal(allWatermark(0, cur({ a: 2, b: 4, c: 3 }), ['a', 'b', 'c'], of, 4), 3, '3 is a\'s own');
  t.equal(allWatermark(0, cur({ a: 4, b: 4, c: 4 }), ['a', 'b', 'c'], of, 4), 4);
  t.equal(allWatermark(3, cur({ a: 0, b: 0, c: 0 }), ['a', 'b', 'c'], of, 4), 3, 'never goes back');
});

t.test('token bucket', async (t) => {
  const b = new TokenBucket(10, 2, 0);
  t.ok(b.take(0)); t.ok(b.take(0)); t.notOk(b.take(0));
  t.ok(b.take(100), 'refilled after 100 ms at 10/s');
});
