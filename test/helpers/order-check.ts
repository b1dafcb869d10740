import type { Message, SentFrame } from '../../src/protocol/frames.js';
import { texts, type TestDevice } from './clients.js';
import { ADMIN_KEY, http, type Fixture } from './fixture.js';
import type t from 'tap';

/** The root `t` of tap or any subtest. */
type Asserts = typeof t | tap.Test;

/** One message a sender got its `sent` tick for. */
export interface Ticked { user: string; cid: string; seq: number; text: string }

/** A group of `senders` and `readers`, created by the first sender: its conversation. */
export async function groupOf(senders: TestDevice[], readers: TestDevice[]): Promise<string> {
  const [first, ...rest] = senders;
  const g = await first!.client.createGroup('order', [...rest, ...readers].map((d) => d.user));
  return g.conv;
}

/**
 * Every sender sends `perSender` texts into `conv`, at once or `window` at a time. A retryable refusal (the entity crashed, a slow
 * fan-out) is resent with the same cid, as the SDK's users are told to, up to `attempts` times. Resolves with
 * every tick, the number of resends that were needed and the refusals by code.
 */
export async function sendConcurrently(senders: TestDevice[], conv: string, perSender: number, attempts = 5, window = perSender): Promise<{ ticked: Ticked[]; resends: number; refusals: Record<string, number> }> {
  const ticked: Ticked[] = [];
  let resends = 0;
  const refusals: Record<string, number> = {};
  const one = async (d: TestDevice, i: number): Promise<void> => {
    const cid = `${d.user}-${i}`;
    const text = `m ${d.user} ${i}`;
    for (let a = 1; ; a++) {
      try {
        const s: SentFrame = await d.client.send({ conv }, 'text', { text }, { cid });
        ticked.push({ user: d.user, cid, seq: s.seq, text });
        return;
      } catch (err) {
        const code = (err as { code?: string }).code ?? String(err);
        refusals[code] = (refusals[code] ?? 0) + 1;
        if (a >= attempts || !(err as { retryable?: boolean }).retryable) throw err;
        resends++;
      }
    }
  };
  // Each sender sends in batches of `window` (all at once by default), a batch once the one before is answered.
  await Promise.all(senders.map(async (d) => {
    for (let i = 0; i < perSender; i += window) await Promise.all(Array.from({ length: Math.min(window, perSender - i) }, (_, j) => one(d, i + j)));
  }));
  return { ticked, resends, refusals };
}

/**
 * The checker. No two ticks share a seq; every ticked message is in `history`; each device receives every
 * ticked message of the others exactly once (after the SDK's dedupe) and nothing else, its `message`s in
 * strictly increasing seq. `late` (a message delivered after a later one, which the SDK emits apart) is
 * counted, and allowed only if `allowLate`. Waits up to `ms` for the deliveries.
 */
export async function checkDelivered(
  t: Asserts,
  conv: string,
  ticked: Ticked[],
  history: Message[],
  devices: TestDevice[],
  opts: { allowLate?: boolean; ms?: number } = {},
): Promise<void> {
  const bySeq = new Map<number, Ticked>();
  const shared = ticked.filter((x) => bySeq.has(x.seq) || (bySeq.set(x.seq, x), false));
  t.strictSame(shared.map((x) => x.seq), [], 'no two ticked messages share a seq');

  const stored = new Map(history.map((m) => [m.seq, m]));
  const missing = ticked.filter((x) => stored.get(x.seq)?.cid !== x.cid || (stored.get(x.seq)?.body as { text?: string } | undefined)?.text !== x.text);
  t.strictSame(missing.map((x) => x.seq), [], 'every ticked message is in history, under its seq');

  for (const d of devices) {
    const expected = ticked.filter((x) => x.user !== d.user).map((x) => x.seq).sort((a, b) => a - b);
    const got = () => [...d.messages, ...d.late].filter((m) => m.conv === conv && m.kind === 'text');
    const want = new Set(expected);
    await d.waitFor(() => (expected.every((s) => got().some((m) => m.seq === s)) ? true : undefined), opts.ms ?? 30_000,
      `${expected.length} messages at ${d.user}`).catch(() => undefined); // what is missing is reported below
    const inOrder = d.messages.filter((m) => m.conv === conv && m.kind === 'text').map((m) => m.seq);
    const inversions = inOrder.filter((s, i) => i > 0 && s <= inOrder[i - 1]!).length;
    t.equal(inversions, 0, `${d.user}: its messages arrive in strictly increasing seq (${inOrder.length} of them)`);
    const all = got().map((m) => m.seq);
    const counts = new Map<number, number>();
    for (const s of all) counts.set(s, (counts.get(s) ?? 0) + 1);
    t.strictSame(expected.filter((s) => counts.get(s) !== 1), [], `${d.user}: every ticked message of the others exactly once`);
    t.strictSame(all.filter((s) => !want.has(s)), [], `${d.user}: nothing it wasn't meant to get`);
    const late = d.late.filter((m) => m.conv === conv).length;
    if (opts.allowLate) t.pass(`${d.user}: ${late} came late (after a crash)`);
    else t.equal(late, 0, `${d.user}: none came late`);
  }
}

/**
 * A cid sent twice back to back (the second while the first is still being stored, on a store with a real
 * round trip): both are answered with the same seq, the second `dup`, and the recipient gets it once, before
 * the message sent after it.
 */
export async function resendWhileStoring(t: Asserts & { teardown(f: () => unknown): void }, f: Fixture): Promise<void> {
  const alice = await f.signInOnly();
  const bob = await f.device(t);
  const raw = await f.raw(t, alice.session.token);
  const send = (cid: string, text: string) => raw.send({ t: 'send', cid, to: bob.user, kind: 'text', body: { text } });
  send('twice', 'once');
  send('twice', 'once');
  send('after', 'next');
  const sentOf = (cid: string) => raw.frames.filter((x) => x.t === 'sent' && x.cid === cid);
  await raw.next(() => sentOf('twice').length === 2 && sentOf('after').length === 1, 'three ticks', 15_000);
  const [a, b] = sentOf('twice');
  t.equal(a!.seq, b!.seq, 'both sends of the cid are answered with one seq');
  t.strictSame([a!.dup, b!.dup], [undefined, true], 'the second as a duplicate');
  t.equal(sentOf('after')[0]!.seq, a!.seq + 1, 'the next message took the next seq');
  await bob.waitMessage((m) => m.seq === a!.seq + 1, 'the next message', 10_000);
  t.strictSame(texts(bob.messages), ['once', 'next'], 'the recipient got it once, in order');
}

type Scenario = Asserts & { teardown(f: () => unknown): void };

/** 400 concurrent sends from four senders into one group: each device gets them in seq order, once. */
export async function concurrentSends(t: Scenario, f: Fixture): Promise<void> {
  const senders = await Promise.all([1, 2, 3, 4].map(() => f.device(t)));
  const reader = await f.device(t);
  const conv = await groupOf(senders, [reader]);
  const { ticked, refusals } = await sendConcurrently(senders, conv, 100);
  t.equal(ticked.length, 400, 'every send was ticked');
  t.strictSame(refusals, {}, 'none refused on the way');
  const history = await reader.client.history(conv, { limit: 500 });
  await checkDelivered(t, conv, ticked, history, [reader, ...senders]);
}

/** A conversation crashed with writes in flight (node started with PARLEY_FAULTS=1): nothing of the dead incarnation ticks or fans out. */
export async function crashMidBurst(t: Scenario, f: Fixture): Promise<void> {
  const senders = await Promise.all([1, 2, 3, 4].map(() => f.device(t)));
  const reader = await f.device(t);
  const conv = await groupOf(senders, [reader]);
  const crashesBefore = (await f.actors()).conv!.crashes;
  // Crash it while the burst is going: after the first ticks, with the rest being stored and fanned out.
  let armed = false;
  const armWhenBusy = (async () => {
    await reader.waitFor(() => (reader.messages.length >= 40 ? true : undefined), 20_000, 'the burst under way');
    const r = await http(f.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json: { type: 'conv', id: conv, times: 1 } });
    if (r.status !== 200) throw new Error(`arming failed: ${r.status}`);
    armed = true;
  })();
  // Five at a time per sender: the burst lasts long enough that the crash armed mid-way finds writes in flight.
  const { ticked, resends, refusals } = await sendConcurrently(senders, conv, 100, 10, 5);
  await armWhenBusy;
  t.ok(armed, 'the crash was armed mid-burst');
  t.equal((await f.actors()).conv!.crashes, crashesBefore + 1, 'the conversation crashed once');
  t.ok(resends > 0, `senders were told to resend (${resends} resends)`);
  // What was being stored at the crash is answered at once ('internal', resend); what was ticked and not yet
  // fanned out is re-driven from the log by the next activation (the checker below sees it arrive, once).
  t.strictSame(Object.keys(refusals), ['internal'], `every refusal says the delivery was interrupted (${JSON.stringify(refusals)})`);
  t.equal(ticked.length, 400, 'every send was ticked in the end');
  const history = await reader.client.history(conv, { limit: 500 });
  await checkDelivered(t, conv, ticked, history, [reader, ...senders], { allowLate: true });
}

/**
 * A conversation crashed while a delivery it ticked is still unconfirmed (the recipient's entity crashed on
 * it, so no confirmation is coming): the next activation re-drives it from the log, and the recipient gets it.
 * The dead incarnation's fan-out mark must not claim what its abandoned fan-out never delivered.
 */
export async function crashWithDeliveryUnconfirmed(t: Scenario, f: Fixture): Promise<void> {
  const alice = await f.device(t);
  const bob = await f.device(t, { reconnect: true });
  const arm = async (type: string, id: string) => {
    const r = await http(f.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json: { type, id, times: 1 } });
    if (r.status !== 200) throw new Error(`arming failed: ${r.status}`);
  };
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'hello' });
  await bob.waitMessage((m) => m.seq === first.seq, 'the first message');
  bob.client.flushAck();
  await bob.client.listDevices(); // a round trip through bob's entity: his ack is handled, it is idle now
  const before = await f.actors();

  await arm('user', bob.user); // bob's entity crashes on the next delivery: it never confirms it
  const second = await alice.client.send({ to: bob.user }, 'text', { text: 'unconfirmed' });
  t.equal(second.seq, first.seq + 1, 'ticked: it is in the log');
  await arm('conv', second.conv); // and the conversation crashes before its fan-out retries
  const third = await alice.client.send({ to: bob.user }, 'text', { text: 'after the crash' }).catch(async (err: unknown) => {
    t.match(err, { code: 'internal' }, 'the send that crashed the conversation is refused (resend)');
    return alice.client.send({ to: bob.user }, 'text', { text: 'after the crash' });
  });
  const after = await f.actors();
  t.equal(after.user!.crashes, before.user!.crashes + 1, "bob's entity crashed once");
  t.equal(after.conv!.crashes, before.conv!.crashes + 1, 'the conversation crashed once');

  await bob.waitMessage((m) => m.seq === third.seq, 'the message after the crash', 15_000);
  await bob.waitMessage((m) => m.seq === second.seq, 'the unconfirmed message, re-driven by the next activation', 15_000);
  t.strictSame(texts(bob.messages).filter((x) => x === 'unconfirmed'), ['unconfirmed'], 'bob got it, once');
}
