import { createHmac, randomInt } from 'node:crypto';
import { ParleyError, rateLimited } from '../protocol/errors.js';
import type { Store } from '../store/store.js';
import type { Allowance, OtpConfig } from '../config.js';
import { KeyedLimiter, type Rate } from '../transport/rate-limit.js';
import type { SmsGateway } from './sms-gateway.js';
import { guessStep, issueStep, withdrawStep, type GuessOutcome } from './otp-policy.js';
import { ipKey } from '../transport/ip-key.js';
import { log } from '../log.js';

/** Where a request came from: the peer's address and the app key it presented (already checked). */
export interface RequestSource { ip: string; apiKey?: string }

const CODE_RE = /^\d{6}$/;

/**
 * One-time codes by SMS, with their limits. What must hold across nodes and restarts (a phone's pending
 * code, cooldown streak and wrong-code budget) is one store record changed atomically by the pure steps of
 * otp-policy.ts; what only bounds traffic through this node (codes per address, app key and node; wrong
 * codes per address) is in memory. A per-address or per-key allowance is reserved before the work and given
 * back when nothing was spent: a code that did not go out, a guess that was not compared or was right.
 */
export class OneTimeCodes {
  private readonly ipCodes: KeyedLimiter;
  private readonly keyCodes: KeyedLimiter;
  private readonly nodeCodes: KeyedLimiter;
  private readonly ipGuesses: KeyedLimiter;

  constructor(
    private readonly store: Store,
    private readonly sms: SmsGateway,
    private readonly secret: Buffer,
    private readonly cfg: OtpConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.ipCodes = new KeyedLimiter(rateOf(cfg.ipCodes), undefined, now);
    this.keyCodes = new KeyedLimiter(rateOf(cfg.keyCodes), 1000, now);
    this.nodeCodes = new KeyedLimiter(rateOf(cfg.nodeCodes), 1, now);
    this.ipGuesses = new KeyedLimiter(rateOf(cfg.ipGuesses), undefined, now);
  }

  /** Sends a new code to `phone` (normalized), unless a limit says no (`rate_limited` with the wait). */
  async send(phone: string, from: RequestSource): Promise<{ ttlMs: number }> {
    const at = this.now();
    const ip = ipKey(from.ip);
    const held = this.reserve(at, [
      [this.ipCodes, ip, 'too many codes were requested from your address'],
      [this.keyCodes, from.apiKey ?? '', 'too many codes were requested with this app key'],
      [this.nodeCodes, 'node', 'too many codes are being requested right now'],
    ]);
    let sent = false;
    try {
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      const hash = this.hash(phone, code);
      const out = await this.store.otpUpdate(phone, (cur) => issueStep(cur, hash, at, this.cfg));
      if (!out.ok) {
        throw rateLimited(out.why === 'cooldown' ? 'a code was sent to this number a moment ago' : 'too many wrong codes were tried for this number', out.retryAfterMs);
      }
      try {
        await this.sms.send(phone, `Your Parley code is ${code}`);
      } catch (err) {
        log('warn', 'sms not sent', { error: String(err) });
        // Withdrawn, so the number's cooldown is as if it had not been asked: the client may retry at once.
        await this.store.otpUpdate(phone, (cur) => withdrawStep(cur, hash, out.undo, this.cfg))
          .catch((e: unknown) => log('warn', 'unsent code not withdrawn', { error: String(e) }));
        throw new ParleyError('over_capacity', 'the code could not be sent; try again');
      }
      sent = true;
      return { ttlMs: this.cfg.ttlMs };
    } finally {
      if (!sent) held.release(this.now());
    }
  }

  /** Resolves if `codeRaw` is the pending code of `phone` (which it spends); otherwise throws why not. */
  async check(phone: string, codeRaw: unknown, from: RequestSource): Promise<void> {
    const code = typeof codeRaw === 'string' ? codeRaw.trim() : '';
    // Not a guess at the code space, so it costs no attempt.
    if (!CODE_RE.test(code)) throw new ParleyError('invalid', 'code must be the 6 digits sent by SMS');
    const at = this.now();
    const ip = ipKey(from.ip);
    const wait = this.ipGuesses.take(ip, at);
    if (wait > 0) throw rateLimited('too many wrong codes were tried from your address', wait);
    let outcome: GuessOutcome;
    try {
      const hash = this.hash(phone, code);
      outcome = await this.store.otpUpdate(phone, (cur) => guessStep(cur, hash, ip, at, this.cfg));
    } catch (err) {
      this.ipGuesses.refund(ip, this.now());
      throw err;
    }
    if (outcome.t !== 'wrong') this.ipGuesses.refund(ip, this.now());
    switch (outcome.t) {
      case 'ok': return;
      case 'wrong': throw new ParleyError('otp_invalid', 'wrong code');
      case 'expired': throw new ParleyError('otp_expired', 'no valid code for this number; request a new one');
      case 'locked': throw new ParleyError('otp_locked', 'too many wrong codes; request a new one');
      case 'phone_guesses': throw rateLimited('too many wrong codes were tried for this number', outcome.retryAfterMs);
      case 'address_guesses': throw rateLimited('too many wrong codes for this number were tried from your address', outcome.retryAfterMs);
    }
  }

  /** Takes one from each limiter in turn; on the first refusal gives back what was taken and throws. */
  private reserve(at: number, limits: [KeyedLimiter, string, string][]): { release(now: number): void } {
    const taken: [KeyedLimiter, string][] = [];
    const release = (now: number) => { for (const [l, k] of taken) l.refund(k, now); };
    for (const [limiter, key, why] of limits) {
      const wait = limiter.take(key, at);
      if (wait > 0) {
        release(at);
        throw rateLimited(why, wait);
      }
      taken.push([limiter, key]);
    }
    return { release };
  }

  private hash(phone: string, code: string): string {
    return createHmac('sha256', this.secret).update(`otp:${phone}:${code}`).digest('base64url');
  }
}

/** An allowance as a token bucket: bursts of `count`, refilled at `count` per `perMs`. */
export const rateOf = (a: Allowance): Rate => ({ perSecond: (a.count * 1000) / a.perMs, burst: a.count });
