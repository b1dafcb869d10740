import t from 'tap';
import { Packr } from 'msgpackr';
import { Fixture, http } from '../helpers/fixture.js';
import { signIn } from '../helpers/clients.js';
import type { RawSocket } from '../helpers/raw-socket.js';
import { directConversationId } from '../../src/protocol/ids.js';

/**
 * Issue #10 §1: no frame amplifies. A frame's cost to the node, and the size of what it stores, are bounded
 * by the frame's own size; the node stays responsive while it is attacked.
 */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

/** A body whose shared halves stand for 2^depth leaves. */
function sharedGraph(depth: number): unknown {
  let x: unknown = { text: 'x' };
  for (let i = 0; i < depth; i++) x = { text: 'y', l: x, r: x };
  return x;
}

async function pair(t: tap.Test, format: 'msgpack' | 'json' = 'msgpack') {
  const a = await signIn(f.url);
  const b = await signIn(f.url);
  const s = await f.raw(t, a.session.token, format);
  s.send({ t: 'sync', since: 0 });
  await s.next((x) => x.t === 'synced');
  return { s, to: b.session.user, conv: directConversationId(a.session.user, b.session.user) };
}

/** The answer to the send with this cid: its `sent` tick or its error. */
const answer = (s: RawSocket, cid: string) => s.next((x) => (x.t === 'sent' || x.t === 'error') && x.cid === cid, `answer to ${cid}`, 10_000);

/** What the conversation holds, asked after everything sent before it. */
async function stored(s: RawSocket, conv: string): Promise<unknown[]> {
  const r = await s.request({ t: 'history', conv, limit: 500 });
  if (r.t !== 'res') throw new Error(`history answered ${JSON.stringify(r)}`);
  return r.data as unknown[];
}

async function healthzMs(): Promise<number> {
  const start = performance.now();
  const r = await http(f.url, '/healthz');
  if (r.status !== 200) throw new Error(`healthz answered ${r.status}`);
  return performance.now() - start;
}

t.test('a frame of shared references is refused at once, and the node answers meanwhile', async (t) => {
  const { s, to, conv } = await pair(t);
  const bomb = new Packr({ structuredClone: true }).pack({ t: 'send', cid: 'bomb', kind: 'text', to, body: sharedGraph(30) });
  t.ok(bomb.length < 600, `a ${bomb.length}-byte frame standing for 2^30 nodes`);
  const start = performance.now();
  for (let i = 0; i < 200; i++) s.sendRaw(bomb); // a second's worth at the frame rate limit
  const e = await s.next((x) => x.t === 'error', 'the refusal');
  t.equal(e.code, 'bad_frame');
  t.match(e.message, /extension/);
  const health = await healthzMs();
  t.ok(health < 100, `/healthz answered in ${health.toFixed(1)} ms during the attack`);
  await s.roundTrip();
  t.ok(performance.now() - start < 5000, 'all 200 refused within seconds');
  t.notOk(s.closed, 'the socket survives');
  t.same(await stored(s, conv), [], 'nothing was stored');
});

t.test('record definitions and other msgpack extensions are refused', async (t) => {
  const { s, to } = await pair(t);
  const records = new Packr({ useRecords: true }).pack({ t: 'send', cid: 'rec', kind: 'text', to, body: { text: 'hi' } });
  s.sendRaw(records);
  t.equal((await s.next((x) => x.t === 'error')).code, 'bad_frame');
  await s.roundTrip();
});

t.test('a body that grows when re-encoded is measured: nothing stored is over the limit', async (t) => {
  const { s, to, conv } = await pair(t);
  // float32 (5 bytes) comes back as float64 (9 bytes): a 21 KB frame holds a 38 KB body.
  const floats = Array.from({ length: 4200 }, (_, i) => i + 0.5);
  const f32 = new Packr({ useFloat32: 1 /* ALWAYS */, useRecords: false });
  const frame = f32.pack({ t: 'send', cid: 'floats', kind: 'text', to, body: { text: 'x', pad: floats } });
  t.ok(frame.length < 32 * 1024, `frame is ${frame.length} bytes`);
  s.sendRaw(frame);
  const e = await answer(s, 'floats');
  t.equal(e.code, 'too_large');
  // Its JSON equivalent: "0.5," is 4 characters for 9 packed bytes.
  const { s: js, to: jto } = await pair(t, 'json');
  js.sendRaw(JSON.stringify({ t: 'send', cid: 'jfloats', kind: 'text', to: jto, body: { text: 'x', pad: Array(7000).fill(0.5) } }), false);
  t.equal((await answer(js, 'jfloats')).code, 'too_large');
  // A body just under the limit is still accepted.
  s.send({ t: 'send', cid: 'ok', kind: 'text', to, body: { text: 'y'.repeat(8000), pad: Array(2000).fill(0.5) } });
  t.equal((await answer(s, 'ok')).t, 'sent');
  t.equal((await stored(s, conv)).length, 1, 'only the one within the limit is stored');
});

t.test('deep and wide frames in both formats cost what their bytes do', async (t) => {
  const { s, to } = await pair(t);
  s.sendRaw(new Uint8Array(60_000).fill(0x91)); // 60,000 nested lists
  t.equal((await s.next((x) => x.t === 'error')).code, 'bad_frame');
  const { s: js, to: jto } = await pair(t, 'json');
  js.sendRaw(`{"t":"send","cid":"deep","kind":"text","to":"${jto}","body":${'['.repeat(30_000)}${']'.repeat(30_000)}}`, false);
  const deep = await js.next((x) => x.t === 'error');
  t.ok(['bad_frame', 'invalid'].includes(deep.code), `a JSON body 30,000 deep is refused: ${deep.code}`);
  // As wide as a frame allows: 30,000 one-byte values.
  const wide = new Packr({ useRecords: false }).pack({ t: 'send', cid: 'wide', kind: 'text', to, body: { text: 'x', v: new Array(30_000).fill(1) } });
  s.sendRaw(wide);
  t.ok(['sent', 'error'].includes((await answer(s, 'wide')).t), 'answered');
  const health = await healthzMs();
  t.ok(health < 100, `/healthz in ${health.toFixed(1)} ms`);
  await s.roundTrip();
});

t.test('a frame over the limit closes the socket with 1009; one over 1 MiB is cut off unread', async (t) => {
  for (const [size, code] of [[64 * 1024 + 1, 1009], [1024 * 1024, 1009], [4 * 1024 * 1024, 1006]] as const) {
    const a = await signIn(f.url);
    const s = await f.raw(t, a.session.token);
    s.sendRaw(new Uint8Array(size).fill(0x61));
    const closed = await s.whenClosed();
    t.equal(closed.code, code, `${size} bytes: closed with ${closed.code}`);
  }
  const health = await healthzMs();
  t.ok(health < 100, `/healthz in ${health.toFixed(1)} ms`);
});
