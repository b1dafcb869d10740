import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { newPhone } from './clients.js';

const ROOT = resolve(__dirname, '../../..');

/** Debian's chromium, installed by scripts/chromium when missing (apt-get; the first run takes a minute or two). */
export function chromiumPath(): string {
  const out = execFileSync(resolve(ROOT, 'scripts/chromium'), ['install'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 15 * 60_000 });
  return out.trim().split('\n').pop()!;
}

/** One browser per test file; each user a context of its own (separate storage, like two machines). */
export function launchBrowser(): Promise<Browser> {
  // As root chromium needs --no-sandbox; the pages are our own, from a node on loopback.
  return chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'], headless: true });
}

export interface BrowserUser { context: BrowserContext; page: Page; phone: string }

/** A context that signs in through the page, reading the one-time code the dev node shows on it. */
export async function signInInBrowser(browser: Browser, url: string, opts: { phone?: string; viewport?: { width: number; height: number } } = {}): Promise<BrowserUser> {
  const phone = opts.phone ?? newPhone();
  const context = await browser.newContext({ viewport: opts.viewport ?? { width: 1100, height: 760 } });
  const page = await context.newPage();
  await page.goto(url);
  await page.getByLabel('Phone number').fill(phone);
  await page.getByRole('button', { name: 'Send code' }).click();
  const code = await page.getByTestId('dev-code').textContent();
  await screenshot(page, 'sign-in');
  await page.getByLabel('One-time code').fill(code!);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('complementary', { name: 'Chats' }).waitFor();
  return { context, page, phone };
}

/** A chat's message list, by its role and name. */
export const messagesOf = (p: Page) => p.getByRole('log', { name: 'Messages' });
/** The bubble whose own text is `text` (a reply quoting it is not). */
export const bubble = (p: Page, text: string) => messagesOf(p).locator('.msg').filter({ has: p.locator('p.text').getByText(text, { exact: true }) });

/** Types a message in the open chat and presses Enter. */
export async function say(p: Page, text: string): Promise<void> {
  const box = p.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
}

/** Sets the profile name and last-seen privacy through the Settings panel. */
export async function setProfile(u: BrowserUser, name: string, lastSeen: 'everyone' | 'contacts' | 'nobody'): Promise<void> {
  await u.page.getByRole('button', { name: 'Settings' }).click();
  const form = u.page.getByRole('form', { name: 'Settings' });
  await form.getByLabel('Your name').fill(name);
  await form.getByLabel('Who can see my last seen and online').selectOption(lastSeen);
  await form.getByRole('button', { name: 'Save' }).click();
  await form.getByRole('status').getByText('Saved.').waitFor();
  await form.getByRole('button', { name: 'Close' }).click();
}

/** Screenshots for docs/web (or `folder`) when PARLEY_WEB_SCREENSHOTS=1 (the test run that takes them is the docs' source). */
export async function screenshot(page: Page, name: string, folder = 'docs/web', opts: { fullPage?: boolean } = {}): Promise<void> {
  if (process.env.PARLEY_WEB_SCREENSHOTS !== '1') return;
  const dir = resolve(ROOT, folder);
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: resolve(dir, `${name}.png`), ...opts });
}
