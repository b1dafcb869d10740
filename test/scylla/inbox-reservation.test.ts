import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { MANY_FRAMES, renewalsFailThenKill } from '../features/ownership-cases.js';

/** Inbox pointer renewals that fail, then a kill, on the Scylla store (test/features/inbox-reservation.test.ts: on LMDB). */
t.test('renewals of inbox pointers fail over more than a block, then the node is killed: nothing is lost', async (t) => {
  const ks = testKeyspace('parley_inbox_renew');
  const f = await Fixture.start({ ...scyllaNodeEnv(ks), PARLEY_FAULTS: '1', ...MANY_FRAMES, PARLEY_FANOUT_RETRY_MS: '1000' });
  t.teardown(async () => {
    await f.destroy();
    const admin = await cqlAdmin();
    await dropKeyspace(admin, ks);
    await admin.shutdown();
  });
  await renewalsFailThenKill(t, f);
});
