import { ParleyError, rateLimited } from '../protocol/errors.js';
import type { UserId } from '../protocol/ids.js';

/**
 * What keeps uploads from exhausting a node: each upload in flight holds a socket and a temp file (two file
 * descriptors) and up to its length of temp disk, so the node admits at most `inFlight` of them, at most
 * `diskBytes` of declared length between them (a chunked upload counts as the largest allowed) and at most
 * `perUser` per user. Admission happens after the token is checked and before any body byte is read.
 * An upload also has to keep up a minimum rate once a grace period is over, so a slow one can't hold its
 * slot (and a trickle can't hold a socket) for long: see `tooSlow`.
 */
export interface UploadLimits {
  perUser: number;
  inFlight: number;
  diskBytes: number;
  /** How long an upload may take before the minimum rate applies (connection set-up, a slow first round trip). */
  graceMs: number;
  /** The rate an upload must average over its life once the grace period is over. */
  minBytesPerSec: number;
}

/**
 * Pure: an upload that started at `startedAt` and has `received` bytes by `now` is too slow once it is behind
 * the minimum rate counted from the end of the grace period. Since received ≤ length, it also means an
 * upload of known length must be done within graceMs + length / minBytesPerSec.
 */
export function tooSlow(startedAt: number, received: number, now: number, l: Pick<UploadLimits, 'graceMs' | 'minBytesPerSec'>): boolean {
  return received < ((now - startedAt - l.graceMs) * l.minBytesPerSec) / 1000;
}

export interface Admitted {
  readonly user: UserId;
  /** Bytes of body received so far (the rate check reads it). */
  received: number;
  /** Gives the slot back; a second call does nothing. */
  release(): void;
}

interface Live extends Admitted { startedAt: number; bytes: number; onTooSlow: () => void }

export class UploadGate {
  private count = 0;
  private bytes = 0;
  private readonly perUser = new Map<UserId, number>();
  private readonly live = new Set<Live>();
  private timer?: NodeJS.Timeout;

  constructor(readonly limits: UploadLimits, private readonly now: () => number = Date.now) {}

  get inFlight(): number { return this.count; }
  get bytesReserved(): number { return this.bytes; }

  /**
   * A slot for an upload of `bytes` (declared or the most allowed), or a retryable refusal. `onTooSlow` is
   * called (once, and the slot released) if the upload falls behind the minimum rate; `startedAt` is when
   * its request arrived.
   */
  admit(user: UserId, bytes: number, startedAt: number, onTooSlow: () => void): Admitted {
    const mine = this.perUser.get(user) ?? 0;
    if (mine >= this.limits.perUser) {
      throw rateLimited(`at most ${this.limits.perUser} uploads at a time per user`, 1000);
    }
    // One upload is always let in, whatever its size, so a disk budget below the media limit can't stop them all.
    if (this.count >= this.limits.inFlight || (this.count > 0 && this.bytes + bytes > this.limits.diskBytes)) {
      throw new ParleyError('over_capacity', 'this node has as many uploads in flight as it takes; try again shortly', 1000);
    }
    this.count++;
    this.bytes += bytes;
    this.perUser.set(user, mine + 1);
    let released = false;
    const live: Live = {
      user, received: 0, startedAt, bytes, onTooSlow,
      release: () => {
        if (released) return;
        released = true;
        this.live.delete(live);
        this.count--;
        this.bytes -= bytes;
        const n = (this.perUser.get(user) ?? 1) - 1;
        if (n > 0) this.perUser.set(user, n);
        else this.perUser.delete(user);
        if (this.live.size === 0 && this.timer) {
          clearInterval(this.timer);
          this.timer = undefined;
        }
      },
    };
    this.live.add(live);
    if (!this.timer) {
      // One timer for every upload in flight, only while there are some; a quarter of the grace period
      // (at most a second) keeps a cut within that of its due time.
      this.timer = setInterval(() => this.sweep(), Math.max(20, Math.min(1000, this.limits.graceMs / 4)));
      this.timer.unref();
    }
    return live;
  }

  /** Cuts every upload that is behind the minimum rate. The timer calls it; tests call it with their clock. */
  sweep(): void {
    const now = this.now();
    for (const u of [...this.live]) {
      if (tooSlow(u.startedAt, u.received, now, this.limits)) {
        u.release();
        u.onTooSlow();
      }
    }
  }
}
