import type { Test } from 'tap';
import { ADMIN_KEY, http, type Fixture } from '../helpers/fixture.js';
import { device, signIn, sleep, waitFor, type TestDevice } from '../helpers/clients.js';
import type { Message } from '../../src/protocol/frames.js';
import { judge, resendFailed, sendBurst, type SendRecord } from '../helpers/ownership.js';

/**
 * Issue #11's ownership scenarios, run on LMDB (test/features/ownership.test.ts) and on the real Cassandra
 * (test/scylla/ownership.test.ts): a conversation crashing with appends in flight, and two nodes on one
 * store with senders through both. Both fail on a store without fences: a seq is handed out twice and one
 * ticked message replaces another.
 */

/** Every node of these scenarios shares this secret: a token signed by one node is valid on the other. */
export const SHARED_SECRET = 'ownership-tests-shared-secret-0123456789';
/** A socket may send a thousand messages in a few seconds (the inbox scenario sends over one block of pointers). */
export const MANY_FRAMES = { PARLEY_RATE_PER_S: '100000', PARLEY_RATE_BURST: '100000' };

async function fault(f: Fixture, json: object): Promise<void> {
  const r = await http(f.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json });
  if (r.status !== 200) throw new Error(`arming ${JSON.stringify(json)} failed: ${r.status}`);
}

async function arm(f: Fixture, type: 'conv', id: string): Promise<void> {
  await fault(f, { type, id, times: 1 });
}

const firstRecord = (d: TestDevice, conv: string, seq: number, text: string, cid: string): SendRecord =>
  ({ from: d, dest: { conv }, cid, text, seq });

/** `f` runs with PARLEY_FAULTS=1 and a slow append (PARLEY_FAULT_APPEND_DELAY_MS), so appends are in flight for a while. */
export async function crashWithAppendsInFlight(t: Test, f: Fixture): Promise<void> {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'first' }, { cid: 'first' });
  const conv = first.conv;
  const crashes = (await f.actors()).conv.crashes;
  // Twenty sends get their seqs and go to the (slow) store; while they are on their way the entity crashes
  // on the next message and restarts, and more sends follow from both sides.
  const inFlight = sendBurst(alice, { conv }, 'before', 20);
  await arm(f, 'conv', conv);
  const after = [...sendBurst(alice, { conv }, 'after', 20), ...sendBurst(bob, { conv }, 'bob', 10)];
  const records = await resendFailed(await Promise.all([...inFlight, ...after]));
  t.equal((await f.actors()).conv.crashes, crashes + 1, 'the conversation crashed once');
  const v = await judge([firstRecord(alice, conv, first.seq, 'first', 'first'), ...records], alice, conv);
  t.strictSame(v.sharedSeqs, [], 'no two ticked messages share a seq');
  t.strictSame(v.missing, [], 'every ticked message is in history at its seq, with its own body');
  t.strictSame(v.failed, [], 'every send was ticked in the end (resent with its cid after a retryable error)');
  t.equal(v.ticked, 51);
}

/** `a` and `b` are two node processes on one store (one LMDB directory, or one keyspace). */
export async function twoNodesOneStore(t: Test, a: { url: string }, b: { url: string }): Promise<void> {
  const alice = await device(a.url);
  const bob = await device(b.url);
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'hello' }, { cid: 'hello' });
  const conv = first.conv;
  // The conversation has an entity on each node now: alice's sends go to node a's, bob's to node b's.
  let records: SendRecord[] = [];
  for (let round = 0; round < 3; round++) {
    const sent = await Promise.all([...sendBurst(alice, { conv }, `a${round}`, 15), ...sendBurst(bob, { conv }, `b${round}`, 15)]);
    records.push(...sent);
  }
  records = await resendFailed(records, 2);
  for (const reader of [alice, bob]) {
    const v = await judge([firstRecord(alice, conv, first.seq, 'hello', 'hello'), ...records], reader, conv);
    t.strictSame(v.sharedSeqs, [], 'no two ticked messages share a seq');
    t.strictSame(v.missing, [], `every ticked message is in history with its own body (read through ${reader === alice ? 'a' : 'b'})`);
    t.strictSame(v.failed.filter((x) => !x.endsWith(': stale_owner')), [], 'a send not ticked was refused as sent to a stale owner (retryable)');
    t.ok(v.ticked >= 46, `the owner's senders were ticked (${v.ticked} of 91)`);
  }
}

/**
 * `a` and `b` on one store; bob is offline, so every delivery is an inbox write. Bob's user entity is alive
 * on both nodes: alice's messages (through a) and carol's (through b) take inbox pointers from each. Alice
 * sends more than one reserved block, so node a's entity renews its reservation after node b's claimed bob's
 * pointers: unfenced, a's ptrs run on into b's block and replace carol's entries.
 */
export async function inboxTwoNodes(t: Test, a: { url: string }, b: { url: string }): Promise<void> {
  const alice = await device(a.url);
  const carol = await device(b.url);
  t.teardown(() => Promise.all([alice.close(), carol.close()]));
  const { session, phone } = await signIn(a.url);
  const to = { to: session.user };
  const records: SendRecord[] = await Promise.all(sendBurst(alice, to, 'a-first', 10));
  records.push(...(await Promise.all(sendBurst(carol, to, 'c', 10))));
  for (let round = 0; round < 11; round++) records.push(...(await Promise.all(sendBurst(alice, to, `a${round}`, 100))));
  const all = await resendFailed(records, 2);
  const ticked = all.filter((r) => r.seq !== undefined);
  t.strictSame(all.filter((r) => r.seq === undefined).map((r) => `${r.cid}: ${r.error}`), [], 'every send ticked');
  const bob = await device(a.url, { session, phone });
  t.teardown(() => bob.close());
  const text = (m: Message) => (m.body as { text?: string } | undefined)?.text;
  const missing = () => {
    const got = new Map(bob.messages.map((m) => [`${m.cid}`, text(m)]));
    return ticked.filter((r) => got.get(r.cid) !== r.text).map((r) => r.cid);
  };
  await waitFor(() => (missing().length === 0 ? true : undefined), 30_000, 'every ticked message').catch(() => undefined);
  t.strictSame(missing(), [], `bob's device got every ticked message (${ticked.length}) from its inbox, with its own body`);
  t.equal(new Set(bob.ptrs).size, bob.ptrs.length, 'no inbox pointer came twice');
}

/**
 * `a` and `b` on one store. Node b's activation claims the conversation after node a's reserved its first
 * block; node a's senders then go on past half of it, so its renewal is refused: from then on its senders
 * get stale_owner (on LMDB already its next append is refused, inside the commit). Nothing either node
 * ticked shares a seq or is missing from history.
 */
export async function staleAfterRenewal(t: Test, a: { url: string }, b: { url: string }): Promise<void> {
  const alice = await device(a.url);
  const bob = await device(b.url);
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'hello' }, { cid: 'hello' });
  const conv = first.conv;
  const records: SendRecord[] = [firstRecord(alice, conv, first.seq, 'hello', 'hello')];
  records.push(...(await Promise.all(sendBurst(bob, { conv }, 'b', 5))));
  for (let round = 0; round < 7; round++) records.push(...(await Promise.all(sendBurst(alice, { conv }, `a${round}`, 100))));
  records.push(...(await Promise.all(sendBurst(bob, { conv }, 'b-after', 5))));
  const v = await judge(records, bob, conv);
  t.strictSame(v.sharedSeqs, [], 'no two ticked messages share a seq');
  t.strictSame(v.missing, [], 'every ticked message is in history with its own body');
  t.strictSame(v.failed.filter((x) => !x.endsWith(': stale_owner')), [], 'what was not ticked was refused as sent to a stale owner');
  const late = records.filter((r) => r.cid.startsWith('a6-'));
  t.ok(late.every((r) => r.error === 'stale_owner'), 'past its renewal, node a\'s activation hands out no seq');
  t.ok(records.filter((r) => r.from === bob).every((r) => r.seq !== undefined), 'the owner\'s senders were all ticked');
}

/**
 * `a` and `b` on one store; a group has an activation on each node. Each node's admin changes it once:
 * both activations take the same next journal seq, and one must not replace the other's event. The loser
 * is told to retry (its activation replays the journal), and no change is lost.
 */
export async function groupTwoNodes(t: Test, a: { url: string }, b: { url: string }): Promise<void> {
  const alice = await device(a.url);
  const bob = await device(b.url);
  const [dave, erin] = await Promise.all([signIn(a.url), signIn(a.url)]);
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  const g = await alice.client.createGroup('both', [bob.user]);
  await alice.client.makeAdmin(g.id, bob.user);
  await bob.client.groupInfo(g.id); // node b's activation replays the journal so far
  const retrying = async (f: () => Promise<unknown>): Promise<string> => {
    for (let i = 0; ; i++) {
      try {
        await f();
        return 'done';
      } catch (err) {
        const e = err as { code?: string; retryable?: boolean };
        if (!e.retryable || i >= 3) return e.code ?? String(err);
      }
    }
  };
  t.strictSame(await Promise.all([
    retrying(() => alice.client.addMembers(g.id, [dave.session.user])),
    retrying(() => bob.client.addMembers(g.id, [erin.session.user])),
  ]), ['done', 'done'], 'both changes were accepted (one after a retry)');
  // A stale activation learns of the other's change at its next write: a rename through each node.
  t.equal(await retrying(() => alice.client.renameGroup(g.id, 'renamed on a')), 'done');
  t.equal(await retrying(() => bob.client.renameGroup(g.id, 'renamed on b')), 'done');
  for (const [reader, node] of [[alice, 'a'], [bob, 'b']] as const) {
    const info = await reader.client.groupInfo(g.id);
    t.same(new Set(info.members.map((m) => m.user)), new Set([alice.user, bob.user, dave.session.user, erin.session.user]),
      `every member added is in the group (read through node ${node})`);
  }
  t.equal((await bob.client.groupInfo(g.id)).name, 'renamed on b', 'the last rename stands');
}

/**
 * A device's inbox pointers are reserved in the store a block (1,000) ahead, and a restarted user entity starts
 * above the stored reservation. While renewals fail, no ptr above it may be handed out: the device would have
 * seen it, and after a restart the same ptr would carry another message, which the device drops as one it
 * holds — a message acked `sent` and never shown. Here the renewals fail for a burst of more than a block, the
 * node is then killed before the recipient's acks are stored, and every message must still reach him.
 */
export async function renewalsFailThenKill(t: Test, f: Fixture): Promise<void> {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'first' }, { cid: 'first' });
  await bob.waitMessage((m) => m.cid === 'first');

  // A store that refuses the user entity's pointer bookkeeping: reservations and acked pointers.
  await fault(f, { store: 'inbox.reserve', times: 1_000_000 });
  await fault(f, { store: 'device.acked', times: 1_000_000 });
  const ticked: string[] = ['first'];
  for (let round = 0; round < 11; round++) {
    const sent = await resendFailed(await Promise.all(sendBurst(alice, { conv: first.conv }, `r${round}`, 100)));
    t.strictSame(sent.filter((r) => r.seq === undefined).map((r) => `${r.cid}: ${r.error}`), [], `round ${round}: every send ticked`);
    ticked.push(...sent.map((r) => r.cid));
  }
  // The conversation stores its fan-out mark once a second: past everything bob confirmed, nothing of it is
  // re-driven after the crash, and the next message takes the first ptr the restart hands out.
  await sleep(2500);
  await fault(f, { store: 'inbox.reserve', times: 0 });

  // The node dies with bob's acks unstored; bob comes back with the pointer his app kept.
  await f.restart('SIGKILL');
  const ptr = Math.max(...bob.ptrs);
  const bob2 = await f.device(t, { session: bob.session, ptr });
  const alice2 = await f.device(t, { session: alice.session });
  await alice2.client.send({ conv: first.conv }, 'text', { text: 'after' }, { cid: 'after' });
  ticked.push('after');

  const received = (d: typeof bob) => [...d.messages, ...d.late].filter((m) => m.conv === first.conv).map((m) => m.cid);
  const all = () => new Set([...received(bob), ...received(bob2)]);
  await waitFor(() => all().size >= ticked.length || undefined, 30_000, 'every message at bob').catch(() => undefined);
  await bob2.client.ping();
  t.strictSame(ticked.filter((cid) => !all().has(cid)), [], 'bob received every ticked message, before the crash or after it');
  t.equal(received(bob2).length, new Set(received(bob2)).size, 'none twice on the device after the crash');
}

