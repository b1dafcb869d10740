import t from 'tap';
import { addedSince, deviceInfo, humanWait, signOutTargets, signOutWait, type DeviceFacts } from '../../src/actors/devices.js';
import { RENEW_AFTER_MS, TokenSigner, renewalDue } from '../../src/accounts/tokens.js';
import { signOutTarget, validateClientFrame } from '../../src/protocol/validate.js';
import { DEFAULT_LIMITS } from '../../src/protocol/limits.js';
import { loadConfig } from '../../src/config.js';

/** The device-list policy and token renewal, pure, on an injected clock. */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.UTC(2026, 0, 1);
const dev = (id: string, createdAt: number, lastActive?: number): DeviceFacts => ({ id, name: `n-${id}`, platform: 'p', createdAt, lastActive });
const phone = dev('aaaa', T0);
const laptop = dev('bbbb', T0 + HOUR, T0 + 5 * HOUR);
const tablet = dev('cccc', T0 + 2 * HOUR);
const all = [phone, laptop, tablet];

t.test('signOutTargets: one device, this, others, all', async (t) => {
  t.same(signOutTargets(all, 'bbbb', { device: 'cccc' }), [tablet]);
  t.same(signOutTargets(all, 'bbbb', { scope: 'this' }), [laptop]);
  t.same(signOutTargets(all, 'bbbb', { scope: 'others' }), [phone, tablet]);
  t.same(signOutTargets(all, 'bbbb', { scope: 'all' }), all);
  t.same(signOutTargets([phone], 'aaaa', { scope: 'others' }), [], 'no other device: nothing to do');
  t.throws(() => signOutTargets(all, 'bbbb', { device: 'dddd' }), { code: 'not_found' });
});

t.test('signOutWait: a new device may sign out itself and newer ones; after trustMs, any', async (t) => {
  const trust = DAY;
  const now = T0 + 3 * HOUR;
  t.equal(signOutWait(laptop, [laptop], now, trust), undefined, 'itself');
  t.equal(signOutWait(laptop, [tablet], now, trust), undefined, 'a newer one');
  t.equal(signOutWait(laptop, [phone], now, trust), laptop.createdAt + DAY - now, 'an older one: the wait until it may');
  t.equal(signOutWait(laptop, [laptop, phone, tablet], now, trust), laptop.createdAt + DAY - now, 'any older one among them refuses all');
  t.equal(signOutWait(dev('eeee', laptop.createdAt), [laptop], now, trust), DAY - 2 * HOUR, 'the same instant counts as older');
  t.equal(signOutWait(laptop, [phone], laptop.createdAt + DAY, trust), undefined, 'trusted from the moment it is trustMs old');
  t.equal(signOutWait(laptop, [phone], laptop.createdAt + DAY - 1, trust), 1);
  t.equal(signOutWait(laptop, [phone], now, 0), undefined, 'trustMs 0: no rule');
});

t.test('addedSince: the others signed in after a time', async (t) => {
  t.same(addedSince(all, 'aaaa', T0), [laptop, tablet]);
  t.same(addedSince(all, 'bbbb', T0 + HOUR), [tablet], 'not itself, not older ones');
  t.same(addedSince(all, 'cccc', T0 + 2 * HOUR), [], 'nothing newer');
  t.same(addedSince(all, 'aaaa', T0 + HOUR), [tablet], 'strictly after');
});

t.test('deviceInfo and humanWait', async (t) => {
  t.same(deviceInfo(phone), { id: 'aaaa', name: 'n-aaaa', platform: 'p', createdAt: T0 });
  t.same(deviceInfo(laptop), { id: 'bbbb', name: 'n-bbbb', platform: 'p', createdAt: T0 + HOUR, lastActive: T0 + 5 * HOUR });
  t.same([humanWait(23.2 * HOUR), humanWait(90_000), humanWait(1500)], ['24 h', '2 min', '2 s']);
});

t.test('renewalDue: a day old, or half its lifetime if shorter', async (t) => {
  const c = (age: number, ttl: number) => ({ iat: T0 - age, exp: T0 - age + ttl });
  t.equal(renewalDue(c(0, 30 * DAY), T0), false, 'new');
  t.equal(renewalDue(c(RENEW_AFTER_MS - 1, 30 * DAY), T0), false);
  t.equal(renewalDue(c(RENEW_AFTER_MS, 30 * DAY), T0), true, 'a day old');
  t.equal(renewalDue(c(4 * HOUR, 8 * HOUR), T0), true, 'half of a short lifetime');
  t.equal(renewalDue(c(4 * HOUR - 1, 8 * HOUR), T0), false);

  const signer = new TokenSigner(Buffer.from('unit-test-secret'));
  const token = signer.sign('uuuu', 'dddd', 30 * DAY, T0);
  t.match(signer.verify(token, T0 + DAY), { u: 'uuuu', d: 'dddd', iat: T0, exp: T0 + 30 * DAY });
  t.equal(signer.verify(token, T0 + 30 * DAY), undefined, 'expired at exp');
});

t.test('sign-out frames and bodies are validated', async (t) => {
  t.same(signOutTarget({}), { scope: 'this' }, 'nothing named: this device');
  t.same(signOutTarget({ scope: 'others' }), { scope: 'others' });
  t.same(signOutTarget({ device: 'abcd2345' }), { device: 'abcd2345' });
  for (const bad of [{ scope: 'everyone' }, { device: 'NOPE!' }, { device: 7 }, { scope: 'all', device: 'abcd2345' }, { scope: null }]) {
    t.throws(() => signOutTarget(bad), { code: 'invalid' }, JSON.stringify(bad));
  }
  t.same(validateClientFrame({ t: 'devices.signout', rid: 'r1', scope: 'all' }, DEFAULT_LIMITS), { t: 'devices.signout', rid: 'r1', scope: 'all' });
  t.same(validateClientFrame({ t: 'devices.list', rid: 'r2', extra: 1 }, DEFAULT_LIMITS), { t: 'devices.list', rid: 'r2' });
  t.throws(() => validateClientFrame({ t: 'devices.list' }, DEFAULT_LIMITS), { code: 'invalid' }, 'a request needs its rid');
});

t.test('config: token lifetime and device trust', async (t) => {
  t.match(loadConfig({}), { tokenTtlMs: 30 * DAY, deviceTrustMs: DAY });
  t.match(loadConfig({ PARLEY_TOKEN_TTL_MS: '3600000', PARLEY_DEVICE_TRUST_MS: '0' }), { tokenTtlMs: HOUR, deviceTrustMs: 0 });
  t.throws(() => loadConfig({ PARLEY_TOKEN_TTL_MS: '0' }), /must be positive/, 'a token that is born expired is a mistake');
});
