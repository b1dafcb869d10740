import t from 'tap';
import type { TestDevice } from '../helpers/clients.js';
import { eventually, scyllaNodeForTests } from '../helpers/cql.js';
import type { ReceiptFrame, ReceiptStatus, ServerFrame } from '../../src/protocol/frames.js';

/**
 * A node on the Scylla store (a real CQL server: PARLEY_CQL_CONTACT), driven through the SDK: 1:1 chat with
 * sent / delivered / read, offline delivery, history, idempotent resends and a group, all persisted in CQL.
 */

const s = scyllaNodeForTests(t, 'parley_chat');

const isReceipt = (x: ServerFrame): x is ReceiptFrame => x.t === 'receipt';
const waitReceipt = (d: TestDevice, conv: string, status: ReceiptStatus, upTo: number, user?: string) =>
  d.waitFrame((x): x is ReceiptFrame => isReceipt(x) && x.conv === conv && x.status === status && x.upTo >= upTo && x.user === user,
    `${status}${user ? ` by ${user}` : ''} up to ${upTo}`, 10_000);
const text = (d: TestDevice, conv: string) => d.messages.filter((m) => m.conv === conv && m.kind === 'text').map((m) => (m.body as { text: string }).text);

t.test('the node runs on the Scylla store', async (t) => {
  const rs = await s.admin.execute(`SELECT version FROM ${s.keyspace}.schema_version WHERE scope = 'parley' LIMIT 1`);
  t.ok(rs.rowLength, 'the node created its keyspace and schema');
  const alice = await s.f.device(t);
  const row = await s.admin.execute(`SELECT id, phone FROM ${s.keyspace}.users WHERE id = ?`, [alice.user], { prepare: true });
  t.equal(row.first()?.get('phone'), alice.phone, 'accounts are rows in CQL');
});

t.test('1:1: sent, delivered when the recipient acks, read when it reads', async (t) => {
  const alice = await s.f.device(t);
  const bob = await s.f.device(t, { autoAck: false });
  const sent = await alice.client.text({ to: bob.user }, 'hello over CQL');
  t.match(sent, { t: 'sent', seq: 1 }, 'stored: the first seq of the conversation');
  const conv = sent.conv;
  const got = await bob.waitMessage((m) => m.seq === sent.seq, 'the message', 10_000);
  t.match(got, { conv, seq: 1, from: alice.user, kind: 'text', body: { text: 'hello over CQL' } });

  bob.client.flushAck();
  t.match(await waitReceipt(alice, conv, 'delivered', 1, bob.user), { status: 'delivered', upTo: 1, user: bob.user });
  bob.client.read(conv, 1);
  t.match(await waitReceipt(alice, conv, 'read', 1, bob.user), { status: 'read', upTo: 1, user: bob.user });

  const reply = await bob.client.text({ to: alice.user }, 'hi alice');
  t.equal(reply.seq, 2, 'one seq order for both directions');
  await alice.waitMessage((m) => m.seq === 2, 'the reply', 10_000);
  const cursors = await s.admin.execute(`SELECT user_id, delivered, read_upto FROM ${s.keyspace}.receipt_cursors WHERE conv = ?`, [conv], { prepare: true });
  const bobCursor = cursors.rows.find((r) => r.get('user_id') === bob.user);
  t.equal(Number(bobCursor?.get('read_upto')), 1, 'receipt cursors are stored');
});

t.test('offline delivery: messages wait in the inbox, arrive in order on connect, then leave it', async (t) => {
  const alice = await s.f.device(t);
  const carol = await s.f.device(t, { connect: false });
  const sent = [];
  for (let i = 1; i <= 5; i++) sent.push(await alice.client.text({ to: carol.user }, `while you were away ${i}`));
  const conv = sent[0]!.conv;
  const ptrs = async () => (await s.admin.execute(`SELECT ptr FROM ${s.keyspace}.inbox WHERE device = ? AND ptr > 0`, [`${carol.user}.${carol.session.device}`], { prepare: true }))
    .rows.map((r) => Number(r.get('ptr')));
  t.strictSame(await eventually(ptrs, (p) => p.length >= 5), [1, 2, 3, 4, 5], 'five inbox rows in CQL');

  await carol.client.connect();
  await carol.waitFor(() => (carol.messages.length >= 5 ? true : undefined), 10_000, 'five messages');
  t.strictSame(text(carol, conv), [1, 2, 3, 4, 5].map((i) => `while you were away ${i}`), 'all of them, in order, once');
  await waitReceipt(alice, conv, 'delivered', 5, carol.user);
  // The ack deletes them from the inbox (in the background of the user entity).
  t.strictSame(await eventually(ptrs, (p) => p.length === 0), [], 'acked entries leave the inbox');
});

t.test('history, and a resend with the same cid is acked once', async (t) => {
  const alice = await s.f.device(t);
  const bob = await s.f.device(t);
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'once' }, { cid: 'same-cid-1' });
  const again = await alice.client.send({ to: bob.user }, 'text', { text: 'once' }, { cid: 'same-cid-1' });
  t.equal(again.seq, first.seq, 'same seq');
  t.equal(again.dup, true, 'flagged as a duplicate');
  for (let i = 2; i <= 4; i++) await alice.client.text({ to: bob.user }, `m${i}`);
  const history = await bob.client.history(first.conv, { limit: 10 });
  t.strictSame(history.map((m) => (m.body as { text: string }).text), ['once', 'm2', 'm3', 'm4']);
  t.strictSame((await bob.client.history(first.conv, { after: 2, limit: 10 })).map((m) => m.seq), [3, 4]);
  await bob.waitFor(() => (bob.messages.filter((m) => m.conv === first.conv).length >= 4 ? true : undefined), 10_000, 'four deliveries');
  t.equal(bob.messages.filter((m) => m.conv === first.conv).length, 4, 'the duplicate was not delivered again');
});

t.test('a group: created, messages reach every member', async (t) => {
  const alice = await s.f.device(t);
  const bob = await s.f.device(t);
  const carol = await s.f.device(t);
  const g = await alice.client.createGroup('climbing', [bob.user, carol.user]);
  const conv = g.conv;
  const sent = await alice.client.send({ conv }, 'text', { text: 'saturday?' });
  for (const d of [bob, carol]) {
    await d.waitMessage((m) => m.conv === conv && m.seq === sent.seq, 'the group message', 10_000);
  }
  const row = await s.admin.execute(`SELECT name FROM ${s.keyspace}.chat_groups WHERE id = ?`, [g.id], { prepare: true });
  t.equal(row.first()?.get('name'), 'climbing', 'the group is a row in CQL');
  t.strictSame(s.f.errorLogs(), [], 'the node logged no errors');
});
