import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { Fixture, http } from '../helpers/fixture.js';
import { UNSHAPED } from '../helpers/node-process.js';
import { newPhone, sleep, waitFor, type TestDevice } from '../helpers/clients.js';
import type { RawSocket } from '../helpers/raw-socket.js';
import type { Message } from '../../src/protocol/frames.js';

/**
 * Security issue #10, part 4: request shaping. A client in a sync loop (`since: 0`, never acking, on one
 * socket or reconnecting) costs bounded frames and bytes while the node stays responsive; a sync page goes
 * out in slices a 1 MiB send buffer can take; one sender can't flood a big group; contact discovery is
 * counted in phones; HTTP routes and WebSocket upgrades are limited per address and per account.
 */

/** Every shaping knob at its default (an empty value is unset), over the test helpers' generous values. */
const DEFAULTS = Object.fromEntries(Object.keys(UNSHAPED).map((k) => [k, '']));
/** Filling inboxes fast is not what is tested: the frame rate of the sockets that do it is raised. */
const FAST = { PARLEY_RATE_PER_S: '100000', PARLEY_RATE_BURST: '100000' };

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const tcp = (d: TestDevice): Socket => (d.sockets.at(-1) as unknown as { _socket: Socket })._socket;

/** Sends `n` messages from `from` to `to` (offline or not), all at once; resolves when every one is ticked. */
async function fill(from: TestDevice, to: string, n: number, body: (i: number) => Message['body']): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => from.client.send({ to }, 'text', body(i + 1))));
}
const textBody = (size: number) => (i: number) => ({ text: `${i}:`.padEnd(size, 'x') });

/** A WebSocket upgrade from `localAddress`, recording every frame; or the HTTP refusal. */
type Upgrade = { ok: true; ws: WebSocket; frames: Record<string, any>[]; bytes: () => number } // eslint-disable-line @typescript-eslint/no-explicit-any
  | { ok: false; status: number; retryAfter: string | undefined; body: any }; // eslint-disable-line @typescript-eslint/no-explicit-any
function upgrade(url: string, token: string, localAddress = '127.0.0.1'): Promise<Upgrade> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws?token=${encodeURIComponent(token)}`, { localAddress });
  const frames: Record<string, any>[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  let bytes = 0;
  ws.on('message', (d: Buffer) => { bytes += d.byteLength; frames.push(packr.unpack(d) as Record<string, unknown>); });
  ws.on('error', () => undefined);
  return new Promise((resolve) => {
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => req.destroy());
      res.on('end', () => resolve({ ok: false, status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined, body: JSON.parse(body || '{}') }));
    });
    ws.once('open', () => resolve({ ok: true, ws, frames, bytes: () => bytes }));
  });
}
const send = (ws: WebSocket, frame: Record<string, unknown>) => ws.send(packr.pack(frame));
const closed = (ws: WebSocket) => new Promise<void>((r) => (ws.readyState === WebSocket.CLOSED ? r() : ws.once('close', () => r())));

/** One HTTP GET from `localAddress` (fetch can't choose it). */
function getFrom(url: string, path: string, localAddress: string, headers: Record<string, string> = {}): Promise<{ status: number; retryAfter?: string; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const u = new URL(path, url);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, localAddress, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => {
        let json: unknown;
        try { json = JSON.parse(body); } catch { json = undefined; }
        resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

interface Health { ms: number[]; failed: number; median: number; max: number }

/**
 * /healthz polled every 10 ms from a process of its own (so the test's own event loop, busy with the
 * attack, doesn't delay the measurement); resolves once its first (warm-up) request is answered. stop()
 * gives the time of every answer after that.
 */
async function healthProbe(url: string): Promise<{ stop(): Promise<Health> }> {
  const script = `
    const url = ${JSON.stringify(`${url}/healthz`)};
    const ms = []; let failed = 0, first = true, on = true;
    process.stdin.on('end', () => { on = false; }); process.stdin.resume();
    (async () => {
      while (on) {
        const t0 = performance.now();
        try { const r = await fetch(url); await r.arrayBuffer(); if (r.status !== 200) failed++; } catch { failed++; }
        if (first) { first = false; process.stdout.write('ready\\n'); } else ms.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 10));
      }
      process.stdout.write(JSON.stringify({ ms, failed }));
    })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const done = new Promise<Health>((resolve) => child.on('exit', () => {
    const r = JSON.parse(out.slice(out.indexOf('\n') + 1)) as { ms: number[]; failed: number };
    const sorted = [...r.ms].sort((a, b) => a - b);
    resolve({ ...r, median: sorted[sorted.length >> 1] ?? NaN, max: sorted.at(-1) ?? NaN });
  }));
  await waitFor(() => out.includes('\n') || undefined, 10_000, 'the health probe');
  return { stop: async () => { await sleep(50); child.stdin.end(); return done; } };
}

/**
 * The node answers /healthz within 100 ms during the attack: the median request does, and none takes long
 * (an unshaped node took 2.6 s). Single requests can stall on this 2-core machine, shared with other jobs,
 * whatever the node does (the node's CPU profile during the attack: ~40 ms busy in all), so the slowest is
 * reported and held to a looser bound.
 */
function healthy(t: Test, h: Health): void {
  t.equal(h.failed, 0, '/healthz always answered 200');
  t.ok(h.ms.length >= 3, `${h.ms.length} requests during the attack`);
  t.ok(h.median < 100, `/healthz answered within ${h.median.toFixed(1)} ms (median; slowest ${h.max.toFixed(1)} ms)`);
  t.ok(h.max < 500, `the slowest answer took ${h.max.toFixed(1)} ms`);
}

/** Everything the user entity was asked before this has been answered once its answer arrives. */
async function userRoundTrip(raw: RawSocket, user: string): Promise<void> {
  const r = await raw.request({ t: 'profile.get', user });
  if (r.t !== 'res') throw new Error(`profile.get answered ${JSON.stringify(r)}`);
}

let f: Fixture;
t.before(async () => { f = await Fixture.start({ ...DEFAULTS, ...FAST }); });
t.teardown(() => f?.destroy());

t.test('sync since:0, hundreds of times, never acking, on one socket: each inbox entry is sent once', async (t) => {
  const N = 1000;
  const SIZE = 1000;
  const alice = await f.device(t);
  const bob = await f.signInOnly();
  await fill(alice, bob.user, N, textBody(SIZE));

  const raw = await f.raw(t, bob.session.token);
  let bytes = 0;
  raw.ws.on('message', (d: Buffer) => { bytes += d.byteLength; });
  const probe = await healthProbe(f.url);
  const SYNCS = 300;
  for (let i = 0; i < SYNCS; i++) raw.send({ t: 'sync', since: 0, rid: `s${i}` });
  await raw.next((x) => x.t === 'synced', 'the first synced', 20_000);
  await userRoundTrip(raw, bob.user);
  const health = await probe.stop();

  const msgs = raw.frames.filter((x) => x.t === 'msg');
  t.equal(msgs.length, N, `${msgs.length} deliveries for ${SYNCS} syncs of ${N} unacked entries (it was ${SYNCS * N})`);
  t.same(msgs.map((x) => x.ptr), Array.from({ length: N }, (_, i) => i + 1), 'each once, in order');
  const synced = raw.frames.filter((x) => x.t === 'synced');
  t.ok(synced.every((x) => x.ptr === N && !x.more), 'every sync answered says: you hold everything');
  const refused = raw.frames.filter((x) => x.t === 'error');
  t.ok(refused.length > 0, `${refused.length} syncs over the device's frame-cost budget were refused`);
  t.ok(refused.every((x) => x.code === 'rate_limited' && x.retryable === true && x.retryAfterMs > 0 && /^s\d+$/.test(x.rid)),
    'as rate_limited, retryable, with retryAfterMs and the sync\'s rid');
  t.ok(bytes < N * (SIZE + 200) + SYNCS * 200, `${(bytes / 1e6).toFixed(2)} MB in all: about one inbox`);
  healthy(t, health);
});

t.test('reconnecting in a loop with sync since:0 and no acks: bounded per device, then refused', async (t) => {
  const N = 1000;
  const SIZE = 1000;
  const alice = await f.device(t);
  const bob = await f.signInOnly();
  await fill(alice, bob.user, N, textBody(SIZE));

  const probe = await healthProbe(f.url);
  let deliveries = 0, bytes = 0, upgrades = 0;
  const upgradeRefusals: Extract<Upgrade, { ok: false }>[] = [];
  const syncRefusals: Record<string, unknown>[] = [];
  const t0 = Date.now();
  for (let i = 0; i < 40; i++) {
    const u = await upgrade(f.url, bob.session.token);
    if (!u.ok) { upgradeRefusals.push(u); continue; }
    upgrades++;
    await waitFor(() => u.frames.find((x) => x.t === 'welcome'), 5000, 'welcome');
    send(u.ws, { t: 'sync', since: 0, rid: 'loop' });
    const answer = await waitFor(() => u.frames.find((x) => x.t === 'synced' || x.t === 'error'), 10_000, 'the sync\'s answer');
    if (answer.t === 'error') syncRefusals.push(answer);
    deliveries += u.frames.filter((x) => x.t === 'msg').length;
    bytes += u.bytes();
    u.ws.close();
    await closed(u.ws);
  }
  const loopS = (Date.now() - t0) / 1000;
  const health = await probe.stop();

  t.ok(upgrades <= 10 + Math.ceil(loopS), `${upgrades} upgrades of 40 got through in ${loopS.toFixed(1)} s (10 at once per user, then 1/s)`);
  t.equal(upgradeRefusals.length, 40 - upgrades, `${upgradeRefusals.length} were refused at the upgrade`);
  t.ok(upgradeRefusals.every((u) => u.status === 429 && Number(u.retryAfter) >= 1 && u.body.error.code === 'rate_limited' && u.body.error.retryable === true),
    '429 rate_limited with Retry-After');
  t.ok(deliveries <= 3 * N, `${deliveries} deliveries over the loop: the first page, then two resends from the device's budget (it was ${upgrades * N})`);
  t.ok(syncRefusals.length >= 1, `then the resends are refused (${syncRefusals.length})`);
  t.ok(syncRefusals.every((x) => x.code === 'rate_limited' && x.rid === 'loop' && (x.retryAfterMs as number) > 0), 'rate_limited, with the wait');
  t.ok(bytes < 3 * N * (SIZE + 200) + 40 * 1000, `${(bytes / 1e6).toFixed(2)} MB in all`);
  healthy(t, health);

  // Another user, same address: its own budgets.
  const carol = await f.device(t);
  t.ok(carol.client.connected, 'another user connects from the same address');

  // bob, syncing from what he holds, is served again: the resend budget is for what was sent and never acked.
  const back = await f.device(t, { session: bob.session, phone: bob.phone, ptr: N, connect: false });
  const until = Date.now() + 15_000;
  for (;;) {
    try { await back.client.connect(); break; } catch (e) { if (Date.now() > until) throw e; await sleep(300); }
  }
  await alice.client.text({ to: bob.user }, 'after the storm');
  const m = await back.waitMessage((x) => (x.body as { text: string }).text === 'after the storm');
  t.equal(back.ptrs[back.messages.indexOf(m)], N + 1, 'live again, right after the inbox');
});

t.test('the SDK, refused a sync that would resend too much, asks again once the wait is over', async (t) => {
  const r = await Fixture.start({ ...DEFAULTS, ...FAST, PARLEY_SYNC_RESEND_PER_S: '500', PARLEY_SYNC_RESEND_BURST: '1000' });
  t.teardown(() => r.destroy());
  const N = 1000;
  const alice = await r.device(t);
  const bob = await r.signInOnly();
  await fill(alice, bob.user, N, textBody(100));
  // Two sockets that never ack: the first page is free, the second resend takes the whole budget.
  for (let i = 0; i < 2; i++) {
    const raw = await r.raw(t, bob.session.token);
    raw.send({ t: 'sync', since: 0 });
    await raw.next((x) => x.t === 'synced', 'synced', 10_000);
    await raw.close();
  }
  // An app that lost its pointer (ptr 0) is refused at first, then served by itself.
  const app = await r.device(t, { session: bob.session, phone: bob.phone });
  const refused = await app.waitFrame((x) => x.t === 'error', 'the refusal');
  t.match(refused, { code: 'rate_limited', retryable: true });
  t.ok((refused as { retryAfterMs?: number }).retryAfterMs! > 0, 'with retryAfterMs');
  await app.waitFor(() => app.messages.length >= N || undefined, 15_000, 'the inbox, after the wait');
  t.same(app.messages.map((m) => (m.body as { text: string }).text.split(':')[0]), Array.from({ length: N }, (_, i) => String(i + 1)), 'every message once, in order');
  await app.waitFrame((x) => x.t === 'synced', 'synced');
});

t.test('an inbox of large messages drains in one sync through a 1 MiB send buffer, without a slow-consumer close', async (t) => {
  const N = 300;
  const BODY = 32_000; // near the 32 KiB body limit: ~9.6 MB, nine times the send buffer's cap
  const body = (i: number) => { const b = new Uint8Array(BODY); new DataView(b.buffer).setUint32(0, i); return b; };
  const numberOf = (b: unknown) => new DataView((b as Uint8Array).buffer, (b as Uint8Array).byteOffset).getUint32(0);
  const slowBefore = slowConsumers(await http(f.url, '/metrics'));
  const alice = await f.device(t);
  const bob = await f.signInOnly();
  await fill(alice, bob.user, N, body);

  const reader = await f.device(t, { session: bob.session, phone: bob.phone, connect: false });
  await reader.client.connect();
  // The app stalls for a second while its sync arrives: the kernel's buffers fill and the node must wait
  // for them to drain. Messages sent meanwhile must follow the page, not overtake it.
  tcp(reader).pause();
  const during = Promise.all([1, 2, 3].map(async (i) => { await sleep(200 * i); return alice.client.text({ to: bob.user }, `during ${i}`); }));
  await sleep(1000);
  tcp(reader).resume();
  await during;
  await reader.waitFor(() => reader.messages.length >= N + 3 || undefined, 60_000, 'every message');
  await alice.client.text({ to: bob.user }, 'live');
  await reader.waitMessage((m) => (m.body as { text?: string }).text === 'live', 'the live message after the sync');

  const got = reader.messages.map((m) => (m.body instanceof Uint8Array ? numberOf(m.body) : (m.body as { text: string }).text));
  t.same(got, [...Array.from({ length: N }, (_, i) => i + 1), 'during 1', 'during 2', 'during 3', 'live'], 'every message once, in order');
  t.same(reader.ptrs, [...reader.ptrs].sort((a, b) => a - b), 'in pointer order');
  t.ok(reader.messages.slice(0, N).every((m) => (m.body as Uint8Array).byteLength === BODY), 'bodies intact');
  t.same(reader.closes, [], 'never closed');
  t.equal(reader.frames.filter((x) => x.t === 'synced').length, 1, 'in one sync');
  t.equal(slowConsumers(await http(f.url, '/metrics')), slowBefore, 'no slow consumer was closed');
});

const slowConsumers = (r: { bytes: Buffer }): number => Number(/^parley_ws_slow_consumer_total (\d+)$/m.exec(r.bytes.toString())![1]);

t.test('users.lookup is counted in phones: past the budget it is refused, and a reconnect does not refill it', async (t) => {
  // The default burst (2,000), refilled at 1 a second instead of 100: what passes doesn't depend on the machine's speed.
  const l = await Fixture.start({ ...DEFAULTS, PARLEY_FRAME_COST_PER_S: '1' });
  t.teardown(() => l.destroy());
  const alice = await l.device(t);
  const phones = (n: number) => Array.from({ length: n }, () => newPhone());
  // 2,000 units at once: seven lookups of 256 phones pass (1,792), the eighth would be 2,048.
  for (let i = 0; i < 7; i++) await alice.client.lookup(phones(256));
  const err = await alice.client.lookup(phones(256)).then(() => undefined, (e: unknown) => e);
  t.match(err, { code: 'rate_limited', retryable: true }, 'the eighth is refused');
  t.ok((err as { retryAfterMs: number }).retryAfterMs > 0, `with retryAfterMs (${(err as { retryAfterMs: number }).retryAfterMs})`);
  t.match(await alice.client.lookup(phones(1)), { users: {} }, 'a small one still fits');

  const again = await l.device(t, { session: alice.session, phone: alice.phone });
  await t.rejects(again.client.lookup(phones(256)), { code: 'rate_limited' }, 'the same device on a new socket: the same budget');
  const bob = await l.device(t);
  t.match(await bob.client.lookup([alice.phone]), { users: { [alice.phone]: alice.user } }, 'another device is unaffected');
});

t.test('a sender flooding a group is refused past its fan-out budget; refused messages take no seq and are not stored', async (t) => {
  const g = await Fixture.start({ ...DEFAULTS, ...FAST, PARLEY_FANOUT_PER_S: '20', PARLEY_FANOUT_BURST: '200' });
  t.teardown(() => g.destroy());
  const alice = await g.signInOnly();
  const members = await Promise.all(Array.from({ length: 19 }, () => g.signInOnly()));
  const raw = await g.raw(t, alice.session.token);
  const created = await raw.request({ t: 'group.create', name: 'flood', members: members.map((m) => m.user) });
  const conv = created.data.conv as string;

  // alice's only device sends, so each message costs its 19 other members, of a budget of 200 at once:
  // ten pass, the rest of the flood is refused.
  const FLOOD = 40;
  for (let i = 1; i <= FLOOD; i++) raw.send({ t: 'send', cid: `f${i}`, conv, kind: 'text', body: { text: `flood ${i}` } });
  const answers = await waitFor(() => {
    const a = raw.frames.filter((x) => (x.t === 'sent' || x.t === 'error') && /^f\d+$/.test(x.cid));
    return a.length === FLOOD ? a : undefined;
  }, 10_000, 'every send answered');
  const sent = answers.filter((x) => x.t === 'sent').sort((a, b) => a.seq - b.seq);
  const refused = answers.filter((x) => x.t === 'error');
  t.ok(sent.length >= 10 && sent.length <= 12, `${sent.length} accepted`);
  t.equal(refused.length, FLOOD - sent.length, `${refused.length} refused`);
  t.ok(refused.every((x) => x.code === 'rate_limited' && x.retryable === true && x.retryAfterMs > 0), 'rate_limited, retryable, with retryAfterMs');
  t.same(sent.map((x) => x.seq), Array.from({ length: sent.length }, (_, i) => i + 2), 'the accepted took seqs 2.. (1 is "created") with no gap');

  // Round trip: what history holds is exactly what was accepted.
  const history = (await raw.request({ t: 'history', conv, limit: 100 })).data as Message[];
  t.same(history.map((m) => m.seq), Array.from({ length: sent.length + 1 }, (_, i) => i + 1), 'history: "created" and the accepted, nothing else');
  t.same(history.filter((m) => m.kind === 'text').map((m) => (m.body as { text: string }).text), sent.map((x) => `flood ${x.cid.slice(1)}`),
    'the accepted texts, in seq order');

  // Once the wait has passed, the next message takes the next seq: no refusal consumed one.
  await sleep(Math.max(...refused.map((x) => x.retryAfterMs as number)) + 50);
  raw.send({ t: 'send', cid: 'after', conv, kind: 'text', body: { text: 'after the wait' } });
  const after = await raw.next((x) => x.cid === 'after' && (x.t === 'sent' || x.t === 'error'), 'the answer');
  t.match(after, { t: 'sent', seq: sent.length + 2 }, 'the next seq');
  // Other senders are not affected.
  const bob = await g.device(t);
  const carol = await g.device(t);
  await bob.client.text({ to: carol.user }, 'hi');
});

t.test('HTTP routes and upgrades are limited per address (429, Retry-After); another address is unaffected; /healthz is not limited', async (t) => {
  const s = await Fixture.start({ ...DEFAULTS, PARLEY_IP_HTTP_PER_S: '1', PARLEY_IP_HTTP_BURST: '20', PARLEY_IP_UPGRADE_PER_S: '1', PARLEY_IP_UPGRADE_BURST: '3' });
  t.teardown(() => s.destroy());
  const { session } = await s.signInOnly(); // 3 requests of the 20
  const auth = { authorization: `Bearer ${session.token}` };
  const results = [];
  const t0 = Date.now();
  for (let i = 0; i < 25; i++) results.push(await getFrom(s.url, '/v1/accounts/me', '127.0.0.1', auth));
  const refilled = Math.ceil((Date.now() - t0) / 1000); // at 1 a second
  const ok = results.filter((r) => r.status === 200).length;
  const refused = results.filter((r) => r.status === 429);
  t.ok(ok >= 17 && ok <= 17 + refilled, `${ok} requests passed before the limit (17 left of the burst)`);
  t.equal(refused.length, 25 - ok, 'the rest got 429');
  t.ok(refused.every((r) => Number(r.retryAfter) >= 1 && r.json?.error?.code === 'rate_limited' && r.json.error.retryable === true), 'rate_limited with Retry-After');
  t.equal((await getFrom(s.url, '/v1/accounts/me', '127.0.0.2', auth)).status, 200, 'another address is served');
  t.equal((await getFrom(s.url, '/no/such/route', '127.0.0.1')).status, 429, 'unknown routes count too');
  for (let i = 0; i < 50; i++) {
    const h = await getFrom(s.url, '/healthz', '127.0.0.1');
    if (h.status !== 200) { t.fail(`healthz answered ${h.status}`); break; }
  }
  t.pass('/healthz always answers');

  const ups: Upgrade[] = [];
  for (let i = 0; i < 4; i++) ups.push(await upgrade(s.url, session.token));
  t.same(ups.map((u) => u.ok), [true, true, true, false], 'three upgrades at once, then refused');
  const last = ups[3] as Extract<Upgrade, { ok: false }>;
  t.equal(last.status, 429);
  t.ok(Number(last.retryAfter) >= 1, `Retry-After: ${last.retryAfter}`);
  t.match(last.body, { error: { code: 'rate_limited', retryable: true } });
  const other = await upgrade(s.url, session.token, '127.0.0.2');
  t.ok(other.ok, 'from another address the upgrade passes');
  for (const u of [...ups, other]) if (u.ok) { u.ws.close(); await closed(u.ws); }
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
