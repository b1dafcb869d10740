import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { MANY_FRAMES, renewalsFailThenKill } from './ownership-cases.js';

/** Inbox pointer renewals that fail, then a kill, on the embedded store (test/scylla/inbox-reservation.test.ts: on Scylla). */
t.test('renewals of inbox pointers fail over more than a block, then the node is killed: nothing is lost', async (t) => {
  const f = await Fixture.start({ PARLEY_FAULTS: '1', ...MANY_FRAMES, PARLEY_FANOUT_RETRY_MS: '1000' });
  t.teardown(() => f.destroy());
  await renewalsFailThenKill(t, f);
});
