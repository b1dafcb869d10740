import { timingSafeEqual } from 'node:crypto';
import type { OtpRecord, OtpStep } from '../store/store.js';

/**
 * The rules of one-time codes, as pure steps over a phone's stored record (src/store/store.ts `OtpRecord`),
 * which the store applies atomically (`otpUpdate`). Times are passed in, so the rules test without a clock.
 *
 * - A code takes at most `maxAttempts` wrong guesses; then it is locked until a new code is sent.
 * - A number takes at most `phoneGuesses.count` wrong guesses per window (from the first of them), across codes:
 *   a new code does not give more; the right code ends the window. Of those, one address may spend at most
 *   `phoneIpGuesses`, so one stranger can't use up the number's budget and lock its owner out
 *   (docs/architecture.md, "One-time codes").
 * - Codes go out at most once per cooldown, which doubles with each code of a streak, up to `cooldownMaxMs`;
 *   a streak ends after `cooldownResetMs` without a code.
 */
export interface OtpPolicy {
  ttlMs: number;
  maxAttempts: number;
  cooldownMs: number;
  cooldownMaxMs: number;
  cooldownResetMs: number;
  phoneGuesses: { count: number; perMs: number };
  phoneIpGuesses: number;
}

/** The wait after the `sends`-th code of a streak: 30 s, 60 s, 2 min, … (with the defaults), capped. */
export function cooldownAfter(sends: number, p: Pick<OtpPolicy, 'cooldownMs' | 'cooldownMaxMs'>): number {
  if (sends <= 0 || p.cooldownMs <= 0) return 0;
  return Math.min(p.cooldownMaxMs, p.cooldownMs * 2 ** Math.min(sends - 1, 40));
}

export type IssueOutcome =
  | { ok: true; /** What to put back if the code can't be sent. */ undo: { sentAt: number; sends: number } }
  | { ok: false; why: 'cooldown' | 'phone_guesses'; retryAfterMs: number };

/** A new code (its hash) for the number, unless its cooldown or wrong-code budget says no. */
export function issueStep(cur: OtpRecord | undefined, codeHash: string, now: number, p: OtpPolicy): OtpStep<IssueOutcome> {
  const g = guessWindow(cur, now, p);
  if (g.guesses >= p.phoneGuesses.count) {
    // A code that could not be tried is not worth an SMS.
    return { result: { ok: false, why: 'phone_guesses', retryAfterMs: g.window + p.phoneGuesses.perMs - now } };
  }
  const streak = cur && now - cur.sentAt < p.cooldownResetMs ? cur.sends : 0;
  const wait = cur && streak > 0 ? cur.sentAt + cooldownAfter(streak, p) - now : 0;
  if (wait > 0) return { result: { ok: false, why: 'cooldown', retryAfterMs: wait } };
  const next: OtpRecord = {
    codeHash, codeExpiresAt: now + p.ttlMs, attempts: 0, sentAt: now, sends: streak + 1,
    guesses: g.guesses, guessWindow: g.window, guessers: g.guessers, expiresAt: 0,
  };
  return { next: withExpiry(next, p), result: { ok: true, undo: { sentAt: cur?.sentAt ?? 0, sends: streak } } };
}

/** The code could not be sent: it is withdrawn and the cooldown is as it was (unless a newer code replaced it). */
export function withdrawStep(cur: OtpRecord | undefined, codeHash: string, undo: { sentAt: number; sends: number }, p: OtpPolicy): OtpStep<void> {
  if (!cur || cur.codeHash !== codeHash) return { result: undefined };
  const { codeHash: _gone, ...rest } = cur;
  return { next: withExpiry({ ...rest, attempts: 0, sentAt: undo.sentAt, sends: undo.sends }, p), result: undefined };
}

export type GuessOutcome =
  | { t: 'ok' }
  | { t: 'wrong'; left: number }
  | { t: 'expired' }
  | { t: 'locked' }
  | { t: 'phone_guesses' | 'address_guesses'; retryAfterMs: number };

/**
 * One guess (its hash) at the number's pending code, from address `ip`. Only a guess that passes every limit
 * is compared, and its count is stored with the same write that answers it.
 */
export function guessStep(cur: OtpRecord | undefined, givenHash: string, ip: string, now: number, p: OtpPolicy): OtpStep<GuessOutcome> {
  if (!cur?.codeHash || cur.codeExpiresAt <= now) return { result: { t: 'expired' } };
  const g = guessWindow(cur, now, p);
  const windowLeft = g.window + p.phoneGuesses.perMs - now;
  if (g.guesses >= p.phoneGuesses.count) return { result: { t: 'phone_guesses', retryAfterMs: windowLeft } };
  if ((g.guessers[ip] ?? 0) >= p.phoneIpGuesses) return { result: { t: 'address_guesses', retryAfterMs: windowLeft } };
  if (cur.attempts >= p.maxAttempts) return { result: { t: 'locked' } };
  if (sameHash(givenHash, cur.codeHash)) {
    // The owner is in: the code is spent, and what strangers spent of the budget no longer counts against them.
    const { codeHash: _used, ...rest } = cur;
    return { next: withExpiry({ ...rest, attempts: 0, guesses: 0, guessWindow: 0, guessers: {} }, p), result: { t: 'ok' } };
  }
  const next: OtpRecord = {
    ...cur, attempts: cur.attempts + 1,
    guesses: g.guesses + 1, guessWindow: g.window, guessers: { ...g.guessers, [ip]: (g.guessers[ip] ?? 0) + 1 },
  };
  return { next: withExpiry(next, p), result: { t: 'wrong', left: p.maxAttempts - next.attempts } };
}

/** The number's wrong-code count in the current window; a window starts at the first wrong code after the last. */
function guessWindow(cur: OtpRecord | undefined, now: number, p: OtpPolicy): { guesses: number; window: number; guessers: Record<string, number> } {
  if (!cur || cur.guesses === 0 || now >= cur.guessWindow + p.phoneGuesses.perMs) return { guesses: 0, window: now, guessers: {} };
  return { guesses: cur.guesses, window: cur.guessWindow, guessers: cur.guessers };
}

/** A record lives while any of it matters: the pending code, the cooldown streak, the wrong-code window. */
function withExpiry(r: OtpRecord, p: OtpPolicy): OtpRecord {
  const code = r.codeHash ? r.codeExpiresAt : 0;
  const streak = r.sends > 0 ? r.sentAt + p.cooldownResetMs : 0;
  const window = r.guesses > 0 ? r.guessWindow + p.phoneGuesses.perMs : 0;
  return { ...r, expiresAt: Math.max(code, streak, window) };
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
