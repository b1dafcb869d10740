import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32, deflateSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { startNodeProcess, type RunningNode } from '../helpers/node-process.js';
import { device, type TestDevice } from '../helpers/clients.js';
import { bubble, launchBrowser, messagesOf as messages, say, screenshot, setProfile, signInInBrowser, type BrowserUser } from '../helpers/browser.js';

/**
 * Issue #17: a location shows as a small map (Leaflet, tiles from the node's PARLEY_MAP_TILES) above its
 * coordinate link. This machine has no internet: the tile server is a local one that answers like
 * OpenStreetMap's (a PNG per /{z}/{x}/{y}.png) and remembers what it was asked.
 */

/** A 256-pixel tile, a real PNG: pale ground crossed by two roads. */
function tilePng(): Buffer {
  const size = 256;
  const raw = Buffer.alloc((size * 3 + 1) * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const road = Math.abs(y - 96) < 5 || Math.abs(x - 160) < 5;
      raw.set(road ? [255, 255, 255] : [242, 239, 233], y * (size * 3 + 1) + 1 + x * 3);
    }
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const head = Buffer.alloc(4); head.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
    return Buffer.concat([head, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0); header.writeUInt32BE(size, 4); header[8] = 8; header[9] = 2; // 8-bit RGB
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** The slippy-map tile that holds a point at zoom z (OpenStreetMap's tile names). */
function tileOf(lat: number, lng: number, z: number): string {
  const n = 2 ** z;
  const r = (lat * Math.PI) / 180;
  return `/${z}/${Math.floor(((lng + 180) / 360) * n)}/${Math.floor(((1 - Math.asinh(Math.tan(r)) / Math.PI) / 2) * n)}.png`;
}

const TILE = tilePng();
const tiles = { failing: false, seen: [] as { path: string; referer?: string }[] };
const tileServer = createServer((req, res) => {
  tiles.seen.push({ path: req.url ?? '', referer: req.headers.referer });
  if (tiles.failing || !/^\/\d+\/\d+\/\d+\.png$/.test(req.url ?? '')) { res.writeHead(404).end(); return; }
  res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'no-store' }).end(TILE);
});

let mapped: RunningNode;
let off: RunningNode;
let browser: Browser;
let alice: BrowserUser;
let bob: BrowserUser;
/** What any page logged about its Content-Security-Policy (Chromium logs each refusal). */
const cspViolations: string[] = [];
const watchCsp = (p: Page) => p.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });

t.before(async () => {
  await new Promise<void>((r) => tileServer.listen(0, '127.0.0.1', r));
  const template = `http://127.0.0.1:${(tileServer.address() as AddressInfo).port}/{z}/{x}/{y}.png`;
  [mapped, off, browser] = await Promise.all([startNodeProcess({ PARLEY_MAP_TILES: template }), startNodeProcess({ PARLEY_MAP_TILES: 'off' }), launchBrowser()]);
  [alice, bob] = await Promise.all([signInInBrowser(browser, mapped.url), signInInBrowser(browser, mapped.url)]);
  watchCsp(alice.page); watchCsp(bob.page);
  await Promise.all([setProfile(alice, 'Alice', 'contacts'), setProfile(bob, 'Bob', 'contacts')]);
});
t.teardown(async () => {
  await browser?.close();
  await Promise.all([mapped?.destroy(), off?.destroy()]);
  tileServer.close();
});

async function shareLocation(p: Page, lat: string, lng: string, name: string): Promise<void> {
  await p.getByRole('button', { name: 'Share a location' }).click();
  const form = p.getByRole('form', { name: 'Share a location' });
  await form.getByLabel('Latitude').fill(lat);
  await form.getByLabel('Longitude').fill(lng);
  await form.getByLabel('Place name (optional)').fill(name);
  await form.getByRole('button', { name: 'Send location' }).click();
}

async function startChat(u: BrowserUser, phone: string): Promise<void> {
  await u.page.getByRole('button', { name: 'New chat' }).click();
  await u.page.getByRole('form', { name: 'New chat' }).getByLabel('Phone number').fill(phone);
  await u.page.getByRole('button', { name: 'Start chat' }).click();
}

/** The row of the location named `name`, found by its coordinate link. */
const locationRow = (p: Page, name: string) => messages(p).locator('.msg').filter({ has: p.getByRole('link', { name: new RegExp(`^${name} \\(`) }) });

t.test('a location shows as a map of its place, with its pin, its credit and the link under it', async (t) => {
  await startChat(alice, bob.phone);
  await shareLocation(alice.page, '45.8326', '6.8652', 'Mont Blanc');
  await bob.page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /^Alice/ }).click();

  const row = locationRow(bob.page, 'Mont Blanc');
  const map = row.getByRole('img', { name: 'Map of Mont Blanc' });
  await map.waitFor(); // shown once a tile has loaded
  const box = await map.boundingBox();
  t.same([box!.width, box!.height], [240, 160], 'in its fixed box');
  const widths = await map.locator('img.leaflet-tile-loaded').evaluateAll((imgs: HTMLImageElement[]) => imgs.map((i) => i.naturalWidth));
  t.ok(widths.length > 0 && widths.every((w) => w === 256), `its tiles loaded (${widths.length})`);
  const pin = map.locator('img.leaflet-marker-icon');
  t.equal(await pin.evaluate((i: HTMLImageElement) => i.decode().then(() => i.naturalWidth)), 25, 'a pin, from the bundle');
  t.equal(await map.locator('.leaflet-control-attribution').textContent(), '© OpenStreetMap contributors', 'the tiles are credited');
  t.equal(await row.getByRole('link', { name: /^Mont Blanc/ }).getAttribute('href'), 'https://www.openstreetmap.org/?mlat=45.8326&mlon=6.8652#map=16/45.8326/6.8652');

  const asked = tiles.seen.filter((s) => s.path === tileOf(45.8326, 6.8652, 15));
  t.ok(asked.length > 0, 'the tile holding the place, at street zoom, was asked for');
  t.ok(tiles.seen.every((s) => s.path.startsWith('/15/')), 'and only tiles at that zoom');
  t.equal(asked[0]!.referer, `${mapped.url}/`, 'the tile server learns the site, as its policy asks, and no path');

  await bob.context.route('https://www.openstreetmap.org/**', (r) => r.fulfill({ contentType: 'text/html', body: '<title>OpenStreetMap</title>' }));
  const [full] = await Promise.all([bob.context.waitForEvent('page'), map.click({ position: { x: 60, y: 40 } })]);
  await full.waitForURL('https://www.openstreetmap.org/?mlat=45.8326&mlon=6.8652#map=16/45.8326/6.8652');
  t.pass('a click opens the full map');
  await full.close();
  await screenshot(bob.page, 'location');
  t.same(cspViolations, [], 'the page refused nothing');
});

t.test('when the tile server fails, the box shows the coordinates', async (t) => {
  tiles.failing = true;
  const before = tiles.seen.length;
  await shareLocation(alice.page, '27.9881', '86.925', 'Everest');
  const row = locationRow(bob.page, 'Everest');
  await row.getByText('Map unavailable').waitFor();
  t.match(await row.locator('.map-box').textContent(), '📍 27.98810, 86.92500', 'the coordinates, in the box');
  const box = await row.locator('.map-box').boundingBox();
  t.same([box!.width, box!.height], [240, 160], 'the same box: nothing moves');
  t.equal(await row.getByRole('img', { name: 'Map of Everest' }).count(), 0, 'no empty map');
  t.ok(tiles.seen.slice(before).some((s) => s.path === tileOf(27.9881, 86.925, 15)), 'its tiles were asked for, and refused');
  t.same(cspViolations, []);
});

t.test('a map is made only when its row comes into view', async (t) => {
  tiles.failing = false;
  for (let i = 1; i <= 30; i++) await say(alice.page, `line ${i}`);
  await bob.page.reload(); // the chat's rows mount afresh, at the newest message: both locations out of view
  await bob.page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /^Alice/ }).click();
  await bubble(bob.page, 'line 30').waitFor();
  const before = tiles.seen.length;
  // The older rows come with the history page the chat loads on opening (under load, after the newest shows).
  await messages(bob.page).locator('.map-box').nth(1).waitFor({ state: 'attached' });
  // An IntersectionObserver reports on the frame after it starts observing: two frames on, a map would exist.
  await bob.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  t.equal(await messages(bob.page).locator('.map-box').count(), 2, 'both location rows are in the page');
  t.equal(await messages(bob.page).locator('.leaflet-container').count(), 0, 'but no map is made for them');
  t.equal(tiles.seen.length, before, 'and no tile is asked for');
  const row = locationRow(bob.page, 'Mont Blanc');
  await row.scrollIntoViewIfNeeded();
  await row.getByRole('img', { name: 'Map of Mont Blanc' }).waitFor();
  t.ok(tiles.seen.length > before, 'scrolled to, it loads its map');
});

t.test('PARLEY_MAP_TILES=off: the link only, and no tile is asked for', async (t) => {
  let dave: TestDevice | undefined;
  const carol = await signInInBrowser(browser, off.url);
  t.teardown(() => dave?.close());
  dave = await device(off.url);
  const elsewhere: string[] = [];
  carol.page.on('request', (r) => { if (!r.url().startsWith(`${off.url}/`)) elsewhere.push(r.url()); });
  const before = tiles.seen.length;
  await startChat(carol, dave.phone);
  await shareLocation(carol.page, '45.8326', '6.8652', 'Mont Blanc');
  const row = locationRow(carol.page, 'Mont Blanc');
  await row.getByRole('link', { name: /^Mont Blanc/ }).waitFor();
  t.equal(await row.locator('.map-box').count(), 0, 'no map box');
  t.same(elsewhere, [], 'the page asked nothing of any other server');
  t.equal(tiles.seen.length, before);
  await carol.context.close();
});
