import t from 'tap';
import { Fixture } from '../helpers/fixture.js';

/**
 * Issue #15 §7 on the embedded store: `<N>d` (with the test knob in ms) sweeps messages past it out of history,
 * and `transient` deletes each message once every recipient device has it (acked, or in its inbox), which an
 * offline device then still receives.
 */

t.test('N days: the sweep removes what is older, history goes on above it', async (t) => {
  const f = await Fixture.start({ PARLEY_RETENTION: '1d', PARLEY_RETENTION_MS: '400', PARLEY_RETENTION_SWEEP_MS: '100' });
  t.teardown(() => f.destroy());
  const alice = await f.device(t);
  const bob = await f.device(t);
  const first = await alice.client.text({ to: bob.user }, 'soon gone');
  t.same((await alice.client.history(first.conv)).map((m) => m.seq), [first.seq], 'in history at first');
  const gone = await poll(async () => (await alice.client.history(first.conv)).length === 0, 5000);
  t.ok(gone, 'swept once older than the retention');
  const later = await alice.client.text({ to: bob.user }, 'a new one');
  t.ok(later.seq > first.seq, 'seqs go on above the swept ones');
  t.same((await alice.client.history(first.conv)).map((m) => m.seq), [later.seq]);
});

t.test('transient: gone from history once every recipient device has it; an offline device still gets it', async (t) => {
  const f = await Fixture.start({ PARLEY_RETENTION: 'transient' });
  t.teardown(() => f.destroy());
  const alice = await f.device(t);
  const bob = await f.device(t, { connect: false });
  const sent = await alice.client.text({ to: bob.user }, 'for bob, once');
  const gone = await poll(async () => (await alice.client.history(sent.conv)).length === 0, 5000);
  t.ok(gone, 'deleted from the log once it is in bob\'s inbox and alice\'s other devices have it');
  await bob.client.connect();
  const got = await bob.waitMessage((m) => m.seq === sent.seq, 'the message from his inbox', 10_000);
  t.match(got, { from: alice.user, body: { text: 'for bob, once' } });
  const resent = await alice.client.send({ to: bob.user }, 'text', { text: 'for bob, once' }, { cid: sent.cid });
  t.match(resent, { seq: sent.seq, dup: true }, 'a resend of its client id is still recognised');
});

async function poll(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
