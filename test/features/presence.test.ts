import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import type { TestDevice } from '../helpers/clients.js';
import type { PresenceFrame, ServerFrame, TypingEventFrame } from '../../src/protocol/frames.js';

/** Issue #2 §7: presence and last seen, typing indicators, and last-seen privacy. */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

const isPresence = (x: ServerFrame): x is PresenceFrame => x.t === 'presence';
const presenceOf = (d: TestDevice, user: string) => d.frames.filter(isPresence).filter((p) => p.user === user);
const waitPresence = (d: TestDevice, user: string, online: boolean, from = 0) =>
  d.waitFor(() => presenceOf(d, user).slice(from).find((p) => p.online === online), 5000, `${user} ${online ? 'online' : 'offline'}`);
/** Presence frames reach a viewer through the watched user's entity: a request to it orders after them. */
const throughUser = async (viewer: TestDevice, watched: string) => { await viewer.client.getProfile(watched); await viewer.client.ping(); };
/**
 * Typing goes through the conversation entity, which writes it to the members' sockets (`router.toUser`) in
 * the turn that takes it. The typist asks the conversation something on the socket it typed on (answered,
 * or refused, in a later turn), then each viewer makes a round trip on its own socket: any typing frame the
 * conversation sent it is ahead of that answer.
 */
const afterTyping = async (typist: TestDevice, conv: string, viewers: TestDevice[]) => {
  await typist.client.receipts(conv);
  for (const v of viewers) await v.client.ping();
};

t.test('a subscriber sees online, then offline with last seen once the last device goes', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const bob2 = await f.secondDevice(t, bob);
  await bob.client.setLastSeenPrivacy('everyone');
  alice.client.subscribePresence([bob.user]);
  t.same(await waitPresence(alice, bob.user, true), { t: 'presence', user: bob.user, online: true }, 'online, no last seen while online');

  await bob.close();
  await bob2.client.getProfile(bob.user); // bob's entity has handled the first device's going
  await throughUser(alice, bob.user);
  t.same(presenceOf(alice, bob.user).map((p) => p.online), [true], 'still online while one device is');

  const before = Date.now();
  await bob2.close();
  const off = await waitPresence(alice, bob.user, false);
  t.type(off.lastSeen, 'number');
  t.ok(off.lastSeen! >= before - 1000 && off.lastSeen! <= Date.now() + 1000, 'last seen is when the last device left');

  // A new subscriber gets the current state at once: offline, with the same last seen.
  const carol = await f.device(t);
  carol.client.subscribePresence([bob.user]);
  t.same(await waitPresence(carol, bob.user, false), off);

  const back = await f.device(t, { session: bob.session, phone: bob.phone });
  const n = presenceOf(alice, bob.user).length;
  const on = await waitPresence(alice, bob.user, true, n - 1);
  t.notOk('lastSeen' in on, 'back online');
  await back.close();
});

t.test('by default only contacts see online and last seen', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  alice.client.subscribePresence([bob.user]);
  t.same(await waitPresence(alice, bob.user, false), { t: 'presence', user: bob.user, online: false }, 'a stranger sees bob offline, with no last seen');
  await bob.client.addContacts([alice.user]);
  t.same(await waitPresence(alice, bob.user, true), { t: 'presence', user: bob.user, online: true }, 'once bob has alice as a contact, she sees him');
});

t.test('a subscription outlives a reconnect: the SDK renews it on the new socket', async (t) => {
  const alice = await f.device(t, { reconnect: true });
  const bob = await f.device(t);
  await bob.client.setLastSeenPrivacy('everyone');
  alice.client.subscribePresence([bob.user]);
  await waitPresence(alice, bob.user, true);
  const before = presenceOf(alice, bob.user).length;
  alice.sockets[alice.sockets.length - 1]!.terminate(); // the network drops; the SDK reconnects
  await waitPresence(alice, bob.user, true, before); // the renewal on the new socket is answered with the state now
  await bob.close();
  const offline = await waitPresence(alice, bob.user, false, before);
  t.type(offline.lastSeen, 'number', 'offline reaches the new socket, with last seen');
});

t.test('unsubscribing stops updates', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  await bob.client.setLastSeenPrivacy('everyone');
  alice.client.subscribePresence([bob.user]);
  await waitPresence(alice, bob.user, true);
  alice.client.unsubscribePresence([bob.user]);
  await throughUser(alice, bob.user);
  await bob.close();
  const carol = await f.device(t);
  carol.client.subscribePresence([bob.user]);
  await waitPresence(carol, bob.user, false); // bob's going has been broadcast
  await throughUser(alice, bob.user);
  t.same(presenceOf(alice, bob.user).map((p) => p.online), [true], 'alice heard nothing after unsubscribing');
});

t.test('typing reaches the other members\' devices, never the typist, and is never stored', async (t) => {
  const alice = await f.device(t);
  const alice2 = await f.secondDevice(t, alice);
  const bob = await f.device(t);
  const bob2 = await f.secondDevice(t, bob);
  const first = await alice.client.text({ to: bob.user }, 'hi');
  const conv = first.conv;
  alice.client.typing(conv, true);
  const isTyping = (on: boolean) => (x: ServerFrame): x is TypingEventFrame => x.t === 'typing' && x.conv === conv && x.on === on;
  for (const d of [bob, bob2]) t.same(await d.waitFrame(isTyping(true)), { t: 'typing', conv, user: alice.user, on: true });
  alice.client.typing(conv, false);
  for (const d of [bob, bob2]) t.same(await d.waitFrame(isTyping(false)), { t: 'typing', conv, user: alice.user, on: false });

  // In a group, everyone else hears it.
  const carol = await f.device(t);
  const g = await bob.client.createGroup('Typing', [alice.user, carol.user]);
  bob.client.typing(g.conv, true);
  const inGroup = (x: ServerFrame) => x.t === 'typing' && x.conv === g.conv;
  await carol.waitFrame(inGroup, 'typing in the group');
  await alice.waitFrame(inGroup, 'typing in the group');
  await alice2.waitFrame(inGroup, 'typing in the group');
  await afterTyping(alice, conv, [alice2]);
  t.notOk(alice.frames.some((x) => x.t === 'typing' && x.conv === conv), 'the typist is not told about their own typing');
  t.notOk(alice2.frames.some((x) => x.t === 'typing' && x.conv === conv), 'nor are their other devices');
  await afterTyping(bob, g.conv, [bob2]);
  t.notOk([bob, bob2].some((d) => d.frames.some(inGroup)), 'nor in a group');

  // An outsider's typing goes nowhere: her next ask of the conversation is refused, in a later turn.
  const eve = await f.device(t);
  eve.client.typing(g.conv, true);
  await t.rejects(eve.client.receipts(g.conv), { code: 'forbidden' }, 'eve is no member');
  for (const d of [alice, alice2, bob, bob2, carol]) await d.client.ping();
  t.notOk([alice, alice2, bob, bob2, carol].some((d) => d.frames.some((x) => x.t === 'typing' && (x as TypingEventFrame).user === eve.user)),
    'eve\'s typing reached nobody');

  const last = await alice.client.text({ to: bob.user }, 'done typing');
  await bob.waitMessage((m) => m.seq === last.seq);
  await carol.client.text({ conv: g.conv }, 'done too');
  t.same((await bob.client.history(conv)).map((m) => m.kind), ['text', 'text'], 'history holds the messages only');
  t.same((await carol.client.history(g.conv)).map((m) => m.kind), ['system', 'text']);
  t.notOk([...bob.messages, ...carol.messages].some((m) => (m.kind as string) === 'typing'), 'and no typing was delivered as a message');
});

t.test('last-seen privacy nobody hides online and last seen from everyone else', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  t.same(await bob.client.setLastSeenPrivacy('nobody'), { lastSeen: 'nobody' });
  alice.client.subscribePresence([bob.user]);
  const seen = await alice.waitFrame((x): x is PresenceFrame => isPresence(x) && x.user === bob.user);
  t.same(seen, { t: 'presence', user: bob.user, online: false }, 'bob is online, but alice sees offline without last seen');
  await bob.close();
  await throughUser(alice, bob.user);
  t.ok(presenceOf(alice, bob.user).every((p) => p.online === false && !('lastSeen' in p)), 'never online, never a last seen');

  // Bob himself still sees his own state.
  const bobAgain = await f.device(t, { session: bob.session, phone: bob.phone });
  const other = await f.secondDevice(t, bob);
  other.client.subscribePresence([bob.user]);
  t.equal((await other.waitFrame((x): x is PresenceFrame => isPresence(x) && x.user === bob.user)).online, true);
  await bobAgain.close();
});

t.test('last-seen privacy contacts shows presence to contacts only, and updates when changed', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const carol = await f.device(t);
  await bob.client.addContacts([carol.user]);
  await bob.client.setLastSeenPrivacy('contacts');
  alice.client.subscribePresence([bob.user]);
  carol.client.subscribePresence([bob.user]);
  t.equal((await carol.waitFrame((x): x is PresenceFrame => isPresence(x) && x.user === bob.user)).online, true, 'a contact sees online');
  t.same(await alice.waitFrame((x): x is PresenceFrame => isPresence(x) && x.user === bob.user), { t: 'presence', user: bob.user, online: false }, 'a stranger does not');

  // Adding alice as a contact shows her the truth right away.
  await bob.client.addContacts([alice.user]);
  t.same(await waitPresence(alice, bob.user, true), { t: 'presence', user: bob.user, online: true });
  await bob.client.removeContacts([alice.user]);
  const hidden = await waitPresence(alice, bob.user, false, 1);
  t.same(hidden, { t: 'presence', user: bob.user, online: false }, 'removed again: hidden again');

  const nAlice = presenceOf(alice, bob.user).length;
  await bob.close();
  const toCarol = await waitPresence(carol, bob.user, false);
  t.type(toCarol.lastSeen, 'number', 'the contact gets the last seen');
  await throughUser(alice, bob.user);
  t.ok(presenceOf(alice, bob.user).slice(nAlice).every((p) => !p.online && !('lastSeen' in p)), 'the stranger never does');

  // Everyone again: alice sees the last seen.
  const bobBack = await f.device(t, { session: bob.session, phone: bob.phone });
  await bobBack.client.setLastSeenPrivacy('everyone');
  await bobBack.close();
  const open = await alice.waitFor(() => presenceOf(alice, bob.user).find((p) => p.lastSeen !== undefined), 5000, 'a last seen for alice');
  t.equal(open.online, false);
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
