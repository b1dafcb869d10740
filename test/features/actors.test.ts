import t from 'tap';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { ADMIN_KEY, Fixture, http } from '../helpers/fixture.js';
import { texts, type TestDevice } from '../helpers/clients.js';
import type { ReceiptFrame } from '../../src/protocol/frames.js';

/**
 * Issue #2 §10: entities under supervision. A crash (injected from outside through the node's test-only
 * fault seam, PARLEY_FAULTS=1 + POST /v1/admin/faults) answers the failed request with an error and
 * restarts the entity from the store; idle entities are passivated and come back with their state.
 */

const run = async (cmd: string, args: string[]) => (await promisify(execFile)(cmd, args)).stdout;

let faulty: Fixture;
let idle: Fixture;
const PASSIVATE_MS = 200;
// The fan-out's retry window, shortened from 5 s.
const RETRY_MS = 1500;
t.before(async () => {
  [faulty, idle] = await Promise.all([
    Fixture.start({ PARLEY_FAULTS: '1', PARLEY_FANOUT_RETRY_MS: String(RETRY_MS) }),
    Fixture.start({ PARLEY_PASSIVATE_AFTER_MS: String(PASSIVATE_MS) }),
  ]);
});
t.teardown(() => Promise.all([faulty.destroy(), idle.destroy()]));

const arm = async (type: 'user' | 'conv' | 'group', id: string, times = 1) => {
  const r = await http(faulty.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json: { type, id, times } });
  if (r.status !== 200) throw new Error(`arming failed: ${r.status}`);
};
const delivered = (d: TestDevice, conv: string, upTo: number) =>
  d.waitFrame((x): x is ReceiptFrame => x.t === 'receipt' && x.conv === conv && x.status === 'delivered' && x.upTo >= upTo, `delivered ${upTo}`);

t.test('the admin endpoints need the admin key', async (t) => {
  for (const headers of [{}, { 'x-admin-key': 'wrong' }] as Record<string, string>[]) {
    t.equal((await http(faulty.url, '/v1/admin/actors', { headers })).status, 401);
    t.equal((await http(faulty.url, '/v1/admin/faults', { method: 'POST', headers, json: { type: 'conv', id: 'x' } })).status, 401);
  }
  t.equal((await http(idle.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json: { type: 'conv', id: 'x' } })).status, 404,
    'the fault seam does not exist unless PARLEY_FAULTS=1');
  const bad = await http(faulty.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json: { type: 'socket', id: 'x' } });
  t.equal(bad.status, 400);
  const tree = await faulty.actors();
  t.same(Object.keys(tree).sort(), ['conv', 'group', 'user']);
});

t.test('a conversation that crashes answers the failed send with an error, restarts, and its seqs go on', async (t) => {
  const alice = await faulty.device(t);
  const bob = await faulty.device(t);
  const first = await alice.client.text({ to: bob.user }, 'before');
  await delivered(alice, first.conv, first.seq); // the conversation is idle now
  const crashesBefore = (await faulty.actors()).conv.crashes;

  await arm('conv', first.conv);
  const failed = await alice.client.send({ to: bob.user }, 'text', { text: 'during' }, { cid: 'crash-me' }).then(() => undefined, (e: unknown) => e);
  t.match(failed, { code: 'internal', retryable: true, cid: 'crash-me' }, 'the sender is told, and told to retry (with the cid to send again)');
  t.equal((await faulty.actors()).conv.crashes, crashesBefore + 1, 'the supervisor counted the crash');

  const retried = await alice.client.send({ to: bob.user }, 'text', { text: 'during' }, { cid: 'crash-me' });
  t.equal(retried.seq, first.seq + 1, 'the restarted entity reloaded its seq from the store');
  t.notOk(retried.dup, 'the failed attempt stored nothing');
  const after = await bob.client.text({ to: alice.user }, 'after');
  t.equal(after.seq, first.seq + 2);
  await alice.waitMessage((m) => m.seq === after.seq);
  await bob.waitMessage((m) => m.seq === retried.seq);
  t.same(texts(bob.messages), ['before', 'during'], 'bob got each message once');
  t.same(texts(await bob.client.history(first.conv)), ['before', 'during', 'after']);
});

t.test('an entity that keeps crashing is stopped, everything sent to it is answered, and a later message starts it afresh', async (t) => {
  const alice = await faulty.device(t);
  const bob = await faulty.device(t);
  const first = await alice.client.text({ to: bob.user }, 'm0');
  await delivered(alice, first.conv, first.seq);
  const stoppedBefore = (await faulty.actors()).conv.stopped;

  await arm('conv', first.conv, 5);
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
    alice.client.send({ to: bob.user }, 'text', { text: `m${i + 1}` }, { cid: `burst-${i + 1}` }).then((s) => s, (e: { code: string }) => e)));
  const failed = results.filter((r) => 'code' in r && !('seq' in r));
  t.ok(failed.length >= 5, 'the five armed crashes each failed a send');
  t.ok(failed.every((r) => (r as { code: string }).code === 'internal'), 'with a retryable internal error');
  t.equal((await faulty.actors()).conv.stopped, stoppedBefore + 1, 'five crashes in a row stop the entity');

  // The client retries what failed, with the same cids; everything ends up stored once, in order.
  for (let i = 0; i < results.length; i++) {
    if ('seq' in results[i]!) continue;
    results[i] = await alice.client.send({ to: bob.user }, 'text', { text: `m${i + 1}` }, { cid: `burst-${i + 1}` });
  }
  const history = await alice.client.history(first.conv);
  t.same(texts(history).sort(), Array.from({ length: 9 }, (_, i) => `m${i}`).sort(), 'every message stored exactly once');
  t.same(history.map((m) => m.seq), Array.from({ length: 9 }, (_, i) => i + 1), 'seqs continue with no hole');
  await bob.waitFor(() => bob.messages.length === 9 || undefined, 5000, 'bob to get all nine');

  // What an operator sees of it (issue #16 §1): the crash loop's end, its reason and the message type, in
  // the admin view and in `npm run ops -- tree`.
  const view = await http(faulty.url, '/v1/admin/actors?top=5', { headers: { 'x-admin-key': ADMIN_KEY } });
  const conv = (view.json as { regions: { type: string; lastCrashes: { id: string; message?: string; reason: string; stopped: boolean }[]; last: { minute: { crashed: number; stopped: number } } }[] }).regions.find((r) => r.type === 'conv')!;
  t.ok(conv.last.minute.crashed >= 5 && conv.last.minute.stopped >= 1, 'the last minute counts the crashes and the stop');
  t.match(conv.lastCrashes.find((c) => c.id === first.conv && c.stopped), { message: 'send', reason: /fault/i }, 'the crash that stopped it, on a send');
  const cli = await run(process.execPath, [resolve(__dirname, '../../src/ops/ops-cli.js'), 'tree', '--url', faulty.url, '--key', ADMIN_KEY, '--top', '5']);
  t.match(cli, /├─ user +active \d+/, 'the CLI draws the tree');
  t.match(cli, new RegExp(`crashed \\d+s ago ${first.conv.replace(/\./g, '\\.')} on send: .*\\(stopped\\)`), 'with the crash and its reason');
  t.equal((await http(faulty.url, '/v1/admin/actors?top=500', { headers: { 'x-admin-key': ADMIN_KEY } })).status, 400, 'top is bounded');
});

t.test('a user entity that crashes answers the request, restarts, and its devices reconnect and resync', async (t) => {
  const alice = await faulty.device(t);
  const bob = await faulty.device(t, { reconnect: true });
  const first = await alice.client.text({ to: bob.user }, 'hello');
  await delivered(alice, first.conv, first.seq);

  await arm('user', bob.user);
  await t.rejects(alice.client.getProfile(bob.user), { code: 'internal' }, 'the request that hit the crash is answered');
  await bob.waitFor(() => bob.closes[0], 5000, 'bob\'s socket to be closed');
  t.equal(bob.closes[0]!.code, 1012, 'bob\'s sockets are closed with 1012 so they resync');
  await bob.waitFor(() => bob.frames.filter((x) => x.t === 'welcome').length >= 2 || undefined, 10_000, 'bob to reconnect');
  t.equal((await alice.client.getProfile(bob.user)).id, bob.user, 'the entity works again');
  const next = await alice.client.text({ to: bob.user }, 'after the restart');
  await bob.waitMessage((m) => m.seq === next.seq);
  t.same(texts(bob.messages), ['hello', 'after the restart'], 'no duplicate after the resync');
});

t.test('a message whose delivery crashed the recipient\'s entity still reaches the recipient', async (t) => {
  const alice = await faulty.device(t);
  const bob = await faulty.device(t, { reconnect: true });
  const first = await alice.client.text({ to: bob.user }, 'hello');
  await delivered(alice, first.conv, first.seq);
  await arm('user', bob.user);
  const lost = await alice.client.text({ to: bob.user }, 'during the crash');
  t.ok(lost.seq, 'the sender got its tick');
  await bob.waitFor(() => bob.frames.filter((x) => x.t === 'welcome').length >= 2 || undefined, 10_000, 'bob to reconnect');
  const after = await alice.client.text({ to: bob.user }, 'after');
  // The crashed delivery comes with the fan-out's retry; 'after' may overtake it, and the SDK says so (`late`).
  await bob.waitFor(() => (bob.messages.length + bob.late.length >= 3 ? true : undefined), 10_000, 'all three');
  t.same([...bob.messages, ...bob.late].map((m) => m.seq).sort((x, y) => x - y), [first.seq, lost.seq, after.seq], 'each once');
  t.ok(bob.messages.some((m) => m.seq === after.seq), 'the one after the crash in order');
  t.ok(bob.late.every((m) => m.seq === lost.seq), 'only the interrupted one may come late');
});

t.test('a sender is ticked once the message is in the log, while the recipient\'s entity keeps crashing on it; the retries bring it once', async (t) => {
  const alice = await faulty.device(t);
  const bob = await faulty.device(t, { connect: false });
  // Bob's entity crashes on the delivery and on the first retry (1.5 s); the second (3 s later) lands.
  const crashes = (await faulty.actors()).user.crashes;
  await arm('user', bob.user, 2);
  const tick = await alice.client.send({ to: bob.user }, 'text', { text: 'hello' }, { cid: 'slow-1' });
  t.match(tick, { cid: 'slow-1', seq: 1 }, 'the tick does not wait for the recipient');
  t.notOk(tick.dup, 'the first answer, not a resend\'s');
  for (const until = Date.now() + 10_000; (await faulty.actors()).user.crashes < crashes + 2;) {
    if (Date.now() > until) throw new Error('the delivery and its first retry did not both crash');
    await new Promise((r) => setTimeout(r, 50));
  }
  await bob.client.connect();
  await bob.waitMessage((m) => m.cid === 'slow-1');
  t.equal((await faulty.actors()).user.crashes, crashes + 2, 'the delivery and the first retry crashed, the second landed');
  // A round trip after it: nothing else (no second copy) came before this.
  const after = await alice.client.text({ to: bob.user }, 'after');
  await bob.waitMessage((m) => m.seq === after.seq);
  t.same(texts(bob.messages), ['hello', 'after'], 'bob gets it once, then the next');
});

t.test('a group entity that crashes answers with an error and comes back with its members', async (t) => {
  const alice = await faulty.device(t);
  const bob = await faulty.device(t);
  const g = await alice.client.createGroup('Sturdy', [bob.user]);
  await arm('group', g.id);
  await t.rejects(bob.client.groupInfo(g.id), { code: 'internal' });
  t.same(await bob.client.groupInfo(g.id), g, 'reloaded from the store');
  t.same((await alice.client.renameGroup(g.id, 'Sturdier')).name, 'Sturdier');
});

// ---- passivation ----

const regionIds = async (type: 'user' | 'conv' | 'group') => (await idle.actors())[type].ids;
/** Waits until the entity is no longer live on the node (the admin tree lists live entities). */
async function passivated(type: 'user' | 'conv' | 'group', id: string): Promise<void> {
  const until = Date.now() + 10_000;
  while ((await regionIds(type)).includes(id)) {
    if (Date.now() > until) throw new Error(`${type} ${id} was not passivated`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('idle conversations are passivated and come back from the store: seqs continue, history and receipts intact', async (t) => {
  const alice = await idle.device(t);
  const bob = await idle.device(t);
  for (let i = 1; i <= 3; i++) await alice.client.text({ to: bob.user }, `m${i}`);
  const conv = (await bob.client.text({ to: alice.user }, 'm4')).conv;
  await delivered(alice, conv, 3);
  bob.client.read(conv, 3);
  await alice.waitFrame((x) => x.t === 'receipt' && x.status === 'read' && x.upTo === 3);
  t.ok((await regionIds('conv')).includes(conv), 'live while in use');
  const before = (await idle.actors()).conv;

  await passivated('conv', conv);
  const after = (await idle.actors()).conv;
  t.ok(after.passivated > before.passivated, 'counted as passivated');
  t.ok((await regionIds('user')).includes(alice.user), 'users with sockets stay live');

  const next = await alice.client.text({ to: bob.user }, 'm5');
  t.equal(next.seq, 5, 'the seq continues, not reset');
  t.ok((await idle.actors()).conv.spawned > after.spawned, 'the conversation was spawned again');
  t.same(texts(await alice.client.history(conv)), ['m1', 'm2', 'm3', 'm4', 'm5']);
  const dup = await alice.client.send({ to: bob.user }, 'text', { text: 'm5' }, { cid: next.cid });
  t.same([dup.seq, dup.dup], [5, true], 'resends are still recognised after passivation');
  // The read cursor came back too: reading up to 5 tells alice about 5, and the watermark never went back.
  bob.client.read(conv, 5);
  const r = await alice.waitFrame((x): x is ReceiptFrame => x.t === 'receipt' && x.status === 'read' && x.upTo === 5);
  t.equal(r.user, bob.user);
});

t.test('offline users are passivated and come back with their devices\' pointers', async (t) => {
  const alice = await idle.device(t);
  const bob = await idle.device(t);
  await alice.client.text({ to: bob.user }, 'one');
  await bob.waitMessage((m) => m.seq === 1);
  await delivered(alice, bob.messages[0]!.conv, 1);
  const ptr = bob.client.ptr;
  await bob.close();
  await passivated('user', bob.user);

  await alice.client.text({ to: bob.user }, 'two'); // spawns bob's entity to fill his inbox
  await passivated('user', bob.user);
  const back = await idle.device(t, { session: bob.session, phone: bob.phone, ptr });
  t.match(back.frames.find((x) => x.t === 'welcome'), { acked: ptr }, 'the acked pointer survived');
  await back.waitFrame((x) => x.t === 'synced');
  t.same(texts(back.messages), ['two']);
  t.equal(back.ptrs.length, 1);
  t.ok(back.ptrs[0]! > ptr, 'the inbox pointer goes on above the one the device held');
});

t.test('idle groups are passivated and come back with their members', async (t) => {
  const alice = await idle.device(t);
  const bob = await idle.device(t);
  const g = await alice.client.createGroup('Sleepy', [bob.user]);
  await alice.client.text({ conv: g.conv }, 'hi');
  await passivated('group', g.id);
  await passivated('conv', g.conv);
  t.same(await bob.client.groupInfo(g.id), g);
  const s = await bob.client.text({ conv: g.conv }, 'back');
  t.equal(s.seq, 3);
  await t.rejects(bob.client.renameGroup(g.id, 'mine'), { code: 'forbidden' }, 'roles came back too');
});
