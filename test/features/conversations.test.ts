import t from 'tap';
import { createClock } from '@sinonjs/fake-timers';
import { Fixture } from '../helpers/fixture.js';
import { Conversations, TYPING_TTL_MS } from '../../src/client/conversations.js';
import { directConversationId } from '../../src/protocol/ids.js';
import type { TestDevice } from '../helpers/clients.js';

/**
 * The SDK's conversation list (issue #17: what a chat UI needs): the last message, unread counts, ticks and
 * typing, kept from a real client's events against a real node.
 */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

/** A round trip on each device: whatever the node sent them before it has been handled. */
const settle = async (...ds: TestDevice[]) => { for (const d of ds) await d.client.ping(); };

t.test('the list shows the last message and counts unread; reading clears it and ticks the sender', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const ca = new Conversations(alice.client);
  const cb = new Conversations(bob.client);
  t.teardown(() => { ca.dispose(); cb.dispose(); });
  const conv = directConversationId(alice.user, bob.user);

  const s1 = await alice.client.text({ to: bob.user }, 'one');
  t.equal(ca.get(conv)?.last?.seq, s1.seq, "the sender's list has it once sent");
  t.equal(ca.tick(conv, s1.seq), 'sent');
  const s2 = await alice.client.text({ to: bob.user }, 'two');
  await bob.waitMessage((m) => m.seq === s2.seq);
  const b = cb.get(conv)!;
  t.same([b.unread, b.peer, (b.last?.body as { text: string }).text], [2, alice.user, 'two']);
  t.same(cb.list().map((c) => c.conv), [conv]);

  await alice.waitFor(() => ca.tick(conv, s2.seq) === 'delivered' || undefined, 5000, 'delivered');
  t.equal(ca.tick(conv, s1.seq), 'delivered', 'a watermark covers the earlier ones');
  cb.markRead(conv, s2.seq);
  t.equal(cb.get(conv)!.unread, 0);
  await alice.waitFor(() => ca.tick(conv, s2.seq) === 'read' || undefined, 5000, 'read');

  await bob.client.text({ to: alice.user }, 'three');
  await settle(alice);
  await alice.waitFor(() => ca.get(conv)!.unread === 1 || undefined, 5000, 'one unread for alice');
  t.equal(cb.get(conv)!.unread, 0, "one's own message is never unread");
});

t.test('a new device learns ticks and its read cursor with refresh; a snapshot restores the list', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const conv = directConversationId(alice.user, bob.user);
  const s = await alice.client.text({ to: bob.user }, 'hi');
  await bob.waitMessage((m) => m.seq === s.seq);
  bob.client.read(conv, s.seq);
  const yo = await bob.client.text({ to: alice.user }, 'yo');
  await alice.waitMessage((m) => m.seq === yo.seq);
  alice.client.read(conv, yo.seq);
  await settle(bob, alice);

  const alice2 = await f.secondDevice(t, alice);
  const c2 = new Conversations(alice2.client);
  t.teardown(() => c2.dispose());
  t.equal(c2.tick(conv, s.seq), 'sent', 'nothing known yet');
  await c2.refresh(conv);
  t.equal(c2.tick(conv, s.seq), 'read');
  t.equal(c2.get(conv)!.readUpTo, yo.seq, 'and how far she read on her other device');

  const again = new Conversations(alice2.client, JSON.parse(JSON.stringify(c2.snapshot())));
  t.teardown(() => again.dispose());
  t.same(again.list(), c2.list(), 'the snapshot survives JSON (localStorage)');
});

t.test('typing shows until it stops, or until a message from the typist, or expires', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const clock = createClock(0);
  const cb = new Conversations(bob.client, undefined, { timers: clock });
  t.teardown(() => cb.dispose());
  const conv = directConversationId(alice.user, bob.user);
  await alice.client.text({ to: bob.user }, 'hello'); // the conversation exists

  const typed = () => bob.waitFor(() => cb.typingIn(conv).length > 0 || undefined, 5000, 'typing');
  alice.client.typing(conv, true);
  await typed();
  t.same(cb.typingIn(conv), [alice.user]);
  alice.client.typing(conv, false);
  await bob.waitFor(() => cb.typingIn(conv).length === 0 || undefined, 5000, 'typing off');

  alice.client.typing(conv, true);
  await typed();
  await alice.client.text({ to: bob.user }, 'done typing');
  await bob.waitMessage((m) => (m.body as { text?: string }).text === 'done typing');
  t.same(cb.typingIn(conv), [], 'a message from the typist ends it');

  alice.client.typing(conv, true);
  await typed();
  clock.tick(TYPING_TTL_MS - 1);
  t.same(cb.typingIn(conv), [alice.user], 'still typing just before the expiry');
  clock.tick(1);
  t.same(cb.typingIn(conv), [], 'expired: a typist whose client went away stops showing');
});

t.test('a group left leaves the list for good, unless this user is added again', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const cb = new Conversations(bob.client);
  t.teardown(() => cb.dispose());
  const g = await alice.client.createGroup('Climbing', [bob.user]);
  await bob.waitMessage((m) => m.conv === g.conv);
  t.ok(cb.get(g.conv), 'listed once its first message came');

  cb.remove(g.conv);
  await bob.client.leaveGroup(g.id);
  await bob.waitMessage((m) => m.conv === g.conv && (m.body as { event?: string }).event === 'left');
  t.equal(cb.get(g.conv), undefined, 'the left message does not bring it back');
  const restored = new Conversations(bob.client, cb.snapshot());
  t.teardown(() => restored.dispose());
  t.equal(restored.get(g.conv), undefined, 'nor a restored snapshot');

  await alice.client.addMembers(g.id, [bob.user]);
  await bob.waitMessage((m) => m.conv === g.conv && (m.body as { event?: string }).event === 'added');
  t.ok(cb.get(g.conv), 'added again: listed again');
});
