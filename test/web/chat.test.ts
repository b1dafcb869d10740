import t from 'tap';
import type { Browser, Page } from 'playwright-core';
import { startNodeProcess, type RunningNode } from '../helpers/node-process.js';
import { bubble, launchBrowser, messagesOf as messages, say, screenshot, setProfile, signInInBrowser, type BrowserUser } from '../helpers/browser.js';

/**
 * Issue #17: two people chat in a real browser (Debian's chromium) against a real node, each in a context of
 * its own: what they see is asserted through the page (roles, labels, text), with playwright's waiting locators.
 */

let node: RunningNode;
let browser: Browser;
let alice: BrowserUser;
let bob: BrowserUser;

t.before(async () => {
  [node, browser] = await Promise.all([startNodeProcess(), launchBrowser()]);
  alice = await signInInBrowser(browser, node.url);
  bob = await signInInBrowser(browser, node.url);
});
t.teardown(async () => {
  await browser?.close();
  await node?.destroy();
});

const chatList = (p: Page) => p.getByRole('list', { name: 'Conversations' });

async function startChat(u: BrowserUser, phone: string): Promise<void> {
  await u.page.getByRole('button', { name: 'New chat' }).click();
  await u.page.getByRole('form', { name: 'New chat' }).getByLabel('Phone number').fill(phone);
  await u.page.getByRole('button', { name: 'Start chat' }).click();
  await u.page.getByRole('textbox', { name: 'Message' }).waitFor();
}


t.test('each sets a name; Bob lets everyone see his last seen', async (t) => {
  await setProfile(alice, 'Alice', 'contacts');
  await setProfile(bob, 'Bob', 'everyone');
  await alice.page.getByRole('complementary', { name: 'Chats' }).getByText('Alice', { exact: true }).waitFor();
  t.pass('her name heads her chat list');
});

t.test('1:1: the ticks go sent → delivered → read, typing shows, and the list counts unread', async (t) => {
  await startChat(alice, bob.phone);
  await alice.page.getByRole('heading', { name: 'Bob' }).waitFor();
  await alice.page.getByTestId('chat-status').getByText('online').waitFor();
  t.pass("Alice sees Bob's name and that he is online");
  await say(alice.page, 'Hello Bob');
  const mine = bubble(alice.page, 'Hello Bob');
  // Bob's page is open and synced: his device acks it at once, so "sent" may already be "delivered".
  await mine.getByRole('img', { name: /^(Sent|Delivered)$/ }).waitFor();
  await mine.getByRole('img', { name: 'Delivered' }).waitFor();

  const row = chatList(bob.page).getByRole('button', { name: /, 1 unread$/ });
  await row.waitFor();
  t.match(await row.textContent(), /Hello Bob/, "Bob's list shows the last message");
  await screenshot(bob.page, 'conversation-list');
  await row.click();
  await bubble(bob.page, 'Hello Bob').waitFor();
  await mine.getByRole('img', { name: 'Read' }).waitFor();
  t.pass('Alice sees it read once Bob opened the chat');
  await chatList(bob.page).getByRole('button', { name: /unread/ }).waitFor({ state: 'detached' });

  await bob.page.getByRole('textbox', { name: 'Message' }).pressSequentially('Hi Al', { delay: 20 });
  await alice.page.getByTestId('chat-status').getByText('typing…').waitFor();
  t.pass('Alice sees Bob typing');
  await bob.page.getByRole('textbox', { name: 'Message' }).press('Enter');
  await bubble(alice.page, 'Hi Al').waitFor();
  await alice.page.getByTestId('chat-status').getByText('typing…').waitFor({ state: 'detached' });
  t.pass('his message ends his typing');
  await screenshot(alice.page, 'chat');
});

t.test('offline and back: the messages missed meanwhile appear in order', async (t) => {
  await bob.context.setOffline(true);
  await bob.page.getByRole('status').getByText(/You are offline/).waitFor();
  for (const n of [1, 2, 3]) await say(alice.page, `missed ${n}`);
  // Stored (one tick), not delivered: Bob's only device is offline.
  await bubble(alice.page, 'missed 3').getByRole('img', { name: 'Sent' }).waitFor();
  await alice.page.getByTestId('chat-status').getByText(/^last seen today at /).waitFor();
  t.pass('Alice sees when Bob was last seen');
  await bob.context.setOffline(false);
  await bubble(bob.page, 'missed 3').waitFor();
  const texts = await messages(bob.page).locator('.msg .text').allTextContents();
  t.same(texts.slice(-3), ['missed 1', 'missed 2', 'missed 3'], 'in the order sent');
  await bubble(alice.page, 'missed 3').getByRole('img', { name: 'Read' }).waitFor();
  t.pass('and Alice sees them read, Bob having the chat open');
});

t.test('a message written offline is sent once back online', async (t) => {
  await bob.context.setOffline(true);
  await bob.page.getByRole('status').getByText(/You are offline/).waitFor();
  await say(bob.page, 'written on the train');
  await bubble(bob.page, 'written on the train').getByRole('img', { name: 'Sending' }).waitFor();
  await bob.context.setOffline(false);
  await bubble(alice.page, 'written on the train').waitFor();
  await bubble(bob.page, 'written on the train').getByRole('img', { name: /^(Sent|Delivered|Read)$/ }).waitFor();
  t.pass('it went, once');
  t.equal(await bubble(alice.page, 'written on the train').count(), 1);
});

t.test('a reload keeps the session and the chat list; what came meanwhile is there', async (t) => {
  await bob.page.reload();
  await chatList(bob.page).getByRole('button', { name: /^Alice/ }).waitFor();
  t.pass('still signed in, the chat listed');
  await bob.context.setOffline(true);
  await say(alice.page, 'while you reloaded');
  await bob.context.setOffline(false);
  await chatList(bob.page).getByRole('button', { name: /^Alice/ }).click();
  await bubble(bob.page, 'while you reloaded').waitFor();
  await bubble(bob.page, 'Hello Bob').waitFor();
  t.pass('with the history before it');
});

t.test('on a phone-sized window one pane shows at a time', async (t) => {
  const carol = await signInInBrowser(browser, node.url, { viewport: { width: 390, height: 780 } });
  t.teardown(() => carol.context.close());
  await startChat(carol, alice.phone);
  t.equal(await carol.page.getByRole('list', { name: 'Conversations' }).isVisible(), false, 'the chat fills the window');
  await say(carol.page, 'from my phone');
  await bubble(carol.page, 'from my phone').getByRole('img', { name: /^(Sent|Delivered|Read)$/ }).waitFor();
  await screenshot(carol.page, 'phone-chat');
  await carol.page.getByRole('button', { name: 'Back to chats' }).click();
  await chatList(carol.page).getByRole('button').filter({ hasText: 'from my phone' }).waitFor();
  t.equal(await carol.page.getByRole('log', { name: 'Messages' }).isVisible(), false, 'and the list, back');
  await screenshot(carol.page, 'phone-list');
});

t.test('the keyboard reaches the controls, and signing out returns to the sign-in', async (t) => {
  const box = alice.page.getByRole('textbox', { name: 'Message' });
  await box.focus();
  await alice.page.keyboard.press('Shift+Tab');
  t.equal(await alice.page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Share a location', 'Shift+Tab from the message box');
  await alice.page.getByRole('button', { name: 'Settings' }).click();
  await alice.page.getByRole('form', { name: 'Settings' }).getByRole('button', { name: 'Sign out' }).click();
  await alice.page.getByLabel('Phone number').waitFor();
  t.pass('signed out');
  await alice.page.reload();
  await alice.page.getByLabel('Phone number').waitFor();
  t.pass('and stays signed out after a reload');
});
