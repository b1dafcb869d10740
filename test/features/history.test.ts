import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { texts, waitFor, type TestDevice } from '../helpers/clients.js';
import { directConversationId } from '../../src/protocol/ids.js';
import type { Message } from '../../src/protocol/frames.js';

/** Issue #2 §9: history by seq (before/after) and by time (from/until), with limits; members only. */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

const N = 30;
let alice: TestDevice;
let bob: TestDevice;
let conv: string;
let all: Message[];

t.before(async () => {
  const teardowns: (() => unknown)[] = [];
  t.teardown(() => Promise.all(teardowns.map((x) => x())));
  const holder = { teardown: (fn: () => unknown) => { teardowns.push(fn); } };
  alice = await f.device(holder);
  bob = await f.device(holder);
  conv = directConversationId(alice.user, bob.user);
  // Three bursts at distinct server times, so that time bounds cut between them.
  for (let burst = 0; burst < 3; burst++) {
    let last = 0;
    for (let i = 1; i <= N / 3; i++) {
      const from = i % 2 ? alice : bob;
      last = (await from.client.text({ to: from === alice ? bob.user : alice.user }, `m${burst * (N / 3) + i}`)).ts;
    }
    await waitFor(() => Date.now() > last + 1 || undefined, 1000, 'the clock to move on');
  }
  all = await alice.client.history(conv, { limit: 500 });
});

const seqs = (ms: Message[]) => ms.map((m) => m.seq);
const span = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

t.test('the full history is every message once, ascending', async (t) => {
  t.same(seqs(all), span(1, N));
  t.same(texts(all), span(1, N).map((i) => `m${i}`));
  t.same(await bob.client.history(conv, { limit: 500 }), all, 'both members read the same history');
  t.same(await alice.client.history(conv), all, 'the default page (50) holds all 30');
});

t.test('limit takes the newest messages unless a lower bound is given', async (t) => {
  t.same(seqs(await alice.client.history(conv, { limit: 10 })), span(21, 30));
  t.same(seqs(await alice.client.history(conv, { limit: 1 })), [30]);
  await t.rejects(alice.client.history(conv, { limit: 0 }), { code: 'invalid' });
  await t.rejects(alice.client.history(conv, { limit: 501 }), { code: 'invalid' });
  t.same(seqs(await alice.client.history(conv, { limit: 500 })), span(1, 30));
});

t.test('before and after bound the seq, exclusively', async (t) => {
  t.same(seqs(await alice.client.history(conv, { before: 11 })), span(1, 10));
  t.same(seqs(await alice.client.history(conv, { before: 11, limit: 5 })), span(6, 10), 'the newest five below 11');
  t.same(seqs(await alice.client.history(conv, { after: 25 })), span(26, 30));
  t.same(seqs(await alice.client.history(conv, { after: 5, limit: 3 })), [6, 7, 8], 'with a lower bound the page starts there');
  t.same(seqs(await alice.client.history(conv, { after: 10, before: 15 })), [11, 12, 13, 14]);
  t.same(await alice.client.history(conv, { after: 30 }), [], 'nothing after the last');
  t.same(await alice.client.history(conv, { before: 1 }), [], 'nothing before the first');
  t.same(await alice.client.history(conv, { after: 20, before: 21 }), [], 'an empty window');
});

t.test('paging backwards with before walks the whole conversation', async (t) => {
  const pages: Message[][] = [];
  let before: number | undefined;
  for (;;) {
    const page = await alice.client.history(conv, { limit: 7, ...(before !== undefined ? { before } : {}) });
    if (!page.length) break;
    pages.push(page);
    before = page[0]!.seq;
  }
  t.same(pages.map((p) => p.length), [7, 7, 7, 7, 2]);
  t.same(seqs(pages.reverse().flat()), span(1, N));
});

t.test('from and until bound the server time, inclusively', async (t) => {
  const ts10 = all[9]!.ts;
  const ts20 = all[19]!.ts;
  const byTime = (lo?: number, hi?: number) => all.filter((m) => (lo === undefined || m.ts >= lo) && (hi === undefined || m.ts <= hi));
  t.ok(byTime(ts20, undefined).length < N && byTime(undefined, ts10).length < N, 'the bursts have distinct times');
  t.same(await alice.client.history(conv, { from: ts10 }), byTime(ts10));
  t.ok((await alice.client.history(conv, { from: ts10 })).some((m) => m.seq === 10), 'from is inclusive');
  t.same(await alice.client.history(conv, { until: ts20 }), byTime(undefined, ts20));
  t.ok((await alice.client.history(conv, { until: ts20 })).some((m) => m.seq === 20), 'until is inclusive');
  t.same(await alice.client.history(conv, { from: ts10, until: ts20 }), byTime(ts10, ts20));
  t.same(await alice.client.history(conv, { from: ts10, limit: 2 }), byTime(ts10).slice(0, 2), 'from starts the page');
  t.same(await alice.client.history(conv, { until: ts20, limit: 2 }), byTime(undefined, ts20).slice(-2), 'until alone takes the newest');
  t.same(await alice.client.history(conv, { from: all.at(-1)!.ts + 1 }), [], 'nothing after the last message');
  t.same(await alice.client.history(conv, { from: ts10, before: 12 }), byTime(ts10).filter((m) => m.seq < 12), 'time and seq bounds combine');
});

t.test('history is for members only', async (t) => {
  const carol = await f.device(t);
  await t.rejects(carol.client.history(conv), { code: 'forbidden' });
  await t.rejects(carol.client.history(conv, { after: 0 }), { code: 'forbidden' });

  const g = await alice.client.createGroup('History', [bob.user, carol.user]);
  await alice.client.text({ conv: g.conv }, 'in the group');
  t.same(texts(await carol.client.history(g.conv)), ['in the group']);
  await alice.client.removeMembers(g.id, [carol.user]);
  await t.rejects(carol.client.history(g.conv), { code: 'forbidden' }, 'not after removal');
  await bob.waitMessage((m) => m.conv === g.conv && m.seq === 3, 'the removal to reach bob');
  t.same(seqs(await bob.client.history(g.conv)), [1, 2, 3], 'members still read it all');

  t.same(await carol.client.history(directConversationId(alice.user, carol.user)), [], 'a conversation with no messages yet is empty');
  await t.rejects(carol.client.history(directConversationId(carol.user, 'zzzzzzzzzzzzzzzz')), { code: 'not_found' }, 'with nobody');
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
