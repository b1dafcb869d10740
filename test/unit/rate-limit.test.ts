import t from 'tap';
import FakeTimers from '@sinonjs/fake-timers';
import { KeyedLimiter, SWEEP_MS, TokenBucket } from '../../src/transport/rate-limit.js';

t.test('a token bucket refuses past its burst and says how long to wait', async (t) => {
  const b = new TokenBucket(2, 3, 0);
  t.ok(b.take(0) && b.take(0) && b.take(0));
  t.notOk(b.take(0));
  t.equal(b.waitMs(0), 500, 'one token at 2 per second');
  t.ok(b.take(500));
  t.notOk(b.take(500, 2), 'a cost of 2 needs two tokens');
});

t.test('keys have buckets of their own', async (t) => {
  const l = new KeyedLimiter({ perSecond: 1, burst: 2 });
  t.equal(l.take('a', 0), 0);
  t.equal(l.take('a', 0), 0);
  t.equal(l.take('a', 0), 1000, 'a is out: one token a second');
  t.equal(l.take('b', 0), 0, 'b is not');
  t.equal(l.take('a', 1000), 0, 'a refilled');
});

t.test('memory is bounded: the least recently used key is forgotten first', async (t) => {
  const l = new KeyedLimiter({ perSecond: 1, burst: 1 }, 3);
  l.take('a', 0); l.take('b', 0); l.take('c', 0);
  l.take('a', 0); // a is now the most recent
  l.take('d', 0); // evicts b
  t.equal(l.size, 3);
  t.not(l.take('a', 0), 0, 'a kept its empty bucket');
  t.equal(l.take('b', 0), 0, 'b was forgotten, so it starts full');
});

t.test('a refund gives back a reservation that was not used, never above the burst', async (t) => {
  const l = new KeyedLimiter({ perSecond: 1, burst: 2 });
  t.equal(l.take('a', 0), 0);
  t.equal(l.take('a', 0), 0);
  l.refund('a', 0);
  t.equal(l.take('a', 0), 0, 'the refunded token is there again');
  t.equal(l.take('a', 0), 1000, 'and only that one');
  l.refund('a', 5000, 10);
  t.equal(l.take('a', 5000), 0);
  t.equal(l.take('a', 5000), 0);
  t.not(l.take('a', 5000), 0, 'a refund never fills past the burst');
  l.refund('never-seen', 0);
  t.equal(l.size, 1, 'refunding an unknown key creates nothing');
});

t.test('full buckets are forgotten every SWEEP_MS; a bucket still drawn on is kept', async (t) => {
  const clock = FakeTimers.install({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  t.teardown(() => clock.uninstall());
  const l = new KeyedLimiter({ perSecond: 1, burst: 100 });
  l.take('quiet', Date.now());
  for (let i = 0; i < 100; i++) l.take('busy', Date.now()); // empty: refills in 100 s
  clock.tick(SWEEP_MS);
  t.equal(l.size, 1, 'the full one went; the empty one stays');
  t.equal(l.take('busy', Date.now()), 0, 'with the tokens it refilled meanwhile');
  t.not(l.take('busy', Date.now(), 20), 0, 'and no more: it was not reset');
  clock.tick(100 * SWEEP_MS);
  t.equal(l.size, 0, 'once full again, it goes too');
});
