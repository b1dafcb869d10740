import t from 'tap';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_KEY, Fixture, http } from '../helpers/fixture.js';
import { launchBrowser, screenshot } from '../helpers/browser.js';
import type { AnalyticsReport, LiveReport, SupervisionTree } from '../../src/ops/admin-api.js';

/**
 * Issue #16 §5: the ops console at /ops, in a real browser, against a node under a little traffic: it asks for
 * the admin key, then shows this node's supervision tree (with an entity crash-looping flagged), its live
 * numbers and charts, and the day's analytics, each matching what the operator routes answer.
 */

let f: Fixture;
let browser: Browser;
// Taking the docs' screenshot adds half a minute of traffic.
if (process.env.PARLEY_WEB_SCREENSHOTS === '1') t.setTimeout(180_000);
t.before(async () => {
  [f, browser] = await Promise.all([Fixture.start({ PARLEY_FAULTS: '1' }), launchBrowser()]);
});
t.teardown(async () => {
  await browser?.close();
  await f?.destroy();
});

const admin = async <T>(path: string): Promise<T> => {
  const r = await http(f.url, path, { headers: { 'x-admin-key': ADMIN_KEY } });
  if (r.status !== 200) throw new Error(`${path} answered ${r.status}`);
  return r.json as T;
};

/** Asks `f` again every 200 ms until it answers something, for at most 10 s. */
async function until<T>(f: () => Promise<T | undefined>, what: string): Promise<T> {
  for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    const v = await f();
    if (v !== undefined) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The console in a new context, signed in with `key`; `refused` collects what the CSP refused it. */
async function openConsole(key: string): Promise<{ page: Page; refused: string[] }> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const refused: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy/.test(m.text())) refused.push(m.text()); });
  await page.goto(`${f.url}/ops`);
  await page.getByRole('textbox', { name: 'Admin key' }).fill(key);
  await page.getByRole('button', { name: 'Open the console' }).click();
  return { page, refused };
}

t.test('the console needs the admin key: a wrong one is refused with the node\'s reason', async (t) => {
  const { page } = await openConsole('not-the-admin-key');
  t.match(await page.getByRole('alert').textContent(), /wrong admin key/);
  t.ok(await page.getByRole('textbox', { name: 'Admin key' }).isVisible(), 'and the key form stays');
  t.equal((await http(f.url, '/v1/admin/live')).status, 401, 'the data routes themselves need the key');
  t.equal((await http(f.url, '/v1/admin/live?since=soon', { headers: { 'x-admin-key': ADMIN_KEY } })).status, 400);
  await page.context().close();
});

t.test('the tree, the live numbers and the analytics of a node under a little traffic', async (t) => {
  const [alice, bob, carol] = await Promise.all([f.device(t), f.device(t), f.device(t)]);
  for (let i = 0; i < 30; i++) await alice.client.text({ to: bob.user }, `m${i}`);
  await bob.waitFor(() => bob.messages.length === 30 || undefined, 10_000, 'bob to get all 30');
  const poisoned = await alice.client.text({ to: carol.user }, 'hello');
  // The node's series holds the traffic once a sample was taken after it (asked again, not waited for).
  const live = await until(async () => {
    const l = await admin<LiveReport>('/v1/admin/live');
    return l.points.some((p) => p.sendsPerSec > 0 && p.deliveredP99Ms !== null) && l.points.at(-1)!.connections === 3 ? l : undefined;
  }, 'a sample with the traffic');
  // A conversation crash-looping: its next three messages crash it (a poison message, as an operator meets it).
  // The loop shows for the supervisor's 10 s window.
  const armed = await http(f.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json: { type: 'conv', id: poisoned.conv, times: 3 } });
  t.equal(armed.status, 200);
  const failed = await Promise.all([1, 2, 3].map((i) => alice.client.text({ to: carol.user }, `poison ${i}`).then(() => 'stored', (e: { code: string }) => e.code)));
  t.same(failed, ['internal', 'internal', 'internal'], 'each armed crash failed its send');

  const { page, refused } = await openConsole(ADMIN_KEY);
  await page.getByTestId('node-id').waitFor();
  t.equal(await page.getByTestId('node-id').textContent(), live.node, 'the node it answers for');

  const loops = page.getByRole('alert', { name: 'Crash loops' });
  await loops.waitFor();
  t.match(await loops.textContent(), new RegExp(`conv/${poisoned.conv.replace(/\./g, '\\.')}: 3 crashes in 10 s`), 'the crash-looping conversation is flagged at the top');
  const convs = page.getByRole('group', { name: 'Conversations' });
  t.match(await convs.getByRole('table', { name: 'Crash-looping' }).textContent(), poisoned.conv, 'and in its region of the tree');
  t.match(await convs.locator('.crashes').textContent(), /injected fault/, 'with the last crashes and their reason');

  const tree = await admin<SupervisionTree>('/v1/admin/actors?top=10');
  const users = tree.regions.find((r) => r.type === 'user')!;
  t.equal(await page.getByTestId('active-user').textContent(), `${users.active} active`, 'live users as the tree route counts them');
  t.ok(users.active >= 3);

  t.equal(await page.getByTestId('now-connections').textContent(), '3', 'the three open sockets');
  // The busiest interval of sends: at least the one seen above, at most the busiest the node has now.
  const shown = Number(await page.getByTestId('peak-sendsPerSec').textContent());
  const peak = (l: LiveReport) => l.points.reduce((m, p) => Math.max(m, p.sendsPerSec), 0);
  t.ok(shown >= peak(live) && shown <= peak(await admin<LiveReport>('/v1/admin/live')), `the busiest interval of sends: ${shown}/s`);
  t.match(await page.getByTestId('peak-deliveredP99Ms').textContent(), /^\d[\d.,]* ms$/, 'a delivery latency');
  for (const chart of ['Messages per second', 'Latency (ms)', 'Connections', 'Errors and stalls']) {
    t.equal(await page.getByRole('figure', { name: chart }).locator('canvas').count(), 1, `the ${chart} chart is drawn`);
  }

  const day = new Date().toISOString().slice(0, 10);
  const report = await admin<AnalyticsReport>(`/v1/admin/analytics?from=${day}&to=${day}`);
  const today = report.days[0]!;
  t.ok(today.messages.direct >= 31 && today.signups >= 3, 'the node counted the traffic');
  await page.getByTestId('messages-total').waitFor();
  t.equal(Number((await page.getByTestId('messages-total').textContent())!.replace(/,/g, '')), today.messages.direct + today.messages.group, 'messages as the analytics route counts them');
  t.equal(await page.getByTestId('dau-today').textContent(), String(today.dau), 'today\'s active users');
  t.equal(await page.getByRole('figure', { name: 'Daily active users' }).locator('canvas').count(), 1);
  t.same(refused, [], 'nothing the page does is refused by the CSP');

  // The CLI shows the same series.
  const cli = (await promisify(execFile)(process.execPath, [resolve(__dirname, '../../src/ops/ops-cli.js'), 'live', '--url', f.url, '--key', ADMIN_KEY, '--top', '300'])).stdout;
  t.match(cli, new RegExp(`^node ${live.node} `), 'npm run ops -- live: the node');
  t.match(cli, /time +conns +msgs\/s +deliv\/s +sent p99 +deliv p99/, 'its columns');
  t.match(cli, new RegExp(`\\s${peak(live)}\\s`), 'and the busiest interval among its rows');

  if (process.env.PARLEY_WEB_SCREENSHOTS === '1') {
    // For the docs: half a minute of chat at about 20 messages a second, so the charts have a shape.
    for (let i = 0; i < 600; i++) {
      await alice.client.text({ to: bob.user }, `more ${i}`);
      await new Promise((r) => setTimeout(r, 40 + 30 * Math.sin(i / 60)));
    }
    await page.waitForTimeout(2500);
    await screenshot(page, 'console', 'docs/ops', { fullPage: true });
  }
  await page.context().close();
});
