import t, { type Test } from 'tap';
import type { Browser, Page } from 'playwright-core';
import { startNodeProcess, type RunningNode } from '../helpers/node-process.js';
import { device, type TestDevice } from '../helpers/clients.js';
import { launchBrowser, signInInBrowser, type BrowserUser } from '../helpers/browser.js';

/**
 * Issue #17: a conversation of 10,000 messages stays fast: the page holds a window of rows, not the history,
 * loads older pages as the reader scrolls up, and nothing moves under the reader when a message arrives.
 */

// Seeding 10,000 messages and scrolling through 800 of them take most of a minute on a busy machine.
t.setTimeout(5 * 60_000);

const TOTAL = 10_000;
/** ChatView's WINDOW: the rows a chat keeps in the page at once. */
const WINDOW = 150;

let node: RunningNode;
let browser: Browser;
let dave: TestDevice;
let alice: BrowserUser;
let aliceUser = '';
/** What was sent, by seq (sent in parallel, so seq order is not the order of their numbers). */
const textBySeq = new Map<number, string>();
let seqs: number[] = [];

t.before(async () => {
  // Seeding sends faster than a socket's frame rate allows a person.
  [node, browser] = await Promise.all([startNodeProcess({ PARLEY_RATE_PER_S: '1000000', PARLEY_RATE_BURST: '1000000' }), launchBrowser()]);
  // Alice's older device (on the SDK) and Dave talked before she signs in on the web.
  const aliceOld = await device(node.url);
  dave = await device(node.url);
  for (let i = 0; i < TOTAL; i += 250) {
    const sent = await Promise.all(Array.from({ length: Math.min(250, TOTAL - i) }, (_, k) =>
      ((i + k) % 2 ? aliceOld : dave).client.text({ to: (i + k) % 2 ? dave.user : aliceOld.user }, `message ${i + k}`)));
    sent.forEach((s, k) => textBySeq.set(s.seq, `message ${i + k}`));
  }
  seqs = [...textBySeq.keys()].sort((a, b) => a - b);
  aliceUser = aliceOld.user;
  await aliceOld.close();
  alice = await signInInBrowser(browser, node.url, { phone: aliceOld.phone });
});
t.teardown(async () => {
  await dave?.close();
  await browser?.close();
  await node?.destroy();
});

const log = (p: Page) => p.getByRole('log', { name: 'Messages' });
/** The seqs of the rows in the page, top to bottom, each checked to show its own message. */
const shown = (p: Page) => log(p).locator('.msg').evaluateAll((els) => els.map((e) => [Number(e.getAttribute('data-seq')), e.querySelector('.text')?.textContent ?? ''] as const));
const ascending = (n: readonly number[]) => n.every((x, i) => i === 0 || x > n[i - 1]!);
const checked = async (t: Test, p: Page): Promise<number[]> => {
  const rows = await shown(p);
  t.ok(rows.length <= WINDOW, `${rows.length} rows in the page`);
  t.same(rows.filter(([seq, text]) => textBySeq.get(seq) !== text), [], 'each row shows its message');
  const n = rows.map(([seq]) => seq);
  t.ok(ascending(n), 'in seq order');
  return n;
};

t.test('the chat opens at the newest message with a bounded page', async (t) => {
  await alice.page.getByRole('button', { name: 'New chat' }).click();
  await alice.page.getByRole('form', { name: 'New chat' }).getByLabel('Phone number').fill(dave.phone);
  await alice.page.getByRole('button', { name: 'Start chat' }).click();
  const newest = seqs[seqs.length - 1]!;
  await log(alice.page).getByText(textBySeq.get(newest)!, { exact: true }).waitFor();
  const n = await checked(t, alice.page);
  t.equal(n[n.length - 1], newest, 'the newest last');
});

t.test('scrolling up loads older pages and the page stays a window', async (t) => {
  const goal = seqs[TOTAL - 800]!;
  const target = log(alice.page).locator(`[data-seq="${goal}"]`);
  for (let i = 0; i < 60 && !(await target.count()); i++) {
    const before = await log(alice.page).locator('.msg').first().getAttribute('data-seq');
    await log(alice.page).evaluate((el) => { el.scrollTop = 0; });
    await alice.page.waitForFunction((b) => document.querySelector('[role="log"] .msg')?.getAttribute('data-seq') !== b, before);
  }
  await target.waitFor();
  const n = await checked(t, alice.page);
  const at = seqs.indexOf(n[0]!);
  t.same(n, seqs.slice(at, at + n.length), 'contiguous: no message skipped');
});

t.test('a message arriving while reading older ones moves nothing', async (t) => {
  const row = log(alice.page).locator('.msg').nth(5);
  const seq = await row.getAttribute('data-seq');
  const before = await row.boundingBox();
  await dave.client.text({ to: aliceUser }, 'news');
  // The list shows it once the page has it: then the rows have had their chance to move.
  await alice.page.getByRole('list', { name: 'Conversations' }).getByText('news').waitFor();
  await alice.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  t.equal(await log(alice.page).locator('.msg').nth(5).getAttribute('data-seq'), seq, 'the same row');
  t.same(await log(alice.page).locator('.msg').nth(5).boundingBox(), before, 'in the same place');
  await alice.page.getByRole('button', { name: 'Scroll to newest messages' }).click();
  await log(alice.page).getByText('news', { exact: true }).waitFor();
  t.pass('the newest is one click away');
});
