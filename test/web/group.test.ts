import t from 'tap';
import type { Browser, Page } from 'playwright-core';
import { startNodeProcess, type RunningNode } from '../helpers/node-process.js';
import { device, type TestDevice } from '../helpers/clients.js';
import { bubble, launchBrowser, messagesOf as messages, say, screenshot, setProfile, signInInBrowser, type BrowserUser } from '../helpers/browser.js';

/**
 * Issue #17: a group in the browser, with a third member on the SDK (as the CLI is): "delivered to all" and
 * "read by all", and the admin's work — make admin, remove, a member leaving — as the members see it.
 */

let node: RunningNode;
let browser: Browser;
let alice: BrowserUser;
let bob: BrowserUser;
let carol: TestDevice;

t.before(async () => {
  [node, browser] = await Promise.all([startNodeProcess(), launchBrowser()]);
  [alice, bob] = await Promise.all([signInInBrowser(browser, node.url), signInInBrowser(browser, node.url)]);
  await Promise.all([setProfile(alice, 'Alice', 'contacts'), setProfile(bob, 'Bob', 'contacts')]);
  carol = await device(node.url);
  await carol.client.setProfile({ name: 'Carol' });
});
t.teardown(async () => {
  await carol?.close();
  await browser?.close();
  await node?.destroy();
});

const note = (p: Page, text: string | RegExp) => messages(p).getByRole('note').filter({ hasText: text });


let conv = '';

t.test('Alice makes a group of three; ticks go to "delivered to all", then "read by all"', async (t) => {
  await alice.page.getByRole('button', { name: 'New group' }).click();
  const form = alice.page.getByRole('form', { name: 'New group' });
  await form.getByLabel('Group name').fill('Climbing');
  await form.getByLabel(/Members' phone numbers/).fill(`${bob.phone}, ${carol.phone}`);
  await form.getByRole('button', { name: 'Create group' }).click();
  await alice.page.getByRole('heading', { name: 'Climbing' }).waitFor();
  await note(alice.page, 'You created the group "Climbing"').waitFor();

  await say(alice.page, 'Saturday at the crag?');
  const mine = bubble(alice.page, 'Saturday at the crag?');
  await mine.getByRole('img', { name: 'Delivered to all' }).waitFor();
  t.pass("delivered to all once Bob's page and Carol's client have it");
  const m = await carol.waitMessage((x) => x.kind === 'text', 'the text on the SDK');
  conv = m.conv;

  await bob.page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: 'Climbing, 1 unread' }).click();
  await bubble(bob.page, 'Saturday at the crag?').getByText('Saturday at the crag?').waitFor();
  t.equal(await mine.getByRole('img', { name: 'Read by all' }).count(), 0, 'Bob read it, Carol has not');
  carol.client.read(conv, m.seq);
  await mine.getByRole('img', { name: 'Read by all' }).waitFor();
  t.pass('read by all once Carol read it too');

  await carol.client.text({ conv }, 'I am in');
  await bubble(bob.page, 'I am in').getByText('Carol').waitFor();
  t.pass("members' messages carry their sender's name");
  await screenshot(alice.page, 'group');
});

t.test('the admin makes Bob an admin and removes Carol; Bob leaves', async (t) => {
  await alice.page.getByRole('button', { name: 'Group info' }).click();
  const info = alice.page.getByRole('region', { name: 'Group info' });
  await info.getByText('3 members').waitFor();
  const members = info.getByRole('list', { name: 'Members' });
  await members.getByRole('listitem').filter({ hasText: 'Bob' }).getByRole('button', { name: 'Make admin' }).click();
  await members.getByRole('listitem').filter({ hasText: 'Bob' }).getByText('admin', { exact: true }).waitFor();
  await note(bob.page, 'made You an admin').waitFor();
  t.pass('Bob sees he was made an admin');
  await screenshot(alice.page, 'group-info');

  await info.getByRole('textbox', { name: 'Group name' }).fill('Climbing club');
  await info.getByRole('button', { name: 'Rename' }).click();
  await note(bob.page, 'Alice renamed the group to "Climbing club"').waitFor();
  await bob.page.getByRole('heading', { name: 'Climbing club' }).waitFor();
  t.pass("Bob's chat takes the new name");

  await members.getByRole('button', { name: 'Remove Carol' }).click();
  await info.getByText('2 members').waitFor();
  await note(bob.page, 'removed Carol').waitFor();
  const removed = await carol.waitMessage((x) => x.kind === 'system' && (x.body as { event?: string }).event === 'removed', 'Carol is told');
  t.same((removed.body as { users: string[] }).users, [carol.user]);

  await bob.page.getByRole('button', { name: 'Group info' }).click();
  bob.page.once('dialog', (d) => void d.accept());
  await bob.page.getByRole('region', { name: 'Group info' }).getByRole('button', { name: 'Leave group' }).click();
  await bob.page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /^Climbing club/ }).waitFor({ state: 'detached' });
  t.pass('the group leaves his list');
  await note(alice.page, 'Bob left').waitFor();
  await info.getByText('1 members').or(info.getByText('1 member')).waitFor();
  t.pass('Alice sees him leave');
});
