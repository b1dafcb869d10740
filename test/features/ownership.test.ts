import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { startNodeProcess } from '../helpers/node-process.js';
import { MANY_FRAMES, SHARED_SECRET, crashWithAppendsInFlight, groupTwoNodes, inboxTwoNodes, staleAfterRenewal, twoNodesOneStore } from './ownership-cases.js';

/** Issue #11 on the embedded store: one writer per conversation, proven by crashes and by a second node. */

t.test('a conversation crashing with appends in flight hands out no seq twice', async (t) => {
  const f = await Fixture.start({ PARLEY_FAULTS: '1', PARLEY_FAULT_APPEND_DELAY_MS: '150' });
  t.teardown(() => f.destroy());
  await crashWithAppendsInFlight(t, f);
});

t.test('two node processes on one LMDB directory: one conversation, senders through both', async (t) => {
  const a = await Fixture.start({ PARLEY_SECRET: SHARED_SECRET });
  const b = await startNodeProcess({ ...a.env }, a.node.dataDir).catch(async (err: unknown) => { await a.destroy(); throw err; });
  t.teardown(async () => { await b.destroy(); await a.destroy(); }); // b first: a's removes the shared directory
  await twoNodesOneStore(t, a, b);
});

t.test('two node processes on one LMDB directory: one user\'s inbox pointers taken through both', async (t) => {
  const a = await Fixture.start({ PARLEY_SECRET: SHARED_SECRET, ...MANY_FRAMES });
  const b = await startNodeProcess({ ...a.env }, a.node.dataDir).catch(async (err: unknown) => { await a.destroy(); throw err; });
  t.teardown(async () => { await b.destroy(); await a.destroy(); });
  await inboxTwoNodes(t, a, b);
});

t.test('two node processes on one LMDB directory: the older activation goes on past its renewal', async (t) => {
  const a = await Fixture.start({ PARLEY_SECRET: SHARED_SECRET, ...MANY_FRAMES });
  const b = await startNodeProcess({ ...a.env }, a.node.dataDir).catch(async (err: unknown) => { await a.destroy(); throw err; });
  t.teardown(async () => { await b.destroy(); await a.destroy(); });
  await staleAfterRenewal(t, a, b);
});

t.test('two node processes on one LMDB directory: one group changed through both', async (t) => {
  const a = await Fixture.start({ PARLEY_SECRET: SHARED_SECRET });
  const b = await startNodeProcess({ ...a.env }, a.node.dataDir).catch(async (err: unknown) => { await a.destroy(); throw err; });
  t.teardown(async () => { await b.destroy(); await a.destroy(); });
  await groupTwoNodes(t, a, b);
});
