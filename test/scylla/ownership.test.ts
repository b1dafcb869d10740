import t from 'tap';
import { ADMIN_KEY, Fixture, http } from '../helpers/fixture.js';
import { cqlAdmin, cqlContact, cqlDataCenter, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { ScyllaStore } from '../../src/store/scylla/scylla-store.js';
import { pack } from '../../src/protocol/codec.js';
import { deviceKey } from '../../src/protocol/ids.js';
import { MANY_FRAMES, SHARED_SECRET, crashWithAppendsInFlight, groupTwoNodes, inboxTwoNodes, staleAfterRenewal, twoNodesOneStore } from '../features/ownership-cases.js';

/**
 * Issue #11 on the Scylla store (a real CQL server): here a stale owner's appends are not checked (that
 * would be a Paxos round per message); they land at seqs in its own reservation, which nobody else uses.
 */

t.test('a conversation crashing with appends in flight hands out no seq twice', async (t) => {
  const ks = testKeyspace('parley_own_crash');
  const f = await Fixture.start({ ...scyllaNodeEnv(ks), PARLEY_FAULTS: '1', PARLEY_FAULT_APPEND_DELAY_MS: '100' });
  t.teardown(async () => {
    await f.destroy();
    const admin = await cqlAdmin();
    await dropKeyspace(admin, ks);
    await admin.shutdown();
  });
  await crashWithAppendsInFlight(t, f);
});

/** Two nodes on a fresh keyspace of their own for one test; both stop and the keyspace goes when it ends. */
async function twoNodes(t: tap.Test, prefix: string, extra: Record<string, string> = {}): Promise<[Fixture, Fixture]> {
  const ks = testKeyspace(prefix);
  const env = { ...scyllaNodeEnv(ks), PARLEY_SECRET: SHARED_SECRET, ...extra };
  const a = await Fixture.start(env); // creates the keyspace first: the second node finds it migrated
  const b = await Fixture.start(env).catch(async (err: unknown) => { await a.destroy(); throw err; });
  t.teardown(async () => {
    await Promise.all([a.destroy(), b.destroy()]);
    const admin = await cqlAdmin();
    await dropKeyspace(admin, ks);
    await admin.shutdown();
  });
  return [a, b];
}

t.test('two nodes on one keyspace: one conversation, senders through both', async (t) => {
  await twoNodesOneStore(t, ...(await twoNodes(t, 'parley_own_two')));
});

t.test('two nodes on one keyspace: one user\'s inbox pointers taken through both', async (t) => {
  await inboxTwoNodes(t, ...(await twoNodes(t, 'parley_own_inbox', MANY_FRAMES)));
});

t.test('two nodes on one keyspace: the older activation goes on past its renewal', async (t) => {
  await staleAfterRenewal(t, ...(await twoNodes(t, 'parley_own_renew', MANY_FRAMES)));
});

t.test('two nodes on one keyspace: one group changed through both', async (t) => {
  await groupTwoNodes(t, ...(await twoNodes(t, 'parley_own_group')));
});

/**
 * A dead activation's inbox write may land after the next activation's sync read past its ptr (a Scylla
 * write isn't fenced: it goes to a ptr of the dead one's block). The conversation's retry must then not
 * take it as held: the device would never be sent it. Here the late write is made through a second store
 * client, after the device synced on the new activation.
 */
t.test("a message an earlier activation wrote to the inbox late reaches the device on the conversation's retry", async (t) => {
  const ks = testKeyspace('parley_own_late');
  const f = await Fixture.start({ ...scyllaNodeEnv(ks), PARLEY_FAULTS: '1' });
  const store = await ScyllaStore.open({ contactPoints: [cqlContact()], localDataCenter: cqlDataCenter(), keyspace: ks });
  t.teardown(async () => {
    await store.close();
    await f.destroy();
    const admin = await cqlAdmin();
    await dropKeyspace(admin, ks);
    await admin.shutdown();
  });
  const alice = await f.device(t);
  const bob = await f.device(t, { reconnect: true });
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'hello' });
  await bob.waitMessage((m) => m.seq === first.seq, 'the first message');
  bob.client.flushAck();
  await bob.client.listDevices(); // bob's entity handled the ack and is idle

  const resynced = new Promise<number>((res) => { const off = bob.client.on('synced', (ptr) => { off(); res(ptr); }); });
  const r = await http(f.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json: { type: 'user', id: bob.user, times: 1 } });
  t.equal(r.status, 200, 'armed');
  const late = await alice.client.send({ to: bob.user }, 'text', { text: 'written late' }); // bob's entity crashes on it
  await resynced; // bob reconnected to a new activation and synced: nothing of `late` in the inbox yet
  const message = await store.getMessage(late.conv, late.seq);
  t.ok(message, 'the message is in the log');
  // The dead activation's write, landing now, at the next ptr of its block.
  await store.inboxPut(deviceKey(bob.user, bob.session.device), { ptr: bob.ptrs.at(-1)! + 1, conv: late.conv, seq: late.seq, packed: pack(message), expiresAt: Date.now() + 60_000 });
  await bob.waitMessage((m) => m.seq === late.seq, 'the late message, on the retry (5 s)', 20_000);
  t.pass('bob got it');
});
