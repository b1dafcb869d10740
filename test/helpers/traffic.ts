import { ServerError } from '../../src/client/parley-client.js';
import { sleep, waitFor, type TestDevice } from './clients.js';
import type { Fixture, HasTeardown } from './fixture.js';

import type t from 'tap';

/** The root `t` of tap or any subtest. */
type Asserts = typeof t | tap.Test;

/**
 * A read by a client that may be between sockets when it is made (its user's shard moved, so its node closed
 * it with 1012 and it is reconnecting): a retryable refusal is tried again, for up to 20 s.
 */
async function retried<T>(read: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await read();
    } catch (err) {
      if (!(err instanceof ServerError) || !err.retryable || Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

/** One sender and its recipient, with what the sender was told. */
export interface Pair {
  from: TestDevice;
  to: TestDevice;
  conv: string;
  /** cid → the seq it was acked with */
  acked: Map<string, number>;
  /** error code → how many sends got it */
  errors: Map<string, number>;
  /** Sends that got no answer at all within the watchdog: silent drops. */
  unanswered: string[];
  /** Errors a client must never see here: not retryable, or not about the store. */
  unexpected: string[];
  /** When each ack arrived. */
  ackTimes: number[];
  /** Every attempt: cid, when it was sent, when and how it was answered. */
  attempts: { cid: string; at: number; done?: number; outcome?: string }[];
  /** The recipient stays offline until verify(): its messages wait in its inbox meanwhile. */
  offline: boolean;
}

export interface TrafficOptions {
  /** Pause after an ack before the next message. */
  pauseMs?: number;
  /** Pause before sending again after a retryable error. */
  retryMs?: number;
  /** No answer (ack or error) within this is a silent drop. */
  watchdogMs?: number;
  /** Error codes that are fine to get (and retry). Default: the store's. */
  retryable?: string[];
}

/**
 * Senders that each keep sending to their own online recipient, one message at a time. A send that fails
 * with a retryable error is sent again, same client id, until it is acked: what a well-behaved app does.
 * `verify` then holds the node to its promise: every acked message in history once, under its acked seq,
 * and delivered to the recipient once, in order; every error retryable; every send answered.
 */
export class Traffic {
  private running = false;
  private halted = false;
  private loops: Promise<void>[] = [];
  private readonly o: Required<TrafficOptions>;

  constructor(readonly pairs: Pair[], o: TrafficOptions = {}) {
    this.o = { pauseMs: 2, retryMs: 250, watchdogMs: 30_000, retryable: ['store_unavailable', 'timeout'], ...o };
  }

  /** `to` must have been made with `connect: false` when `offline`. */
  static pair(from: TestDevice, to: TestDevice, offline = false): Pair {
    return { from, to, conv: '', acked: new Map(), errors: new Map(), unanswered: [], unexpected: [], ackTimes: [], attempts: [], offline };
  }

  /** The mix the store-failure tests run: three recipients online, one offline until verify() (its messages wait in its inbox). */
  static async mixed(f: Fixture, t: HasTeardown): Promise<Traffic> {
    return new Traffic([
      ...(await Promise.all([0, 1, 2].map(async () => Traffic.pair(await f.device(t), await f.device(t))))),
      Traffic.pair(await f.device(t), await f.device(t, { connect: false }), true),
    ]);
  }

  start(): void {
    this.running = true;
    this.loops = this.pairs.map(async (p, i) => {
      for (let n = 1; this.running; n++) {
        await this.sendUntilAcked(p, `p${i}-${n}`, `pair ${i} message ${n}`);
        await sleep(this.o.pauseMs);
      }
    });
  }

  /** Lets each sender finish the message it is on (until acked), then stops. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Stops at once, acked or not (a test's teardown, so a failed test does not leave senders running). */
  halt(): void {
    this.running = false;
    this.halted = true;
  }

  /** Waits until `cond` holds; a timeout names where each sender is. */
  async until(cond: () => boolean, ms: number, what: string): Promise<void> {
    await waitFor(() => cond() || undefined, ms, what).catch((err: Error) => {
      throw new Error(`${err.message}; ${this.describe()}`);
    });
  }

  describe(): string {
    return this.pairs.map((p, i) => `pair ${i}: ${p.acked.size} acked, errors ${JSON.stringify(Object.fromEntries(p.errors))}` +
      `${p.unexpected.length ? `, e.g. ${p.unexpected[p.unexpected.length - 1]}` : ''}`).join('; ');
  }

  /** True once every sender has had `min` acks at or after `since`. */
  ackedSince(since: number, min: number): boolean {
    return this.pairs.every((p) => p.ackTimes.filter((x) => x >= since).length >= min);
  }

  /**
   * Acks of messages first sent at or after `from`, that arrived by `to`. (A message sent earlier may be
   * acked later without the store: its tick waits for the recipient's confirmation, which can come from the
   * device having it.)
   */
  newAcksBetween(from: number, to: number): string[] {
    return this.pairs.flatMap((p) => {
      const firstTry = new Map<string, number>();
      for (const a of p.attempts) if (!firstTry.has(a.cid)) firstTry.set(a.cid, a.at);
      return p.attempts.filter((a) => a.outcome?.startsWith('sent') && firstTry.get(a.cid)! >= from && a.done! <= to)
        .map((a) => `${a.cid} first sent at +${firstTry.get(a.cid)! - from} ms, acked at +${a.done! - from} ms`);
    });
  }

  /** Milliseconds from `since` until every sender had an ack again. */
  recoveredAfter(since: number): number {
    return Math.max(...this.pairs.map((p) => (p.ackTimes.find((x) => x >= since) ?? Number.POSITIVE_INFINITY) - since));
  }

  /** Per pair (or per pair with an online recipient), how many sends got `code`. */
  errorCount(code: string, onlineOnly = false): number[] {
    return this.pairs.filter((p) => !onlineOnly || !p.offline).map((p) => p.errors.get(code) ?? 0);
  }

  /**
   * Per pair, the longest a send sent between `from` and `to` waited for its answer (ack or error); one
   * still unanswered counts until now.
   */
  longestWait(from: number, to: number): number[] {
    const now = Date.now();
    return this.pairs.map((p) => Math.max(0, ...p.attempts.filter((a) => a.at >= from && a.at <= to).map((a) => (a.done ?? now) - a.at)));
  }

  private async sendUntilAcked(p: Pair, cid: string, text: string): Promise<void> {
    while (!this.halted) {
      let timer: NodeJS.Timeout | undefined;
      const watchdog = new Promise<'silent'>((res) => { timer = setTimeout(() => res('silent'), this.o.watchdogMs); });
      const attempt: Pair['attempts'][number] = { cid, at: Date.now() };
      p.attempts.push(attempt);
      if (p.attempts.length > 20_000) p.attempts.shift();
      try {
        const r = await Promise.race([p.from.client.send({ to: p.to.user }, 'text', { text }, { cid }), watchdog]);
        attempt.done = Date.now();
        if (r === 'silent') {
          p.unanswered.push(cid);
          attempt.outcome = 'silent';
        } else {
          attempt.outcome = `sent ${r.seq}${r.dup ? ' dup' : ''}`;
          p.acked.set(cid, r.seq);
          p.conv = r.conv;
          p.ackTimes.push(Date.now());
          return;
        }
      } catch (err) {
        const code = err instanceof ServerError ? err.code : String(err);
        attempt.done = Date.now();
        attempt.outcome = code;
        p.errors.set(code, (p.errors.get(code) ?? 0) + 1);
        if (!(err instanceof ServerError && err.retryable && this.o.retryable.includes(code))) {
          p.unexpected.push(`${cid}: ${code}: ${(err as Error).message}`);
        }
      } finally {
        clearTimeout(timer);
      }
      await sleep(this.o.retryMs);
    }
  }

  /** Everything that must hold once the traffic stopped and the store is back. */
  async verify(t: Asserts): Promise<void> {
    for (const [i, p] of this.pairs.entries()) {
      t.comment(`pair ${i}: ${p.acked.size} acked; errors ${JSON.stringify(Object.fromEntries(p.errors))}`);
      t.strictSame(p.unanswered, [], `pair ${i}: every send was answered within ${this.o.watchdogMs / 1000} s`);
      t.strictSame(p.unexpected, [], `pair ${i}: every error was a retryable store error`);

      if (p.offline) await p.to.client.connect();
      // A message whose inbox write the outage failed is written again by the fan-out's retry, after later ones:
      // the SDK emits it as `late` (docs/protocol.md, "Order"). It counts as delivered; the order is of the rest.
      const inOrder = () => p.to.messages.filter((m) => m.conv === p.conv);
      const received = () => [...inOrder(), ...p.to.late.filter((m) => m.conv === p.conv)];
      await waitFor(() => received().length >= p.acked.size || undefined, 30_000, `pair ${i}: deliveries`).catch(() => undefined);
      await p.from.client.ping();
      await sleep(300); // a duplicate, if any, would be right behind
      const counts = new Map<string, number>();
      for (const m of received()) counts.set(m.cid, (counts.get(m.cid) ?? 0) + 1);
      const missing = [...p.acked.keys()].filter((cid) => !counts.has(cid));
      if (missing.length) {
        const tried = (cid: string) => p.attempts.filter((a) => a.cid === cid).map((a) => `${new Date(a.at).toISOString().slice(11, 23)} ${a.outcome ?? '?'}`);
        t.comment(`pair ${i}: undelivered (seq: attempts): ${missing.slice(0, 20).map((cid) => `${p.acked.get(cid)}: ${tried(cid).join(', ')}`).join('; ')}`);
        // Where the recipient's stream skipped them: its sockets, deliveries (ptr, conv#seq), syncs and acks.
        const seqs = new Set(missing.map((cid) => p.acked.get(cid)));
        const near = p.to.wire.filter((l) => !l.includes('#') || l.includes(p.conv));
        const at = near.findIndex((l) => [...seqs].some((s) => s !== undefined && Number(l.split('#')[1]) > s));
        t.comment(`pair ${i}: the recipient's wire around it:\n${near.slice(Math.max(0, at - 60), at + 40).join('\n')}`);
      }
      t.strictSame(missing, [], `pair ${i}: every acked message was delivered${p.offline ? ' (from the inbox, after the fault)' : ''}`);
      t.strictSame([...counts].filter(([, n]) => n > 1).map(([cid]) => cid), [], `pair ${i}: none was delivered twice`);
      t.strictSame([...counts.keys()].filter((cid) => !p.acked.has(cid)), [], `pair ${i}: nothing was delivered that was not acked`);
      const seqs = inOrder().map((m) => m.seq);
      t.strictSame(seqs, [...seqs].sort((a, b) => a - b), `pair ${i}: delivered in seq order (but what came late)`);
      t.strictSame(received().filter((m) => p.acked.get(m.cid) !== m.seq).map((m) => m.cid), [], `pair ${i}: delivered under the acked seq`);

      const history = new Map<string, number[]>();
      for (let after = 0; ;) {
        const page = await retried(() => p.from.client.history(p.conv, { after, limit: 500 }));
        if (!page.length) break;
        for (const m of page) history.set(m.cid, [...(history.get(m.cid) ?? []), m.seq]);
        after = page[page.length - 1]!.seq;
      }
      t.strictSame([...p.acked].filter(([cid, seq]) => history.get(cid)?.[0] !== seq).map(([cid]) => cid), [],
        `pair ${i}: every acked message is in history under its acked seq`);
      const twice = [...history].filter(([, s]) => s.length > 1);
      for (const [cid, s] of twice) t.comment(`${cid} at seqs ${s.join(', ')}; attempts: ${JSON.stringify(p.attempts.filter((a) => a.cid === cid))}`);
      t.strictSame(twice.map(([cid]) => cid), [], `pair ${i}: no message is in history twice (failed attempts were rolled back)`);
      t.equal(history.size, p.acked.size, `pair ${i}: history holds exactly the acked messages`);
    }
  }
}

/** How often each distinct log message appears in a node's JSON log lines, e.g. for a t.comment. */
export function logSummary(lines: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) {
    let key = l;
    try {
      const j = JSON.parse(l) as { level?: string; msg?: string };
      key = `${j.level}: ${j.msg}`;
    } catch { /* not JSON */ }
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
