import t from 'tap';
import { ADMIN_KEY, Fixture, http } from '../helpers/fixture.js';
import { checkDelivered, groupOf, resendWhileStoring, sendAllAtOnce } from '../helpers/order-check.js';

/**
 * Ordered delivery on the LMDB store: many concurrent senders into one conversation, and a conversation
 * entity crashed while its writes are in flight. Every device gets each ticked message once, in seq order;
 * a completion of the crashed incarnation ticks nothing and fans out nothing (test/helpers/order-check.ts).
 * The same on the Scylla store: test/scylla/order.test.ts.
 */

let f: Fixture;
t.before(async () => { f = await Fixture.start({ PARLEY_FAULTS: '1' }); });
t.teardown(() => f.destroy());

t.test('400 concurrent sends from four senders into one group: each device gets them in seq order, once', async (t) => {
  const senders = await Promise.all([1, 2, 3, 4].map(() => f.device(t)));
  const reader = await f.device(t);
  const conv = await groupOf(senders, [reader]);
  const { ticked, refusals } = await sendAllAtOnce(senders, conv, 100);
  t.equal(ticked.length, 400, 'every send was ticked');
  t.strictSame(refusals, {}, 'none refused on the way');
  const history = await reader.client.history(conv, { limit: 500 });
  await checkDelivered(t, conv, ticked, history, [reader, ...senders]);
});

t.test('a conversation crashed with writes in flight: nothing of the dead incarnation ticks or fans out', async (t) => {
  const senders = await Promise.all([1, 2, 3, 4].map(() => f.device(t)));
  const reader = await f.device(t);
  const conv = await groupOf(senders, [reader]);
  // Crash it while the burst is going: after the first ticks, with the rest being stored and fanned out.
  let armed = false;
  const arm = async () => {
    const r = await http(f.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json: { type: 'conv', id: conv, times: 1 } });
    if (r.status !== 200) throw new Error(`arming failed: ${r.status}`);
  };
  const crashesBefore = (await f.actors()).conv.crashes;
  const armWhenBusy = (async () => {
    await reader.waitFor(() => (reader.messages.length >= 40 ? true : undefined), 20_000, 'the burst under way');
    await arm();
    armed = true;
  })();
  const { ticked, resends, refusals } = await sendAllAtOnce(senders, conv, 100, 10);
  await armWhenBusy;
  t.ok(armed, 'the crash was armed mid-burst');
  t.equal((await f.actors()).conv.crashes, crashesBefore + 1, 'the conversation crashed once');
  t.ok(resends > 0, `senders were told to resend (${resends} resends)`);
  // What was in flight at the crash is answered at once ('internal', resend), never left to the slow
  // fan-out notice of an incarnation that is gone ('timeout', after 7 s).
  t.strictSame(Object.keys(refusals), ['internal'], `every refusal says the delivery was interrupted (${JSON.stringify(refusals)})`);
  t.equal(ticked.length, 400, 'every send was ticked in the end');
  const history = await reader.client.history(conv, { limit: 500 });
  await checkDelivered(t, conv, ticked, history, [reader, ...senders], { allowLate: true });
});

t.test('a cid resent while its first send is being stored: one seq, one tick and one dup, delivered once', (t) => resendWhileStoring(t, f));
