import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
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
