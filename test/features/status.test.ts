import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { sleep, type TestDevice } from '../helpers/clients.js';
import type { Receipts } from '../../src/client/parley-client.js';
import type { ReceiptFrame, ReceiptStatus, ServerFrame } from '../../src/protocol/frames.js';

/** Issue #2 §6: sent → delivered (on the recipient's ack) → read (on `read`), per member and for all in groups. */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

const isReceipt = (x: ServerFrame): x is ReceiptFrame => x.t === 'receipt';
const receipts = (d: TestDevice, conv: string) => d.frames.filter(isReceipt).filter((r) => r.conv === conv);
const waitReceipt = (d: TestDevice, conv: string, status: ReceiptStatus, upTo: number, user?: string) =>
  d.waitFrame((x): x is ReceiptFrame => isReceipt(x) && x.conv === conv && x.status === status && x.upTo >= upTo && x.user === user,
    `${status}${user ? ` by ${user}` : ''} up to ${upTo}`);
/**
 * Receipts go from the conversation straight to the senders' sockets (`router.toUser`), through no user
 * entity: a delivered receipt in the turn that takes the ack, a read receipt once its cursor is stored. Acks
 * reach the conversation through the acking user's entity, reads straight from the reader's socket. So
 * `settle` makes a round trip through each `via` device's user entity (its reads and acks are then queued at
 * the conversation), then `viewer` asks the conversation: answered in a later turn, so every receipt sent
 * before is ahead of the answer on the viewer's socket, and a read receipt still waiting for its store write
 * shows in the answer's cursors.
 */
const settle = async (viewer: TestDevice, conv: string, ...via: TestDevice[]): Promise<Receipts> => {
  for (const d of via) await d.client.getProfile(d.user);
  return viewer.client.receipts(conv);
};

t.test('1:1: sent, then delivered once the recipient acks, then read once it says so', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t, { autoAck: false });
  const bob2 = await f.secondDevice(t, bob, { autoAck: false });
  const sent = await alice.client.text({ to: bob.user }, 'did you get this?');
  t.equal(sent.t, 'sent', 'one tick: stored');
  const conv = sent.conv;
  await bob.waitMessage((m) => m.seq === sent.seq);
  await bob2.waitMessage((m) => m.seq === sent.seq);
  let seen = await settle(alice, conv, bob, bob2);
  t.same(receipts(alice, conv), [], 'received but not acked: not yet delivered');
  t.same(seen.members[bob.user], { delivered: 0, read: 0 }, 'and the conversation says so');

  bob.client.flushAck();
  const delivered = await waitReceipt(alice, conv, 'delivered', sent.seq, bob.user);
  t.same(delivered, { t: 'receipt', conv, status: 'delivered', upTo: sent.seq, user: bob.user });
  seen = await settle(alice, conv, bob, bob2);
  t.same(receipts(alice, conv).map((r) => r.status), ['delivered'], 'no read receipt before bob reads');
  t.same(seen.members[bob.user], { delivered: sent.seq, read: 0 }, 'nor a read cursor');

  bob.client.read(conv, sent.seq);
  const read = await waitReceipt(alice, conv, 'read', sent.seq, bob.user);
  t.same(read, { t: 'receipt', conv, status: 'read', upTo: sent.seq, user: bob.user });
  const other = await waitReceipt(bob2, conv, 'read', sent.seq, bob.user);
  t.equal(other.upTo, sent.seq, 'bob\'s other device learns that bob read it');
  t.same(receipts(alice, conv).map((r) => r.status), ['delivered', 'read'], 'in order, once each');

  // Reading again, or reading less, changes nothing. Bob's next read comes after them on his socket, and its
  // receipt after any of theirs: the conversation takes reads in order and the store writes cursors in order.
  bob.client.read(conv, sent.seq);
  bob.client.read(conv, 0);
  const more = await alice.client.text({ to: bob.user }, 'and this?');
  await bob.waitMessage((m) => m.seq === more.seq);
  bob.client.flushAck();
  await waitReceipt(alice, conv, 'delivered', more.seq, bob.user);
  bob.client.read(conv, more.seq);
  await waitReceipt(alice, conv, 'read', more.seq, bob.user);
  t.same(receipts(alice, conv).map((r) => `${r.status}:${r.upTo}`),
    [`delivered:${sent.seq}`, `read:${sent.seq}`, `delivered:${more.seq}`, `read:${more.seq}`], 'the repeated reads told alice nothing');
});

t.test('receipts are watermarks: one ack or read covers everything before it', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t, { autoAck: false });
  const sends = [];
  for (let i = 0; i < 5; i++) sends.push(await alice.client.text({ to: bob.user }, `m${i}`));
  const last = sends.at(-1)!;
  await bob.waitMessage((m) => m.seq === last.seq);
  bob.client.flushAck();
  const d = await waitReceipt(alice, last.conv, 'delivered', last.seq, bob.user);
  t.equal(d.upTo, last.seq, 'delivered up to the last one');
  bob.client.read(last.conv, 3);
  t.equal((await waitReceipt(alice, last.conv, 'read', 3, bob.user)).upTo, 3);
  bob.client.read(last.conv, 1000);
  t.equal((await waitReceipt(alice, last.conv, 'read', 4, bob.user)).upTo, last.seq, 'a read past the end stops at the last message');
});

t.test('reading implies delivered, even without an ack', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t, { autoAck: false });
  const sent = await alice.client.text({ to: bob.user }, 'read me');
  await bob.waitMessage((m) => m.seq === sent.seq);
  bob.client.read(sent.conv, sent.seq);
  await waitReceipt(alice, sent.conv, 'read', sent.seq, bob.user);
  t.ok(receipts(alice, sent.conv).some((r) => r.status === 'delivered' && r.upTo === sent.seq), 'delivered came with read');
});

t.test('groups: senders are told delivered_all and read_all; per-member detail is asked for', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t, { autoAck: false });
  const bob2 = await f.secondDevice(t, bob, { autoAck: false });
  const carol = await f.device(t, { autoAck: false });
  const g = await alice.client.createGroup('Receipts', [bob.user, carol.user]);
  const conv = g.conv;
  const sent = await alice.client.text({ conv }, 'hello group');
  for (const d of [bob, bob2, carol]) await d.waitMessage((m) => m.seq === sent.seq);
  const cursors = async (user: string) => (await alice.client.receipts(conv)).members[user];
  const until = async (user: string, want: { delivered: number; read: number }) => {
    for (let i = 0; i < 200; i++) {
      if (JSON.stringify(await cursors(user)) === JSON.stringify(want)) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    t.fail(`${user} never reached ${JSON.stringify(want)}`);
  };

  t.same(await alice.client.receipts(conv), {
    conv, members: { [alice.user]: { delivered: 0, read: 0 }, [bob.user]: { delivered: 0, read: 0 }, [carol.user]: { delivered: 0, read: 0 } },
    all: { delivered: 0, read: 0 },
  }, 'nobody acked yet (a sender\'s own messages move no cursor of hers)');
  bob.client.flushAck();
  await until(bob.user, { delivered: sent.seq, read: 0 });
  let seen = await settle(alice, conv, bob, bob2, carol);
  t.same(receipts(alice, conv), [], 'no per-member receipt is pushed, and no delivered_all while carol has not acked');
  t.same(seen.all, { delivered: 0, read: 0 }, 'the conversation agrees');
  carol.client.flushAck();
  t.same(await waitReceipt(alice, conv, 'delivered_all', sent.seq), { t: 'receipt', conv, status: 'delivered_all', upTo: sent.seq },
    'delivered_all names no user');

  bob.client.read(conv, sent.seq);
  t.same(await waitReceipt(bob2, conv, 'read', sent.seq, bob.user), { t: 'receipt', conv, status: 'read', upTo: sent.seq, user: bob.user },
    'bob\'s other device learns he read it');
  await until(bob.user, { delivered: sent.seq, read: sent.seq });
  seen = await settle(alice, conv, bob, bob2, carol);
  t.same(receipts(alice, conv).map((r) => r.status), ['delivered_all'], 'not read by all while carol has not read');
  t.same(seen.all, { delivered: sent.seq, read: 0 }, 'the conversation agrees');
  carol.client.read(conv, sent.seq);
  t.same(await waitReceipt(alice, conv, 'read_all', sent.seq), { t: 'receipt', conv, status: 'read_all', upTo: sent.seq });
  t.same(receipts(alice, conv).map((r) => r.status), ['delivered_all', 'read_all'], 'alice was told only the watermarks');

  // Watermarks go to the senders of the messages they cover, not to everyone.
  const fromCarol = await carol.client.text({ conv }, 'carol here');
  for (const d of [bob, bob2]) await d.waitMessage((m) => m.seq === fromCarol.seq);
  bob.client.flushAck();
  await waitReceipt(carol, conv, 'delivered_all', fromCarol.seq);
  t.pass('carol learns her message reached everyone (alice acks by herself)');
  await settle(alice, conv, alice, bob, bob2, carol);
  t.notOk(receipts(alice, conv).some((r) => r.upTo >= fromCarol.seq), 'alice is not told about carol\'s message');

  const outsider = await f.device(t);
  await t.rejects(outsider.client.receipts(conv), { code: 'forbidden' }, 'only members may ask');
});

t.test('a sender offline while its messages were delivered and read learns it when it reconnects', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t, { connect: false });
  const carol = await f.device(t, { connect: false });
  const first = await alice.client.text({ to: bob.user }, 'one');
  const second = await alice.client.text({ to: bob.user }, 'two');
  const g = await alice.client.createGroup('Away', [bob.user, carol.user]);
  const inGroup = await alice.client.text({ conv: g.conv }, 'hello group');
  alice.client.close();
  await alice.waitFor(() => !alice.client.connected || undefined, 5000, 'alice offline');

  await bob.client.connect();
  await carol.client.connect();
  await bob.waitMessage((m) => m.seq === second.seq);
  await bob.waitMessage((m) => m.seq === inGroup.seq);
  await carol.waitMessage((m) => m.seq === inGroup.seq);
  bob.client.read(first.conv, first.seq); // read the first only
  bob.client.read(g.conv, inGroup.seq);
  carol.client.read(g.conv, inGroup.seq);
  const readsTaken = async () => ((await bob.client.receipts(g.conv)).all?.read ?? 0) >= inGroup.seq
    && (await bob.client.receipts(first.conv)).members[bob.user]!.read >= first.seq;
  for (let i = 0; i < 250 && !(await readsTaken()); i++) await sleep(20);
  t.ok(await readsTaken(), 'the conversations took the reads');
  t.same(receipts(alice, first.conv), [], 'nothing reached alice while she was away');

  await alice.client.connect();
  t.same(await waitReceipt(alice, first.conv, 'delivered', second.seq, bob.user), { t: 'receipt', conv: first.conv, status: 'delivered', upTo: second.seq, user: bob.user },
    'on reconnect: both were delivered to bob');
  t.same(await waitReceipt(alice, first.conv, 'read', first.seq, bob.user), { t: 'receipt', conv: first.conv, status: 'read', upTo: first.seq, user: bob.user },
    'and he read the first');
  t.same(await waitReceipt(alice, g.conv, 'read_all', inGroup.seq), { t: 'receipt', conv: g.conv, status: 'read_all', upTo: inGroup.seq },
    'the group message was read by all');
  await waitReceipt(alice, g.conv, 'delivered_all', inGroup.seq);

  // A second reconnect repeats nothing already told; what is fully read is no longer asked about.
  const told = alice.frames.filter(isReceipt).length;
  alice.client.close();
  await alice.waitFor(() => !alice.client.connected || undefined, 5000, 'alice offline again');
  await alice.client.connect();
  // Answered after the catch-up's own asks of the same conversations (one socket, one entity each).
  await alice.client.receipts(first.conv);
  await alice.client.receipts(g.conv);
  t.equal(alice.frames.filter(isReceipt).length, told, 'no receipt twice');
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
