import t from 'tap';
import { ADMIN_KEY, Fixture, http } from '../helpers/fixture.js';
import { sleep, waitFor } from '../helpers/clients.js';
import { resendFailed, sendBurst } from '../helpers/ownership.js';
import { MANY_FRAMES } from './ownership-cases.js';

/**
 * A device's inbox pointers are reserved in the store a block (1,000) ahead, and a restarted user entity starts
 * above the stored reservation. While renewals fail, no ptr above it may be handed out: the device would have
 * seen it, and after a restart the same ptr would carry another message, which the device drops as one it
 * holds — a message acked `sent` and never shown. Here the renewals fail for a burst of more than a block, the
 * node is then killed before the recipient's acks are stored, and every message must still reach him.
 */

async function fault(f: Fixture, json: object): Promise<void> {
  const r = await http(f.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json });
  if (r.status !== 200) throw new Error(`arming ${JSON.stringify(json)} failed: ${r.status}`);
}

t.test('renewals of inbox pointers fail over more than a block, then the node is killed: nothing is lost', async (t) => {
  const f = await Fixture.start({ PARLEY_FAULTS: '1', ...MANY_FRAMES, PARLEY_FANOUT_RETRY_MS: '1000' });
  t.teardown(() => f.destroy());
  const alice = await f.device(t);
  const bob = await f.device(t);
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'first' }, { cid: 'first' });
  await bob.waitMessage((m) => m.cid === 'first');

  // A store that refuses the user entity's pointer bookkeeping: reservations and acked pointers.
  await fault(f, { store: 'inbox.reserve', times: 1_000_000 });
  await fault(f, { store: 'device.acked', times: 1_000_000 });
  const ticked: string[] = ['first'];
  for (let round = 0; round < 11; round++) {
    const sent = await resendFailed(await Promise.all(sendBurst(alice, { conv: first.conv }, `r${round}`, 100)));
    t.strictSame(sent.filter((r) => r.seq === undefined).map((r) => `${r.cid}: ${r.error}`), [], `round ${round}: every send ticked`);
    ticked.push(...sent.map((r) => r.cid));
  }
  // The conversation stores its fan-out mark once a second: past everything bob confirmed, nothing of it is
  // re-driven after the crash, and the next message takes the first ptr the restart hands out.
  await sleep(2500);
  await fault(f, { store: 'inbox.reserve', times: 0 });

  // The node dies with bob's acks unstored; bob comes back with the pointer his app kept.
  await f.restart('SIGKILL');
  const ptr = Math.max(...bob.ptrs);
  const bob2 = await f.device(t, { session: bob.session, ptr });
  const alice2 = await f.device(t, { session: alice.session });
  await alice2.client.send({ conv: first.conv }, 'text', { text: 'after' }, { cid: 'after' });
  ticked.push('after');

  const received = (d: typeof bob) => [...d.messages, ...d.late].filter((m) => m.conv === first.conv).map((m) => m.cid);
  const all = () => new Set([...received(bob), ...received(bob2)]);
  await waitFor(() => all().size >= ticked.length || undefined, 30_000, 'every message at bob').catch(() => undefined);
  await bob2.client.ping();
  t.strictSame(ticked.filter((cid) => !all().has(cid)), [], 'bob received every ticked message, before the crash or after it');
  t.equal(received(bob2).length, new Set(received(bob2)).size, 'none twice on the device after the crash');
});
