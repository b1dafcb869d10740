import t from 'tap';
import { cooldownAfter, guessStep, issueStep, withdrawStep, type GuessOutcome, type IssueOutcome, type OtpPolicy } from '../../src/accounts/otp-policy.js';
import { ipKey } from '../../src/transport/ip-key.js';
import { allowance, loadConfig } from '../../src/config.js';
import type { OtpRecord, OtpStep } from '../../src/store/store.js';

/** The one-time-code rules, step by step with an explicit clock (src/accounts/otp-policy.ts). */

const S = 1000;
const MIN = 60 * S;
const H = 60 * MIN;
const D = 24 * H;
const policy: OtpPolicy = {
  ttlMs: 5 * MIN, maxAttempts: 5, cooldownMs: 30 * S, cooldownMaxMs: H, cooldownResetMs: 6 * H,
  phoneGuesses: { count: 30, perMs: D }, phoneIpGuesses: 10,
};
const RIGHT = 'hash-of-the-right-code';
const WRONG = 'hash-of-a-wrong-code!!';

/** A store of one record, applying steps as otpUpdate does (the record expires at expiresAt). */
class OneRecord {
  rec: OtpRecord | undefined;
  apply<T>(now: number, step: (cur: OtpRecord | undefined) => OtpStep<T>): T {
    const live = this.rec && this.rec.expiresAt > now ? this.rec : undefined;
    const { next, result } = step(live);
    if (next) this.rec = next;
    return result;
  }
  issue(now: number, hash = RIGHT, p = policy): IssueOutcome { return this.apply(now, (cur) => issueStep(cur, hash, now, p)); }
  guess(now: number, hash: string, ip = '198.51.100.7', p = policy): GuessOutcome { return this.apply(now, (cur) => guessStep(cur, hash, ip, now, p)); }
}

t.test('the cooldown doubles with each code of a streak: 30 s, 60 s, 2 min, … capped at the max', async (t) => {
  t.strictSame([0, 1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => cooldownAfter(n, policy)), [0, 30 * S, 60 * S, 2 * MIN, 4 * MIN, 8 * MIN, 16 * MIN, 32 * MIN, H, H]);
  t.equal(cooldownAfter(3, { cooldownMs: 0, cooldownMaxMs: H }), 0, 'no cooldown configured, none at all');
});

t.test('codes for one number: refused inside the growing cooldown with the exact wait; a quiet spell ends the streak', async (t) => {
  const r = new OneRecord();
  let now = 1_000_000;
  t.match(r.issue(now), { ok: true });
  t.strictSame(r.issue(now + 10 * S), { ok: false, why: 'cooldown', retryAfterMs: 20 * S }, 'the first wait is 30 s');
  const waits: number[] = [];
  for (let i = 0; i < 9; i++) {
    const refused = r.issue(now + 1) as { retryAfterMs: number };
    waits.push(refused.retryAfterMs + 1);
    now += refused.retryAfterMs + 1;
    t.match(r.issue(now), { ok: true }, `code ${i + 2} goes out once its wait is over`);
  }
  t.strictSame(waits, [30 * S, 60 * S, 2 * MIN, 4 * MIN, 8 * MIN, 16 * MIN, 32 * MIN, H, H]);
  t.equal(r.rec!.sends, 10);
  t.ok(r.rec!.expiresAt >= now + policy.cooldownResetMs, 'the record outlives its code: the streak must be remembered');
  now += policy.cooldownResetMs;
  t.match(r.issue(now), { ok: true }, 'after a quiet spell as long as the reset: no wait');
  t.equal(r.rec!.sends, 1, 'a new streak');
  t.strictSame(r.issue(now + 1), { ok: false, why: 'cooldown', retryAfterMs: 30 * S - 1 }, 'which starts at 30 s again');
});

t.test('a code that could not be sent is withdrawn and the cooldown is as before', async (t) => {
  const r = new OneRecord();
  t.match(r.issue(0, 'first'), { ok: true });
  const out = r.issue(30 * S, 'second');
  t.match(out, { ok: true });
  r.apply(30 * S, (cur) => withdrawStep(cur, 'second', (out as { undo: { sentAt: number; sends: number } }).undo, policy));
  t.equal(r.rec!.codeHash, undefined, 'no code pending');
  t.match(r.rec, { sentAt: 0, sends: 1 }, 'the streak as it was');
  t.strictSame(r.guess(30 * S, 'second'), { t: 'expired' }, 'the withdrawn code does not work');
  t.match(r.issue(30 * S, 'third'), { ok: true }, 'and the next request is not held back by it');
  r.apply(31 * S, (cur) => withdrawStep(cur, 'second', { sentAt: 0, sends: 0 }, policy));
  t.equal(r.rec!.codeHash, 'third', 'withdrawing a code that was replaced leaves the new one');
});

t.test('guesses at one code: each wrong one counted, locked after the maximum, the right one spends it', async (t) => {
  const r = new OneRecord();
  r.issue(0);
  for (let i = 1; i <= 5; i++) t.strictSame(r.guess(i, WRONG, `10.0.0.${i}`), { t: 'wrong', left: 5 - i }, `wrong guess ${i}`);
  t.strictSame(r.guess(10, RIGHT), { t: 'locked' }, 'even the right code, once locked');
  t.equal(r.rec!.attempts, 5, 'a refused guess is not counted');
  r.issue(30 * S);
  t.equal(r.rec!.attempts, 0, 'a new code takes guesses again');
  t.strictSame(r.guess(31 * S, RIGHT), { t: 'ok' });
  t.strictSame(r.guess(32 * S, RIGHT), { t: 'expired' }, 'a code works once');
  r.issue(2 * MIN);
  t.strictSame(r.guess(2 * MIN + policy.ttlMs, RIGHT), { t: 'expired' }, 'and only for its lifetime');
});

t.test('a new code does not reset the number\'s budget; its window does; the right code does', async (t) => {
  const p = { ...policy, cooldownMs: 0, phoneGuesses: { count: 12, perMs: D } };
  const r = new OneRecord();
  let n = 0;
  const stranger = () => `203.0.113.${n++}`; // a new address every time: only the number's budget counts
  for (let code = 0; code < 2; code++) {
    r.issue(code * MIN, RIGHT, p);
    for (let i = 0; i < 5; i++) t.equal(r.guess(code * MIN + i, WRONG, stranger(), p).t, 'wrong');
  }
  r.issue(2 * MIN, RIGHT, p);
  t.equal(r.guess(2 * MIN, WRONG, stranger(), p).t, 'wrong');
  t.equal(r.guess(2 * MIN, WRONG, stranger(), p).t, 'wrong', 'twelve wrong guesses over three codes');
  t.strictSame(r.guess(2 * MIN, RIGHT, stranger(), p), { t: 'phone_guesses', retryAfterMs: D - 2 * MIN }, 'then none is compared until the window ends');
  t.strictSame(r.issue(3 * MIN, RIGHT, p), { ok: false, why: 'phone_guesses', retryAfterMs: D - 3 * MIN }, 'and no code is sent that could not be tried');
  t.match(r.issue(D, RIGHT, p), { ok: true }, 'a day after the first wrong guess');
  t.equal(r.guess(D + 1, WRONG, stranger(), p).t, 'wrong', 'the budget is back');
  t.equal(r.rec!.guesses, 1, 'a new window began');
  t.strictSame(r.guess(D + 2, RIGHT, stranger(), p), { t: 'ok' });
  t.match(r.rec, { guesses: 0, guessers: {} }, 'the owner got in: what strangers spent is forgotten');
});

t.test('one address spends at most its share of a number\'s budget, so the owner elsewhere still gets in', async (t) => {
  const p = { ...policy, cooldownMs: 0 };
  const r = new OneRecord();
  r.issue(0, RIGHT, p);
  const outcomes = Array.from({ length: 40 }, (_, i) => r.guess(i, WRONG, '198.51.100.66', p).t);
  t.equal(outcomes.filter((o) => o === 'wrong').length, 5, 'the stranger locks the first code');
  r.issue(MIN, RIGHT, p);
  const more = Array.from({ length: 40 }, (_, i) => r.guess(MIN + i, WRONG, '198.51.100.66', p));
  t.equal(more.filter((o) => o.t === 'wrong').length, 5, 'and five more on the next');
  t.match(more[5], { t: 'address_guesses', retryAfterMs: D - MIN - 5 }, 'then the address is refused for the window');
  t.equal(r.rec!.guesses, 10, 'a third of the number\'s budget');
  r.issue(2 * MIN, RIGHT, p);
  t.match(r.guess(2 * MIN, WRONG, '198.51.100.66', p), { t: 'address_guesses' }, 'it can\'t touch the owner\'s new code');
  t.strictSame(r.guess(2 * MIN + 1, RIGHT, '192.0.2.1', p), { t: 'ok' }, 'the owner, from another address, signs in');
});

t.test('addresses are keyed by IPv4 address, by IPv6 /64, and IPv4-mapped IPv6 as IPv4', async (t) => {
  t.equal(ipKey('127.0.0.2'), '127.0.0.2');
  t.equal(ipKey('0000:0000:0000:0000:0000:ffff:7f00:0002'), '127.0.0.2', 'uWS on a dual-stack listener');
  t.equal(ipKey('::ffff:192.0.2.1'), '192.0.2.1');
  t.equal(ipKey('2001:db8:aa:bb:1:2:3:4'), '2001:db8:aa:bb::/64');
  t.equal(ipKey('2001:DB8:AA:BB::9'), '2001:db8:aa:bb::/64', 'any host of the /64, any spelling');
  t.equal(ipKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.equal(ipKey('0000:0000:0000:0000:0000:0000:0000:0001'), '0:0:0:0::/64');
  t.equal(ipKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  t.equal(ipKey('not an address'), 'not an address', 'anything else is kept as given');
});

t.test('config: allowances as N/unit, production defaults, bad values refused', async (t) => {
  t.strictSame(allowance({ X: '20/h' }, 'X', '1/s'), { count: 20, perMs: H });
  t.strictSame(allowance({ X: ' 3 / 10min ' }, 'X', '1/s'), { count: 3, perMs: 10 * MIN });
  t.strictSame(allowance({}, 'X', '50/s'), { count: 50, perMs: S });
  for (const bad of ['20', '0/h', '20/week', '-1/s', '1.5/s', '20/0h']) t.throws(() => allowance({ X: bad }, 'X', '1/s'), /X must look like 20\/h/, bad);
  const c = loadConfig({}).otp;
  t.strictSame(c, {
    ttlMs: 5 * MIN, maxAttempts: 5, cooldownMs: 30 * S, cooldownMaxMs: H, cooldownResetMs: 6 * H,
    phoneGuesses: { count: 30, perMs: D }, phoneIpGuesses: 10, ipGuesses: { count: 30, perMs: H },
    ipCodes: { count: 20, perMs: H }, keyCodes: { count: 20, perMs: S }, nodeCodes: { count: 50, perMs: S },
  });
  t.ok(c.phoneIpGuesses < c.phoneGuesses.count, 'one address can\'t use up a number\'s budget');
  t.throws(() => loadConfig({ PARLEY_OTP_COOLDOWN_RESET_MS: '1000' }), /COOLDOWN_RESET_MS must be at least/);
  t.throws(() => loadConfig({ PARLEY_OTP_PHONE_IP_GUESSES: '0' }), /must be positive/);
});
