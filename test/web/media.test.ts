import t from 'tap';
import type { Browser, Page } from 'playwright-core';
import { startNodeProcess, type RunningNode } from '../helpers/node-process.js';
import { bubble, launchBrowser, messagesOf as messages, say, screenshot, setProfile, signInInBrowser, type BrowserUser } from '../helpers/browser.js';

/**
 * Issue #17: pictures and video (upload with progress, a thumbnail at once, the picture and playback), a
 * location, and what a user does to a message: reply, react, edit, delete for everyone.
 */

let node: RunningNode;
let browser: Browser;
let alice: BrowserUser;
let bob: BrowserUser;

t.before(async () => {
  [node, browser] = await Promise.all([startNodeProcess(), launchBrowser()]);
  [alice, bob] = await Promise.all([signInInBrowser(browser, node.url), signInInBrowser(browser, node.url)]);
  await Promise.all([setProfile(alice, 'Alice', 'contacts'), setProfile(bob, 'Bob', 'contacts')]);
  await alice.page.getByRole('button', { name: 'New chat' }).click();
  await alice.page.getByRole('form', { name: 'New chat' }).getByLabel('Phone number').fill(bob.phone);
  await alice.page.getByRole('button', { name: 'Start chat' }).click();
  await say(alice.page, 'hi');
  await bob.page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /^Alice/ }).click();
  await bubble(bob.page, 'hi').waitFor();
});
t.teardown(async () => {
  await browser?.close();
  await node?.destroy();
});



/** A real PNG, drawn by the browser itself. */
function drawPng(p: Page, w: number, h: number): Promise<Buffer> {
  return p.evaluate(async ([w, h]) => {
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const g = c.getContext('2d')!;
    g.fillStyle = '#2980b9'; g.fillRect(0, 0, w, h);
    g.fillStyle = '#f1c40f'; g.beginPath(); g.arc(w / 2, h / 2, h / 3, 0, 7); g.fill();
    const blob = await new Promise<Blob>((r) => c.toBlob((b) => r(b!), 'image/png'));
    return Array.from(new Uint8Array(await blob.arrayBuffer()));
  }, [w, h] as const).then((a) => Buffer.from(a));
}

/** A real WebM of one second, recorded by the browser from a canvas. */
function recordWebm(p: Page): Promise<Buffer> {
  return p.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 160; c.height = 120;
    const g = c.getContext('2d')!;
    const rec = new MediaRecorder(c.captureStream(25), { mimeType: 'video/webm' });
    const parts: Blob[] = [];
    rec.ondataavailable = (e) => parts.push(e.data);
    const stopped = new Promise((r) => { rec.onstop = r; });
    rec.start();
    for (let i = 0; i < 25; i++) {
      g.fillStyle = `hsl(${i * 14}, 70%, 50%)`; g.fillRect(0, 0, 160, 120);
      await new Promise((r) => setTimeout(r, 40));
    }
    rec.stop();
    await stopped;
    return Array.from(new Uint8Array(await new Blob(parts).arrayBuffer()));
  }).then((a) => Buffer.from(a));
}

t.test('a picture uploads with progress and shows on both sides, sized before it loads', async (t) => {
  const png = await drawPng(alice.page, 640, 400);
  // Upload slowly enough to see its progress: the browser's own network throttling.
  const cdp = await alice.context.newCDPSession(alice.page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 64 * 1024 });
  await alice.page.getByLabel('Attach a photo or video').setInputFiles({ name: 'crag.png', mimeType: 'image/png', buffer: png });
  await alice.page.getByRole('progressbar', { name: 'Upload progress' }).waitFor();
  t.pass('the upload shows its progress');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

  // The picture itself (its thumbnail, shown while it loads, is "Photo (loading)").
  const img = messages(bob.page).getByRole('img', { name: 'Photo', exact: true });
  await img.waitFor();
  await t.resolveMatch(img.evaluate((e: HTMLImageElement) => e.decode().then(() => [e.naturalWidth, e.naturalHeight])), [640, 400], "Bob's page shows the picture");
  const box = await img.boundingBox();
  t.same([Math.round(box!.width), Math.round(box!.height)], [280, 175], 'in a box of its proportions');
  await messages(alice.page).getByRole('img', { name: 'Photo', exact: true }).waitFor();
  await screenshot(bob.page, 'picture');
});

t.test("a profile picture shows beside its owner's name", async (t) => {
  const png = await drawPng(bob.page, 96, 96);
  await bob.page.getByRole('button', { name: 'Settings' }).click();
  await bob.page.getByRole('form', { name: 'Settings' }).getByLabel('Change picture').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: png });
  await bob.page.getByRole('complementary', { name: 'Chats' }).getByRole('img', { name: 'Your picture' }).first().waitFor();
  await bob.page.getByRole('form', { name: 'Settings' }).getByRole('button', { name: 'Close' }).click();
  await alice.page.reload(); // profiles are read when the page connects
  await alice.page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /^Bob/ }).click();
  const pic = alice.page.getByRole('region', { name: 'Chat with Bob' }).getByRole('img', { name: "Bob's picture" });
  await t.resolveMatch(pic.evaluate((e: HTMLImageElement) => e.decode().then(() => e.naturalWidth)), 96, "Alice sees Bob's picture");
});

t.test('a video plays', async (t) => {
  const webm = await recordWebm(alice.page);
  await alice.page.getByLabel('Attach a photo or video').setInputFiles({ name: 'clip.webm', mimeType: 'video/webm', buffer: webm });
  const video = messages(bob.page).locator('video');
  await video.waitFor();
  const played = await video.evaluate(async (v: HTMLVideoElement) => {
    v.muted = true;
    await v.play();
    await new Promise((r) => setTimeout(r, 300));
    return { time: v.currentTime, w: v.videoWidth };
  });
  t.ok(played.time > 0, 'it plays');
  t.equal(played.w, 160);
});

t.test('a location is a link to the map', async (t) => {
  await alice.page.getByRole('button', { name: 'Share a location' }).click();
  const form = alice.page.getByRole('form', { name: 'Share a location' });
  await form.getByLabel('Latitude').fill('45.8326');
  await form.getByLabel('Longitude').fill('6.8652');
  await form.getByLabel('Place name (optional)').fill('Mont Blanc');
  await form.getByRole('button', { name: 'Send location' }).click();
  const link = messages(bob.page).getByRole('link', { name: /Mont Blanc/ });
  t.equal(await link.getAttribute('href'), 'https://www.openstreetmap.org/?mlat=45.8326&mlon=6.8652#map=16/45.8326/6.8652');
});

t.test('reply, react, edit, delete for everyone', async (t) => {
  await say(alice.page, 'Climb on Saturday?');
  const theirs = bubble(bob.page, 'Climb on Saturday?');
  await theirs.waitFor();

  await theirs.getByRole('button', { name: 'Message actions' }).click();
  await theirs.getByRole('menuitem', { name: 'Reply' }).click();
  await bob.page.getByText('Replying to Alice').waitFor();
  await say(bob.page, 'Yes!');
  const reply = bubble(alice.page, 'Yes!');
  await reply.locator('blockquote').getByText('Climb on Saturday?').waitFor();
  t.pass('Alice sees the reply quote her message');

  await theirs.getByRole('button', { name: 'Message actions' }).click();
  await theirs.getByRole('menuitem', { name: 'React 👍' }).click();
  const mine = bubble(alice.page, 'Climb on Saturday?');
  await mine.getByRole('button', { name: '👍 Bob' }).waitFor();
  t.pass("Alice sees Bob's reaction");

  await mine.getByRole('button', { name: 'Message actions' }).click();
  await mine.getByRole('menuitem', { name: 'Edit' }).click();
  const box = alice.page.getByRole('textbox', { name: 'Message' });
  await box.evaluate((el: HTMLTextAreaElement, want) => new Promise<void>((done) => {
    const look = () => (el.value === want ? done() : requestAnimationFrame(look)); // the app fills it on its next render
    look();
  }), 'Climb on Saturday?');
  t.pass('the text to edit is in the box');
  await box.fill('Climb on Sunday?');
  await box.press('Enter');
  const edited = bubble(bob.page, 'Climb on Sunday?');
  await edited.getByText('edited').waitFor();
  t.pass('Bob sees the edit, marked edited, his reaction kept');
  await edited.getByRole('button', { name: '👍 You' }).waitFor();
  await screenshot(bob.page, 'message-actions');

  const toDelete = bubble(alice.page, 'Climb on Sunday?');
  await toDelete.getByRole('button', { name: 'Message actions' }).click();
  alice.page.once('dialog', (d) => void d.accept());
  await toDelete.getByRole('menuitem', { name: 'Delete for everyone' }).click();
  await messages(bob.page).locator('.deleted').getByText('This message was deleted').waitFor();
  t.equal(await bubble(bob.page, 'Climb on Sunday?').count(), 0, 'its text is gone from Bob');
  await reply.locator('blockquote').getByText('This message was deleted').waitFor();
  t.pass("and the reply's quote says so");
});
