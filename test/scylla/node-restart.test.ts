import t from 'tap';
import type { HasTeardown } from '../helpers/fixture.js';
import { startNodeProcess } from '../helpers/node-process.js';
import { waitFor, type TestDevice } from '../helpers/clients.js';
import { eventually, scyllaNodeForTests } from '../helpers/cql.js';

/**
 * A node on the Scylla store restarted on the same keyspace (and data directory, which holds only the token
 * secret): accounts, sessions, history, seq continuity, receipt cursors and undelivered inbox entries all
 * come back from CQL. Then the same after a crash (SIGKILL) in the middle of sending.
 */

const s = scyllaNodeForTests(t, 'parley_restart');

const texts = (d: TestDevice, conv: string) => d.messages.filter((m) => m.conv === conv && m.kind === 'text').map((m) => (m.body as { text: string }).text);
/** The same device again (same session, same inbox pointer), on whatever node process runs now. */
const again = (t: HasTeardown, d: TestDevice) => s.f.device(t, { session: d.session, phone: d.phone, ptr: d.client.ptr });

/** Inbox rows of a device, straight from CQL. */
async function inboxPtrs(d: TestDevice): Promise<number[]> {
  const rs = await s.admin.execute(`SELECT ptr FROM ${s.keyspace}.inbox WHERE device = ? AND ptr > 0`, [`${d.user}.${d.session.device}`], { prepare: true });
  return rs.rows.map((r) => Number(r.get('ptr')));
}

t.test('a graceful restart keeps accounts, history, seqs, cursors and undelivered messages', async (t) => {
  const alice = await s.f.device(t);
  const bob = await s.f.device(t);
  const carol = await s.f.device(t, { connect: false });
  await alice.client.setProfile({ name: 'Alice' });

  const ab: string[] = [];
  for (let i = 1; i <= 3; i++) ab.push((await alice.client.text({ to: bob.user }, `ab ${i}`)).conv);
  const conv = ab[0]!;
  await bob.waitFor(() => (texts(bob, conv).length === 3 ? true : undefined), 10_000, 'bob has 3');
  bob.client.read(conv, 3);
  await alice.waitFrame((x) => x.t === 'receipt' && x.status === 'read' && x.upTo === 3, 'read up to 3', 10_000);
  const toCarol = await alice.client.text({ to: carol.user }, 'for carol, while she is away');
  await alice.client.text({ to: carol.user }, 'and another');
  const bobPtr = bob.client.ptr;
  await alice.close();
  await bob.close();
  // The inbox writes follow the "sent" ack; this test is about what is stored, so let them land first.
  t.strictSame(await eventually(() => inboxPtrs(carol), (p) => p.length >= 2), [1, 2], 'carol\'s two messages wait in her inbox');

  await s.f.restart();

  const alice2 = await again(t, alice);
  t.equal(alice2.client.user, alice.user, 'the session token still works (same account, same device)');
  t.equal((await alice2.client.getProfile(alice.user)).name, 'Alice', 'the profile was kept');
  const history = await alice2.client.history(conv, { limit: 10 });
  t.strictSame(history.map((m) => [m.seq, (m.body as { text: string }).text]), [[1, 'ab 1'], [2, 'ab 2'], [3, 'ab 3']], 'history');
  const next = await alice2.client.text({ to: bob.user }, 'ab 4');
  t.equal(next.seq, 4, 'the conversation goes on from its last seq');

  const bob2 = await again(t, bob);
  await bob2.waitMessage((m) => m.conv === conv && m.seq === 4, 'the new message', 10_000);
  t.strictSame(texts(bob2, conv), ['ab 4'], 'bob resumes from his pointer: only what is new');
  t.ok(bob2.ptrs[0]! > bobPtr, 'inbox pointers go on above the one he held');

  // Carol was never online: both messages waited in her inbox across the restart.
  const carol2 = await again(t, carol);
  await carol2.waitFor(() => (carol2.messages.length >= 2 ? true : undefined), 10_000, 'carol\'s two messages');
  t.strictSame(texts(carol2, toCarol.conv), ['for carol, while she is away', 'and another'], 'carol gets what waited for her, in order');
  const receipt = await alice2.waitFrame((x) => x.t === 'receipt' && x.conv === toCarol.conv && x.status === 'delivered' && x.upTo === 2, 'delivered to carol', 10_000);
  t.ok(receipt, 'alice learns they were delivered');

  // The read cursor from before the restart still holds: reading less changes nothing, reading more does.
  bob2.client.read(conv, 4);
  const read = await alice2.waitFrame((x) => x.t === 'receipt' && x.conv === conv && x.status === 'read' && x.upTo === 4, 'read up to 4', 10_000);
  t.ok(read, 'receipts go on from the stored cursors');
  t.strictSame(s.f.errorLogs(), [], 'no errors logged');
});

t.test('a crash (SIGKILL) mid-traffic loses no message that was acked as sent', async (t) => {
  const alice = await s.f.device(t);
  const bob = await s.f.device(t, { connect: false });
  const acked = new Map<string, number>();
  let conv = '';
  let stop = false;
  const sending = (async () => {
    for (let i = 1; !stop && i <= 2000; i++) {
      try {
        const s = await alice.client.send({ to: bob.user }, 'text', { text: `k${i}` }, { cid: `k${i}` });
        acked.set(`k${i}`, s.seq);
        conv = s.conv;
      } catch {
        return; // the socket died with the node: not acked, so not promised
      }
    }
  })();
  await waitFor(() => (acked.size >= 50 ? true : undefined), 20_000, '50 acked messages');
  const dataDir = s.f.node.dataDir;
  await s.f.node.kill();
  stop = true;
  await sending;
  t.ok(acked.size >= 50, `${acked.size} messages were acked before the crash`);
  s.f.node = await startNodeProcess(s.f.env, dataDir);

  const alice2 = await s.f.device(t, { session: alice.session, phone: alice.phone });
  const stored = new Map<string, number>();
  for (let after = 0; ;) {
    const page = await alice2.client.history(conv, { after, limit: 500 });
    if (!page.length) break;
    for (const m of page) stored.set(m.cid, m.seq);
    after = page[page.length - 1]!.seq;
  }
  const notStored = [...acked].filter(([cid, seq]) => stored.get(cid) !== seq);
  t.strictSame(notStored, [], `all ${acked.size} acked messages are in history under their acked seq`);
  const next = await alice2.client.text({ to: bob.user }, 'after the crash');
  t.ok(next.seq > Math.max(...acked.values()), 'new seqs are above every acked one');

  const bob2 = await again(t, bob);
  await bob2.waitMessage((m) => m.seq === next.seq, 'the message sent after the crash', 20_000);
  t.equal(new Set(bob2.messages.map((m) => m.seq)).size, bob2.messages.length, 'no seq delivered twice');
  const got = new Set(bob2.messages.map((m) => m.cid));
  const undelivered = [...acked.keys()].filter((cid) => !got.has(cid));
  t.strictSame(undelivered, [], 'every acked message reaches the offline recipient');
});
