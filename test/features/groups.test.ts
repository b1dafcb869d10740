import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { texts, type TestDevice } from '../helpers/clients.js';
import type { GroupInfo, Message } from '../../src/protocol/frames.js';

/** Issue #2 §4: groups — membership and roles, system messages, fan-out, and who may do what. */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

const roles = (g: GroupInfo) => Object.fromEntries(g.members.map((m) => [m.user, m.role]));
/** The first system message of `event` (by `by`, if given) that `d` received in `conv`. */
const waitSystem = (d: TestDevice, conv: string, event: string, by?: string) =>
  d.waitMessage((m: Message) => m.conv === conv && m.kind === 'system' && (m.body as { event: string }).event === event && (by === undefined || m.from === by),
    `system message ${event}`);

t.test('create: the creator is admin, the others members, and everyone gets the created message', async (t) => {
  const [alice, bob, carol] = [await f.device(t), await f.device(t), await f.device(t)];
  const g = await alice.client.createGroup('Climbing', [bob.user, carol.user, bob.user]);
  t.match(g, { id: /^[a-z2-7]+$/, name: 'Climbing', createdBy: alice.user });
  t.equal(g.conv, `g.${g.id}`);
  t.same(roles(g), { [alice.user]: 'admin', [bob.user]: 'member', [carol.user]: 'member' }, 'duplicates collapse');
  for (const d of [alice, bob, carol]) {
    const m = await waitSystem(d, g.conv, 'created');
    t.match(m, { seq: 1, from: alice.user, body: { event: 'created', by: alice.user, name: 'Climbing' } });
    t.same([...(m.body as { users: string[] }).users].sort(), [alice.user, bob.user, carol.user].sort());
  }
  t.same(await carol.client.groupInfo(g.id), g, 'a member reads the same info');
  await t.rejects(alice.client.createGroup('Ghosts', ['zzzzzzzzzzzzzzzz']), { code: 'not_found' }, 'members must exist');
});

t.test('admins add, remove, promote and rename; each change is a system message and shows in info', async (t) => {
  const [alice, bob, carol, dave] = [await f.device(t), await f.device(t), await f.device(t), await f.device(t)];
  const g = await alice.client.createGroup('Team', [bob.user]);

  let info = await alice.client.addMembers(g.id, [carol.user, dave.user, bob.user]);
  t.same(roles(info), { [alice.user]: 'admin', [bob.user]: 'member', [carol.user]: 'member', [dave.user]: 'member' });
  const added = await waitSystem(bob, g.conv, 'added');
  t.same(added.body, { event: 'added', by: alice.user, users: [carol.user, dave.user] }, 'only the new members are named');
  await waitSystem(carol, g.conv, 'added');
  await t.rejects(alice.client.addMembers(g.id, ['zzzzzzzzzzzzzzzz']), { code: 'not_found' });

  info = await alice.client.makeAdmin(g.id, bob.user);
  t.equal(roles(info)[bob.user], 'admin');
  t.match((await waitSystem(carol, g.conv, 'admin')).body, { event: 'admin', by: alice.user, users: [bob.user] });
  await t.rejects(alice.client.makeAdmin(g.id, 'zzzzzzzzzzzzzzzz'), { code: 'not_found' }, 'only members can be made admin');

  // The new admin can manage.
  info = await bob.client.renameGroup(g.id, 'Team B');
  t.equal(info.name, 'Team B');
  t.match((await waitSystem(dave, g.conv, 'renamed')).body, { event: 'renamed', by: bob.user, name: 'Team B' });
  t.equal((await dave.client.groupInfo(g.id)).name, 'Team B');

  info = await bob.client.removeMembers(g.id, [dave.user]);
  t.same(Object.keys(roles(info)).sort(), [alice.user, bob.user, carol.user].sort());
  t.match((await waitSystem(carol, g.conv, 'removed')).body, { event: 'removed', by: bob.user, users: [dave.user] });

  const events = async (d: TestDevice) => (await d.client.history(g.conv)).filter((m) => m.kind === 'system').map((m) => (m.body as { event: string }).event);
  t.same(await events(alice), ['created', 'added', 'admin', 'renamed', 'removed'], 'history keeps every change in order');
  t.same(await events(carol), ['added', 'admin', 'renamed', 'removed'], 'from where each member joined');
});

t.test('the last admin leaving hands the role to the longest-standing member', async (t) => {
  const [alice, bob, carol] = [await f.device(t), await f.device(t), await f.device(t)];
  const g = await alice.client.createGroup('Handover', [bob.user, carol.user]);
  const after = await alice.client.leaveGroup(g.id);
  t.same(roles(after), { [bob.user]: 'admin', [carol.user]: 'member' });
  const left = await waitSystem(carol, g.conv, 'left');
  t.same(left.body, { event: 'left', by: alice.user, users: [bob.user] }, 'the message names the new admin');
  await waitSystem(alice, g.conv, 'left'); // the leaver is told too
  t.same(roles(await carol.client.groupInfo(g.id)), { [bob.user]: 'admin', [carol.user]: 'member' });
  await t.rejects(alice.client.groupInfo(g.id), { code: 'not_found' }, 'a former member no longer sees the group');
  await t.rejects(alice.client.text({ conv: g.conv }, 'still here?'), { code: 'forbidden' });
  await bob.client.addMembers(g.id, [alice.user]);
  t.pass('the new admin can manage the group');

  // A member (not the only admin) leaving changes no roles.
  const info = await carol.client.leaveGroup(g.id);
  t.same(roles(info), { [bob.user]: 'admin', [alice.user]: 'member' });
  t.same((await waitSystem(bob, g.conv, 'left', carol.user)).body, { event: 'left', by: carol.user }, 'no handover named');
});

t.test('non-members can neither post, read info nor read history', async (t) => {
  const [alice, bob, eve] = [await f.device(t), await f.device(t), await f.device(t)];
  const g = await alice.client.createGroup('Closed', [bob.user]);
  await alice.client.text({ conv: g.conv }, 'members only');
  await t.rejects(eve.client.text({ conv: g.conv }, 'hi all'), { code: 'forbidden' });
  await t.rejects(eve.client.groupInfo(g.id), { code: 'not_found' });
  await t.rejects(eve.client.history(g.conv), { code: 'forbidden' });
  await t.rejects(eve.client.leaveGroup(g.id), { code: 'not_found' });
  await t.rejects(eve.client.addMembers(g.id, [eve.user]), { code: 'not_found' }, 'nobody adds themselves');
  await t.rejects(eve.client.groupInfo('zzzzzzzzzzzzzzzz'), { code: 'not_found' }, 'no such group');
  await t.rejects(eve.client.text({ conv: 'g.zzzzzzzzzzzzzzzz' }, 'anyone?'), { code: 'forbidden' }, 'a group that does not exist');
  t.same(texts(await bob.client.history(g.conv)), ['members only'], 'nothing eve tried was stored');
  t.same(roles(await alice.client.groupInfo(g.id)), { [alice.user]: 'admin', [bob.user]: 'member' });
});

t.test('non-admins can not manage the group', async (t) => {
  const [alice, bob, carol, dave] = [await f.device(t), await f.device(t), await f.device(t), await f.device(t)];
  const g = await alice.client.createGroup('Admins only', [bob.user, carol.user]);
  await t.rejects(bob.client.addMembers(g.id, [dave.user]), { code: 'forbidden' });
  await t.rejects(bob.client.removeMembers(g.id, [carol.user]), { code: 'forbidden' });
  await t.rejects(bob.client.removeMembers(g.id, [alice.user]), { code: 'forbidden' });
  await t.rejects(bob.client.makeAdmin(g.id, bob.user), { code: 'forbidden' });
  await t.rejects(bob.client.renameGroup(g.id, 'Mine now'), { code: 'forbidden' });
  const info = await bob.client.groupInfo(g.id);
  t.same(roles(info), { [alice.user]: 'admin', [bob.user]: 'member', [carol.user]: 'member' }, 'nothing changed');
  t.equal(info.name, 'Admins only');
});

t.test('a group message fans out to every device of every member', async (t) => {
  const alice = await f.device(t);
  const alice2 = await f.secondDevice(t, alice);
  const bob = await f.device(t);
  const bob2 = await f.secondDevice(t, bob);
  const carol = await f.device(t);
  const outsider = await f.device(t);
  const g = await alice.client.createGroup('Fan-out', [bob.user, carol.user]);
  const sent = await alice.client.text({ conv: g.conv }, 'to everyone');
  for (const d of [alice2, bob, bob2, carol]) {
    const m = await d.waitMessage((m) => m.conv === g.conv && m.seq === sent.seq, 'the group message');
    t.match(m, { from: alice.user, kind: 'text', body: { text: 'to everyone' } });
  }
  const reply = await bob2.client.text({ conv: g.conv }, 'got it');
  for (const d of [alice, alice2, bob, carol]) await d.waitMessage((m) => m.seq === reply.seq, 'the reply');
  t.same(texts(alice.messages, g.conv), ['got it'], 'the sending device has its own message already');
  t.same(texts(carol.messages, g.conv), ['to everyone', 'got it']);
  t.equal(outsider.messages.length, 0, 'a non-member got nothing');
});

t.test('a removed member receives the removal and nothing after it', async (t) => {
  const [alice, bob, carol] = [await f.device(t), await f.device(t), await f.device(t)];
  const g = await alice.client.createGroup('Leaky?', [bob.user, carol.user]);
  await alice.client.text({ conv: g.conv }, 'before');
  await alice.client.removeMembers(g.id, [carol.user]);
  const removal = await waitSystem(carol, g.conv, 'removed');
  t.same(removal.body, { event: 'removed', by: alice.user, users: [carol.user] });
  const secret = await alice.client.text({ conv: g.conv }, 'after');
  await bob.client.text({ conv: g.conv }, 'after, too');
  await bob.client.renameGroup(g.id, 'x').catch(() => undefined); // not an admin: refused, and nothing to see
  await alice.client.renameGroup(g.id, 'Renamed without carol');
  // Deliveries to one user keep their order: once a later 1:1 message reached carol, anything sent before it would have.
  await bob.waitMessage((m) => m.seq === secret.seq + 2, 'the rename reached bob');
  const marker = await alice.client.text({ to: carol.user }, 'marker');
  await carol.waitMessage((m) => m.conv === marker.conv, 'the marker');
  const inGroup = carol.messages.filter((m) => m.conv === g.conv);
  t.same(inGroup.map((m) => m.kind === 'system' ? (m.body as { event: string }).event : (m.body as { text: string }).text),
    ['created', 'before', 'removed'], 'the removal is the last thing carol got from the group');
  await t.rejects(carol.client.text({ conv: g.conv }, 'hello?'), { code: 'forbidden' });
  await t.rejects(carol.client.history(g.conv), { code: 'forbidden' });
});

t.test('a member added later sees from the message that added them on, not the history before', async (t) => {
  const [alice, bob, carol] = [await f.device(t), await f.device(t), await f.device(t)];
  const g = await alice.client.createGroup('Before your time', [bob.user]);
  const early = await alice.client.text({ conv: g.conv }, 'before carol');
  await bob.client.text({ conv: g.conv }, 'also before carol');
  await alice.client.addMembers(g.id, [carol.user]);
  const added = await waitSystem(carol, g.conv, 'added');
  const after = await bob.client.text({ conv: g.conv }, 'hi carol');
  await carol.waitMessage((m) => m.seq === after.seq);

  t.same(texts(carol.messages.filter((m) => m.conv === g.conv)), ['hi carol'], 'she was sent nothing from before');
  const hers = await carol.client.history(g.conv, { limit: 50 });
  t.same(hers.map((m) => m.seq), [added.seq, after.seq], 'her history starts at the message that added her');
  t.same(await carol.client.history(g.conv, { before: added.seq }), [], 'and pages no further back');
  t.same(texts(await bob.client.history(g.conv, { limit: 50 })), ['before carol', 'also before carol', 'hi carol'], 'the others still see everything');
  await t.rejects(carol.client.send({ conv: g.conv }, 'reaction', { emoji: '👍' }, { target: early.seq }), { code: 'not_found' },
    'she can not react to a message she can not see');
  const r = await carol.client.send({ conv: g.conv }, 'reaction', { emoji: '👍' }, { target: after.seq });
  t.equal(r.t, 'sent', 'but to one she can');

  // "Delivered to all" does not wait for her on messages she never got.
  await alice.waitFrame((x) => x.t === 'receipt' && x.conv === g.conv && x.status === 'delivered_all' && x.upTo >= early.seq, 'delivered_all past her join');
  t.equal((await alice.client.receipts(g.conv)).members[carol.user]!.read, added.seq - 1, 'her read cursor starts just below her join');
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
