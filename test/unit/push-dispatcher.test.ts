import t from 'tap';
import { createClock } from '@sinonjs/fake-timers';
import { PushDispatcher, type DispatcherConfig, type Timers } from '../../src/push/dispatcher.js';
import { OutboxProvider, type PushNotice } from '../../src/push/push-gateway.js';
import { collapseIdOf } from '../../src/push/policy.js';
import { pushConfig } from '../../src/push/push-config.js';
import { ParleyError } from '../../src/protocol/errors.js';

/**
 * The dispatcher on a fake clock, sending through the dev outbox provider (the real one a dev node uses):
 * coalescing windows, counts, collapse ids and the bound on pending devices are exact, not slept for.
 */
const TOKEN = 'ab'.repeat(32);

function setup(t: { teardown(fn: () => unknown): void }, over: Partial<DispatcherConfig> = {}) {
  const clock = createClock(1_000_000);
  const timers: Timers = { now: () => clock.now, setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (h) => clock.clearTimeout(h as never) };
  const outbox = new OutboxProvider();
  const dead: string[] = [];
  const d = new PushDispatcher({ ...pushConfig({}).dispatch, coalesceMs: 1000, ...over }, {
    providers: {}, fallback: outbox, timers, senderName: async (u) => (u === 'ann' ? 'Ann' : undefined), dead: (x) => dead.push(x.device),
  });
  t.teardown(() => d.close());
  return { clock, outbox, d, dead };
}

const notice = (device: string, seq: number, conv = 'd.ann.bob'): PushNotice => ({
  user: 'bob', device, push: { platform: 'apns', token: `${device}${TOKEN}`.slice(0, 64) }, ptr: seq, conv, seq, from: 'ann', kind: 'text',
});

t.test('a burst of 20 for one device is one notification with a count of 20, after the window', async (t) => {
  const { clock, outbox, d } = setup(t);
  for (let i = 1; i <= 20; i++) {
    d.notify(notice('phone', i));
    await clock.tickAsync(40); // 20 messages over 800 ms: all inside the first one's window
  }
  t.strictSame(outbox.recent(), [], 'nothing before the window closes');
  await clock.tickAsync(199);
  t.strictSame(outbox.recent(), [], 'still nothing 999 ms after the first');
  await clock.tickAsync(1);
  t.match(outbox.recent(), [{ device: 'phone', count: 20, seq: 20, body: '20 new messages from Ann', collapseId: collapseIdOf('d.ann.bob') }]);
  t.equal(outbox.recent().length, 1, 'one notification');
  t.equal(d.pending, 0, 'nothing kept once sent');

  d.notify(notice('phone', 21));
  await clock.tickAsync(1000);
  t.match(outbox.recent().slice(1), [{ count: 1, seq: 21, body: 'New message from Ann', collapseId: collapseIdOf('d.ann.bob') }],
    'the next burst is a new notification with the same collapse id (it replaces the older on the device)');
});

t.test('devices coalesce apart: each its own window and count', async (t) => {
  const { clock, outbox, d } = setup(t);
  d.notify(notice('phone', 1));
  await clock.tickAsync(500);
  d.notify(notice('tablet', 1));
  d.notify(notice('phone', 2));
  await clock.tickAsync(500);
  t.match(outbox.recent(), [{ device: 'phone', count: 2 }]);
  await clock.tickAsync(500);
  t.match(outbox.recent(), [{ device: 'phone', count: 2 }, { device: 'tablet', count: 1 }]);
});

t.test('a newer registration of the device replaces the older token in its waiting notification', async (t) => {
  const { clock, outbox, d } = setup(t);
  d.notify(notice('phone', 1));
  d.notify({ ...notice('phone', 2), push: { platform: 'fcm', token: 'new-token' } });
  await clock.tickAsync(1000);
  t.match(outbox.recent(), [{ device: 'phone', platform: 'fcm', token: 'new-token', count: 2 }]);
});

t.test('pending devices are bounded: past the bound the oldest waiting one is dropped', async (t) => {
  const { clock, outbox, d } = setup(t, { maxPending: 3 });
  for (const dev of ['d1', 'd2', 'd3', 'd4', 'd5']) { d.notify(notice(dev, 1)); await clock.tickAsync(10); }
  t.equal(d.pending, 3, 'never more than the bound');
  await clock.tickAsync(1000);
  t.strictSame(outbox.recent().map((n) => n.device), ['d3', 'd4', 'd5'], 'the oldest two were dropped');
});

t.test('1,000 offline devices: notify returns at once, the sends go in the background', async (t) => {
  const { clock, outbox, d } = setup(t, { concurrency: 4 });
  for (let i = 0; i < 1000; i++) d.notify(notice(`m${String(i).padStart(4, '0')}`, 1, 'g.big'));
  t.equal(outbox.recent().length, 0, 'nothing sent inline');
  await clock.tickAsync(1000);
  t.equal(outbox.recent().length, 1000, 'each member once');
  t.equal(new Set(outbox.recent().map((n) => n.device)).size, 1000);
});

t.test('check refuses endpoints outside the allowed origins', async (t) => {
  const { d } = setup(t, { origins: { webpush: ['https://fcm.googleapis.com'], wns: ['https://*.notify.windows.com'] } });
  t.throws(() => d.check({ platform: 'webpush', token: 'http://127.0.0.1:8080/v1/admin/faults', p256dh: 'x', auth: 'y' }),
    new ParleyError('invalid', 'this node does not send webpush notifications to http://127.0.0.1:8080'));
  t.throws(() => d.check({ platform: 'wns', token: 'https://example.com/' }), /does not send wns notifications/);
  t.doesNotThrow(() => d.check({ platform: 'wns', token: 'https://db5.notify.windows.com/?t=1' }));
  t.doesNotThrow(() => d.check({ platform: 'apns', token: TOKEN }), 'a token that is no URL needs no origin');
});

t.test('a withdrawn device gets nothing more: what waits is dropped, and a send in flight has ended when withdraw resolves', async (t) => {
  const { clock, outbox, d } = setup(t);
  d.notify(notice('phone', 1));
  d.notify(notice('tablet', 1));
  await d.withdraw('bob', 'phone');
  await clock.tickAsync(1000);
  t.strictSame(outbox.recent().map((n) => n.device), ['tablet'], 'the withdrawn device\'s waiting notification never went');
  t.equal(d.pending, 0);

  // A send held at the provider: withdraw waits for it, and nothing follows it.
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  const send = outbox.send.bind(outbox);
  outbox.send = async (...a) => { await held; return send(...a); };
  d.notify(notice('phone', 2));
  await clock.tickAsync(1000); // in flight now
  d.notify(notice('phone', 3)); // waits behind the send
  let withdrawn = false;
  const w = d.withdraw('bob', 'phone').then(() => { withdrawn = true; });
  await clock.tickAsync(0);
  t.notOk(withdrawn, 'not before the send in flight ends');
  release();
  await w;
  t.equal(outbox.recent().filter((n) => n.device === 'phone').length, 1, 'the send in flight ended before withdraw resolved');
  await clock.tickAsync(60_000);
  t.strictSame(outbox.recent().filter((n) => n.device === 'phone').map((n) => n.seq), [2], 'what came behind it never went');
  t.equal(d.pending, 0);
});

t.test("a released user's waiting notifications are dropped here and their marks kept for the shard's next owner", async (t) => {
  const clock = createClock(1_000_000);
  const timers: Timers = { now: () => clock.now, setTimeout: (fn, ms) => clock.setTimeout(fn, ms), clearTimeout: (h) => clock.clearTimeout(h as never) };
  const outbox = new OutboxProvider();
  const marks = new Map<string, unknown>();
  const d = new PushDispatcher({ ...pushConfig({}).dispatch, coalesceMs: 1000 }, {
    providers: {}, fallback: outbox, timers, senderName: async () => undefined, dead: () => undefined,
    marks: { put: async (k, m) => void marks.set(k, m), delete: async (k) => void marks.delete(k) },
  });
  t.teardown(() => d.close());
  d.notify(notice('phone', 1));
  d.notify({ ...notice('phone', 1), user: 'carol' });
  await clock.tickAsync(0);
  t.strictSame([...marks.keys()].sort(), ['bob.phone', 'carol.phone'], 'both marked as owed');
  d.release((user) => user === 'bob');
  await clock.tickAsync(1000);
  t.strictSame(outbox.recent().map((n) => n.user), ['carol'], "bob's notification is not sent from here");
  t.ok(marks.has('bob.phone'), "bob's mark stays: the next owner sends it");
  t.notOk(marks.has('carol.phone'), "carol's was sent, and unmarked");
});
