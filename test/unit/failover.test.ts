import t from 'tap';
import { install } from '@sinonjs/fake-timers';

type InstalledClock = ReturnType<typeof install>;
import { DEFAULT_BACKOFF, backoffDelay, backoffWindow, nextUrl, nodeUrls } from '../../src/client/failover.js';
import { CONNECT_TIMEOUT_CLOSE, ParleyClient, type ClientOptions } from '../../src/client/parley-client.js';

/**
 * Issue #13 point 8: the SDK's failover among several node URLs. The schedule is pure (windows doubling from
 * 250 ms to 10 s, full jitter); the client's timing is checked on fake timers, against sockets that refuse
 * or welcome as each test says (a stand-in for the network: what the client does with a close is the subject).
 */

t.test('the backoff windows double from 250 ms and stop at 10 s; a wait is drawn uniformly inside', async (t) => {
  t.strictSame(Array.from({ length: 9 }, (_, i) => backoffWindow(i)), [250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  t.equal(backoffWindow(10_000), 10_000, 'a huge attempt count is still the cap');
  t.strictSame(DEFAULT_BACKOFF, { baseMs: 250, maxMs: 10_000 });
  t.equal(backoffDelay(0, () => 0), 0, 'the least: at once');
  t.equal(backoffDelay(3, () => 0.5), 1000, 'the middle of the window');
  t.equal(backoffDelay(3, () => 0.999_999), 1999, 'never the window itself');
  t.equal(backoffDelay(20, () => 0.999_999), 9999, 'never past the cap');
  t.equal(backoffWindow(2, { baseMs: 100, maxMs: 300 }), 300, 'another policy');
  const outside = Array.from({ length: 1000 }, (_, i) => [i % 12, backoffDelay(i % 12)] as const).filter(([k, d]) => d < 0 || d >= backoffWindow(k));
  t.strictSame(outside, [], '1,000 draws of Math.random, each inside its window');
});

t.test('URLs: the list, else the one; round robin', async (t) => {
  t.strictSame(nodeUrls({ url: 'http://a:1/' }), ['http://a:1']);
  t.strictSame(nodeUrls({ urls: ['http://a:1', ' https://b:2 '], url: 'http://ignored:3' }), ['http://a:1', 'https://b:2']);
  t.throws(() => nodeUrls({}), /needs `url` or `urls`/);
  t.throws(() => nodeUrls({ urls: ['http://a:1', 'b:2'] }), /needs `url` or `urls`/, 'every one must be an address');
  t.strictSame([nextUrl(0, 3), nextUrl(1, 3), nextUrl(2, 3), nextUrl(0, 1)], [1, 2, 0, 0]);
});

/** Sockets whose fate the test decides: each records when (fake time) and where it was opened. */
class Net {
  readonly opened: { at: number; url: string; socket: FakeSocket }[] = [];
  /** Hosts that refuse (the socket closes 1006 without opening). */
  readonly down = new Set<string>();
  /** Hosts that accept and then say nothing (no welcome, no close). */
  readonly hung = new Set<string>();
  constructor(readonly clock: InstalledClock) {}
  ctor(): NonNullable<ClientOptions['WebSocket']> {
    const net = this;
    return class extends FakeSocket {
      constructor(url: string) {
        super(url);
        net.opened.push({ at: net.clock.now, url: new URL(url).host, socket: this });
        // After the client has set its handlers (a microtask: no fake time passes).
        const host = new URL(url).host;
        void Promise.resolve().then(() => (net.hung.has(host) ? undefined : net.down.has(host) ? this.fail() : this.welcome()));
      }
    } as unknown as NonNullable<ClientOptions['WebSocket']>;
  }
}

class FakeSocket {
  binaryType = '';
  readyState = 0;
  sent: unknown[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: unknown): void { this.sent.push(data); }
  close(code = 1000, reason = ''): void { this.closed(code, reason); }
  welcome(): void {
    this.readyState = 1;
    this.onmessage?.({ data: JSON.stringify({ t: 'welcome', user: 'u1', device: 'd1', acked: 0, time: 0, limits: {} }) });
  }
  fail(): void { this.closed(1006, ''); }
  closed(code: number, reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

/** Lets the sockets' microtasks run (they refuse or welcome there). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function setup(t: { teardown(f: () => void): void }, urls: string[], extra: Partial<ClientOptions> = {}) {
  const clock = install({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  t.teardown(() => clock.uninstall());
  const net = new Net(clock);
  const client = new ParleyClient({ urls, token: 'tok', format: 'json', random: () => 0.5, WebSocket: net.ctor(), ...extra });
  return { clock, net, client };
}

t.test('every node down: the next URL each time, waits of half the window (random 0.5) doubling to the cap', async (t) => {
  const { clock, net, client } = setup(t, ['http://a:1', 'http://b:2', 'http://c:3']);
  for (const h of ['a:1', 'b:2', 'c:3']) net.down.add(h);
  let rejected: unknown;
  client.connect().catch((e: unknown) => { rejected = e; });
  for (let i = 0; i < 10; i++) { await settle(); clock.next(); } // each refusal, then its retry
  await settle();
  const seen = net.opened.map((o) => [o.at, o.url]);
  // Socket i opens at the sum of the waits before it; wait k = 0.5 · min(10 s, 250 · 2^k).
  const waits = [125, 250, 500, 1000, 2000, 4000, 5000, 5000, 5000];
  const at = [0, ...waits.map((_, i) => waits.slice(0, i + 1).reduce((a, b) => a + b, 0))];
  t.strictSame(seen.slice(0, 10), at.map((x, i) => [x, ['a:1', 'b:2', 'c:3'][i % 3]]), 'round robin, on the backoff schedule');
  t.match(rejected, { code: 'connect_failed' }, 'connect() rejected once each URL had failed once...');
  t.ok(net.opened.length >= 10, '...and the client went on trying in the background');
  client.close();
  const n = net.opened.length;
  clock.runAll();
  t.equal(net.opened.length, n, 'close() stops the retries');
});

t.test('connect() passes over a node that is down for the next; a welcome resets the schedule', async (t) => {
  const { clock, net, client } = setup(t, ['http://a:1', 'http://b:2']);
  net.down.add('a:1');
  const welcomed = client.connect();
  await settle(); // a refuses
  t.equal(client.url, 'http://b:2', 'the next one');
  clock.tick(125); // half the first window later, b
  await settle();
  t.match(await welcomed, { t: 'welcome', user: 'u1' });
  t.strictSame(net.opened.map((o) => [o.at, o.url]), [[0, 'a:1'], [125, 'b:2']]);
  t.ok(client.connected);

  // b dies: the client goes to a (back up now), starting the schedule over.
  net.down.delete('a:1');
  net.opened.at(-1)!.socket.closed(1006, '');
  t.equal(client.url, 'http://a:1');
  clock.tick(124);
  t.equal(net.opened.length, 2, 'not before its wait');
  clock.tick(1);
  await settle();
  t.strictSame(net.opened.at(-1)!.url, 'a:1', 'reconnected to a after the first window\'s wait again (the welcome reset it)');
  t.ok(client.connected);
  t.match(JSON.parse(String(net.opened.at(-1)!.socket.sent[0])), { t: 'sync', since: 0 }, 'and resumed from its pointer');
  client.close();
});

t.test('reconnect off: connect() still tries each URL once, a later close is final; one URL behaves as before', async (t) => {
  const { clock, net, client } = setup(t, ['http://a:1', 'http://b:2'], { reconnect: false });
  net.down.add('a:1');
  const p = client.connect();
  await settle();
  clock.tick(125);
  await settle();
  await p;
  net.opened.at(-1)!.socket.closed(1012, 'restart');
  clock.runAll();
  t.equal(net.opened.length, 2, 'no reconnect after a close');

  const single = new ParleyClient({ url: 'http://c:3', token: 'tok', format: 'json', reconnect: false, WebSocket: net.ctor() });
  net.down.add('c:3');
  const q = single.connect();
  await settle();
  await t.rejects(q, { code: 'connect_failed' }, 'a single URL: rejected at its first refusal');
  clock.runAll();
  t.equal(net.opened.filter((o) => o.url === 'c:3').length, 1, 'and not tried again');
});

t.test('a node that accepts and never welcomes is given up after connectTimeoutMs (10 s) for the next', async (t) => {
  const { clock, net, client } = setup(t, ['http://a:1', 'http://b:2']);
  net.hung.add('a:1');
  const closes: number[] = [];
  client.on('close', (code) => closes.push(code));
  const welcomed = client.connect();
  await settle();
  clock.tick(9_999);
  t.equal(net.opened.length, 1, 'still waiting on a');
  clock.tick(1);
  t.strictSame(closes, [CONNECT_TIMEOUT_CLOSE], 'given up at 10 s, reported as 4008');
  t.equal(net.opened[0]!.socket.readyState, 3, 'and its socket closed');
  clock.tick(125);
  await settle();
  t.match(await welcomed, { t: 'welcome' }, 'welcomed by b after the backoff');
  t.strictSame(net.opened.map((o) => [o.at, o.url]), [[0, 'a:1'], [10_125, 'b:2']]);
  clock.tick(60_000);
  t.equal(net.opened.length, 2, 'the welcomed socket has no timer on it');
  t.strictSame(closes, [CONNECT_TIMEOUT_CLOSE]);
  client.close();
});
