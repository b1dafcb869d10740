import t from 'tap';
import { Fixture, http, ADMIN_KEY } from '../helpers/fixture.js';

// Groups are event-sourced: their changes are journaled through nact's persistence engine on the node's
// store and replayed (from the latest snapshot) when the entity restarts — after a crash, after
// passivation, after a node restart.
t.test('a group entity rebuilds from its journal and snapshots', async (t) => {
  const f = await Fixture.start({ PARLEY_FAULTS: '1' });
  t.teardown(() => f.destroy());
  const alice = await f.device(t);
  const bob = await f.device(t);
  const carol = await f.device(t);

  const g = await alice.client.createGroup('v0', [bob.session.user]);
  // 60 changes: past the snapshot taken every 50 events, so recovery uses a snapshot plus the tail.
  for (let i = 1; i <= 60; i++) await alice.client.renameGroup(g.id, `v${i}`);
  await alice.client.addMembers(g.id, [carol.session.user]);
  await alice.client.makeAdmin(g.id, bob.session.user);

  const expected = await alice.client.groupInfo(g.id);
  t.equal(expected.name, 'v60');
  t.same(new Set(expected.members.map((m) => `${m.user}:${m.role}`)), new Set([
    `${alice.session.user}:admin`, `${bob.session.user}:admin`, `${carol.session.user}:member`,
  ]));

  // A crash: the request that hit it is answered with an error, the next one sees the recovered group.
  const armed = await http(f.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json: { type: 'group', id: g.id } });
  t.equal(armed.status, 200);
  await t.rejects(bob.client.groupInfo(g.id), { code: 'internal' }, 'the message that crashed it gets an error');
  t.same(await bob.client.groupInfo(g.id), expected, 'after the restart: same name, members and roles');
  const actors = await f.actors();
  t.ok(actors.group!.crashes >= 1, 'the supervisor counted the crash');

  // A node restart: the journal and snapshot are on disk.
  await f.restart();
  const again = await f.device(t, { session: carol.session });
  t.same(await again.client.groupInfo(g.id), expected, 'after a node restart');
  const renamed = await again.client.renameGroup(g.id, 'after').catch((e: { code: string }) => e.code);
  t.equal(renamed, 'forbidden', 'roles survived: carol is still not an admin');
  const bob2 = await f.device(t, { session: bob.session });
  t.equal((await bob2.client.renameGroup(g.id, 'after')).name, 'after', 'and bob still is');
});
