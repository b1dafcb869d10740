import t from 'tap';
import { FRAME_COSTS, frameCost } from '../../src/transport/frame-cost.js';
import { ipKey } from '../../src/transport/ip-key.js';
import { averageBytes, DELIVERY_OVERHEAD, FIRST_AVG_BYTES, readCount, resendCount } from '../../src/actors/sync-slice.js';
import { validateClientFrame } from '../../src/protocol/validate.js';
import { DEFAULT_LIMITS } from '../../src/protocol/limits.js';
import type { ClientFrame } from '../../src/protocol/frames.js';
import { newId } from '../../src/protocol/ids.js';
import { loadConfig } from '../../src/config.js';

const frame = (v: Record<string, unknown>): ClientFrame => validateClientFrame(v, DEFAULT_LIMITS);
const users = (n: number) => Array.from({ length: n }, () => newId());
const conv = 'd.aaaa.bbbb';

t.test('frame costs follow the work a frame makes', async (t) => {
  t.equal(frameCost(frame({ t: 'send', cid: 'c1', to: 'bbbb', kind: 'text', body: { text: 'hi' } })), 0, 'a send has its own (fan-out) budget');
  t.equal(frameCost(frame({ t: 'ack', ptr: 3 })), 0);
  t.equal(frameCost(frame({ t: 'ping' })), 0);
  t.equal(frameCost(frame({ t: 'sync', since: 0 })), 10);
  t.equal(frameCost(frame({ t: 'history', rid: 'r', conv })), 2, 'the default page of 50');
  t.equal(frameCost(frame({ t: 'history', rid: 'r', conv, limit: 500 })), 11, 'the largest page');
  t.equal(frameCost(frame({ t: 'users.lookup', rid: 'r', phones: ['+14155550100', '+14155550101', '+14155550102'] })), 3, 'phones, not frames');
  t.equal(frameCost(frame({ t: 'presence.sub', users: users(256) })), 256, 'users, not frames');
  t.equal(frameCost(frame({ t: 'presence.unsub', users: users(7) })), 7);
  t.equal(frameCost(frame({ t: 'receipts', rid: 'r', conv })), 2);
  t.equal(frameCost(frame({ t: 'group.create', rid: 'r', name: 'g', members: users(10) })), 60, 'a change, plus its members');
  t.equal(frameCost(frame({ t: 'group.add', rid: 'r', group: 'gggg', users: users(3) })), 53);
  t.equal(frameCost(frame({ t: 'group.rename', rid: 'r', group: 'gggg', name: 'x' })), 50);
  t.equal(frameCost(frame({ t: 'group.info', rid: 'r', group: 'gggg' })), 1);
  t.equal(frameCost(frame({ t: 'contacts.add', rid: 'r', users: users(250) })), 4);
  for (const [type, cost] of Object.entries(FRAME_COSTS)) {
    if (typeof cost === 'number') t.ok(cost >= 0 && Number.isInteger(cost), `${type}: a whole, non-negative cost`);
  }
});

t.test('an address is limited as a host: IPv4 as is, IPv6 by its /64', async (t) => {
  t.equal(ipKey('127.0.0.2'), '127.0.0.2');
  t.equal(ipKey(' 10.1.2.3 '), '10.1.2.3');
  t.equal(ipKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
  t.equal(ipKey('2001:0DB8:0001:0002:0000:0000:0000:0001'), '2001:db8:1:2::/64', 'full form and case as uWS may print them');
  t.equal(ipKey('2001:db8:1:2::1'), ipKey('2001:db8:1:2:ffff::9'), 'one /64, one budget');
  t.not(ipKey('2001:db8:1:2::1'), ipKey('2001:db8:1:3::1'), 'another /64, another budget');
  t.equal(ipKey('::1'), '0:0:0:0::/64');
  t.equal(ipKey('::ffff:192.0.2.7'), '192.0.2.7', 'IPv4-mapped: the IPv4 address');
  t.equal(ipKey('0000:0000:0000:0000:0000:ffff:c000:0207'), '192.0.2.7', 'IPv4-mapped in full hex form');
  t.equal(ipKey('fe80::1%eth0'), 'fe80:0:0:0::/64', 'a zone id is not part of the host');
  t.equal(ipKey('not an address'), 'not an address', 'anything else is its own key');
});

t.test('a sync reads about a slice at a time', async (t) => {
  t.equal(readCount(512 * 1024, FIRST_AVG_BYTES, 1000), 32, 'first read: 32 at the assumed 16 KiB');
  t.equal(readCount(512 * 1024, 200, 1000), 1000, 'small entries: up to the page');
  t.equal(readCount(512 * 1024, 33_000, 1000), 16, 'large entries: what fits');
  t.equal(readCount(0, 200, 1000), 1, 'at least one');
  t.equal(readCount(512 * 1024, 200, 7), 7, 'never past the page');
  const entries = [{ packed: new Uint8Array(100) }, { packed: new Uint8Array(300) }];
  t.equal(averageBytes(entries), 200 + DELIVERY_OVERHEAD);
  t.equal(averageBytes([]), FIRST_AVG_BYTES);
});

t.test('what a sync would send again is what the device was sent and has not acked, up to a page', async (t) => {
  t.equal(resendCount(0, 0, 1000), 0, 'nothing was sent yet');
  t.equal(resendCount(1000, 1000, 1000), 0, 'a client syncing from the last ptr it received');
  t.equal(resendCount(950, 1000, 1000), 50, 'the 50 lost in flight');
  t.equal(resendCount(0, 5000, 1000), 1000, 'since 0 with nothing acked: a whole page');
  t.equal(resendCount(6000, 5000, 1000), 0, 'past everything sent');
});

t.test('shaping knobs: defaults, from the environment, and refused when not positive', async (t) => {
  const d = loadConfig({}).shaping;
  t.strictSame(d, {
    ipHttp: { perSecond: 100, burst: 500 }, ipUpgrades: { perSecond: 20, burst: 200 }, userUpgrades: { perSecond: 1, burst: 10 },
    frameCost: { perSecond: 100, burst: 2000 }, syncResend: { perSecond: 20, burst: 2000 }, fanout: { perSecond: 5000, burst: 25_000 },
  });
  const c = loadConfig({ PARLEY_FANOUT_PER_S: '0.5', PARLEY_FANOUT_BURST: '40', PARLEY_IP_HTTP_PER_S: '7' }).shaping;
  t.strictSame(c.fanout, { perSecond: 0.5, burst: 40 });
  t.strictSame(c.ipHttp, { perSecond: 7, burst: 500 });
  t.throws(() => loadConfig({ PARLEY_USER_UPGRADE_BURST: '0' }), /PARLEY_USER_UPGRADE_BURST must be positive/);
  t.throws(() => loadConfig({ PARLEY_SYNC_RESEND_PER_S: 'lots' }), /non-negative number/);
});
