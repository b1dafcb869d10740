import t from 'tap';
import type { Socket } from 'node:net';
import { Fixture, http } from '../helpers/fixture.js';
import type { TestDevice } from '../helpers/clients.js';
import type { PresenceFrame } from '../../src/protocol/frames.js';

/**
 * Issue #2 §13: a client that stops reading fills its socket's send buffer; past PARLEY_MAX_BACKPRESSURE the
 * node drops it instead of buffering without bound, keeps serving everyone else, and the client gets
 * everything by pointer when it comes back.
 */

let f: Fixture;
t.before(async () => {
  f = await Fixture.start({ PARLEY_MAX_BACKPRESSURE: String(64 * 1024), PARLEY_RATE_PER_S: '100000', PARLEY_RATE_BURST: '100000' });
});
t.teardown(() => f.destroy());

const BODY = 30_000;
const MAX_MESSAGES = 3000; // ~90 MB: far past what the kernel's socket buffers can hold
const tcp = (d: TestDevice): Socket => (d.sockets.at(-1) as unknown as { _socket: Socket })._socket;
const bodyOf = (i: number) => { const b = new Uint8Array(BODY); new DataView(b.buffer).setUint32(0, i); return b; };
const numberOf = (body: unknown) => new DataView((body as Uint8Array).buffer, (body as Uint8Array).byteOffset).getUint32(0);

t.test('a client that stops reading is disconnected, others are served, and it resyncs everything', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const carol = await f.device(t);
  await bob.client.addContacts([carol.user]);
  carol.client.subscribePresence([bob.user]);
  await carol.waitFrame((x): x is PresenceFrame => x.t === 'presence' && x.user === bob.user && x.online);

  tcp(bob).pause(); // bob's app hangs: nothing is read from the socket any more
  let sent = 0;
  const bobOffline = () => carol.frames.some((x) => x.t === 'presence' && x.user === bob.user && !x.online);
  // Big ciphertext bodies to bob, one at a time, until the node gives up on his socket.
  while (!bobOffline() && sent < MAX_MESSAGES) {
    await alice.client.send({ to: bob.user }, 'text', bodyOf(++sent));
    if (sent % 50 === 0) await carol.client.ping();
  }
  t.ok(bobOffline(), `the node dropped bob's socket (after ${sent} messages of ${BODY} bytes)`);
  const metrics = (await http(f.url, '/metrics')).bytes.toString();
  t.match(metrics, /^parley_ws_slow_consumer_total [1-9]/m, 'and counted a slow consumer');

  // Everyone else is still served while bob is away.
  const toCarol = await alice.client.text({ to: carol.user }, 'still here?');
  await carol.waitMessage((m) => m.seq === toCarol.seq);
  for (let i = 0; i < 5; i++) await alice.client.send({ to: bob.user }, 'text', bodyOf(++sent));

  // bob's app wakes up: it reads what had reached it, sees the socket closed, and reconnects from its pointer.
  tcp(bob).resume();
  await bob.waitFor(() => bob.closes[0], 10_000, 'bob to see the close');
  t.not(bob.closes[0]!.code, 1000, `an abnormal close (${bob.closes[0]!.code})`);
  const gotBefore = bob.messages.map((m) => numberOf(m.body));
  t.ok(gotBefore.length < sent, `bob had ${gotBefore.length} of ${sent} before the drop`);
  const back = await f.device(t, { session: bob.session, phone: bob.phone, ptr: bob.client.ptr });
  await back.waitFor(() => gotBefore.length + back.messages.length >= sent || undefined, 20_000, 'the rest');
  const all = [...gotBefore, ...back.messages.map((m) => numberOf(m.body))];
  t.same(all, Array.from({ length: sent }, (_, i) => i + 1), 'every message once, in order');
  t.ok(back.messages.every((m) => (m.body as Uint8Array).byteLength === BODY), 'bodies intact');
});

t.test('a device that never acks is disconnected after 10,000 unacked deliveries (4009) and resumes by pointer', async (t) => {
  const N = 10_050;
  const alice = await f.device(t);
  const bob = await f.device(t, { autoAck: false });
  const sends = Promise.all(Array.from({ length: N }, (_, i) => alice.client.text({ to: bob.user }, `m${i + 1}`)));
  await bob.waitFor(() => bob.closes[0], 30_000, 'bob to be disconnected');
  t.equal(bob.closes[0]!.code, 4009, 'closed with 4009: too many unacknowledged messages');
  t.ok(bob.messages.length >= 10_000 && bob.messages.length < N, `bob held ${bob.messages.length} when closed`);
  await sends;
  const back = await f.device(t, { session: bob.session, phone: bob.phone, ptr: bob.client.ptr });
  await back.waitFor(() => bob.messages.length + back.messages.length >= N || undefined, 20_000, 'the rest');
  const all = [...bob.messages, ...back.messages].map((m) => (m.body as { text: string }).text);
  t.same(all, Array.from({ length: N }, (_, i) => `m${i + 1}`), 'every message once, in order');
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });


