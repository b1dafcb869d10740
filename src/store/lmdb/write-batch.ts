import type { RootDatabase } from 'lmdb';

type Op = () => unknown;

/**
 * Group commit for the embedded store: writes are queued and run in one synchronous LMDB transaction, and
 * each caller's promise settles after that commit. A commit costs tens of µs however few writes it holds,
 * so commits are spaced at least `windowMs` apart: when idle a write commits at the end of its event-loop
 * turn; under load a commit gathers everything queued in the window.
 *
 * Why not lmdb-js's own async writes: measured here, each costs 10–25 µs of CPU (a promise, an
 * instruction buffer, a hand-off to the write thread), transaction callbacks bounce between threads, and
 * commits triggered at different moments of the message path rarely share pages; a write inside one
 * synchronous transaction costs 3–8 µs.
 *
 * Ops run in the order they were queued, inside the transaction, so they may read what earlier ops wrote.
 * An op that throws fails alone (its promise rejects), so an op must throw before it writes; a commit
 * that fails rejects the whole batch.
 */
export class WriteBatch {
  private ops: Op[] = [];
  private settle: { resolve(v: unknown): void; reject(e: unknown): void }[] = [];
  private scheduled = false;
  private lastCommit = 0;

  constructor(
    private readonly root: RootDatabase,
    private readonly windowMs: number,
    /** What a caller is rejected with when an op or the commit throws. */
    private readonly mapError: (err: unknown) => unknown = (err) => err,
    /** Resolves once the committed batch is on disk; only when every commit must be synced. */
    private readonly flush?: () => Promise<void>,
  ) {}

  run<T>(op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.ops.push(op);
      this.settle.push({ resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        const wait = this.lastCommit + this.windowMs - performance.now();
        if (wait > 0.5) setTimeout(() => this.commit(), wait);
        else setImmediate(() => this.commit());
      }
    });
  }

  /** Commits what is queued now (at shutdown, or when a caller can't wait for the turn to end). */
  commit(): void {
    this.scheduled = false;
    this.lastCommit = performance.now();
    const ops = this.ops;
    const settle = this.settle;
    if (ops.length === 0) return;
    this.ops = [];
    this.settle = [];
    const results: unknown[] = new Array(ops.length);
    const errors: unknown[] = [];
    try {
      this.root.transactionSync(() => {
        for (let i = 0; i < ops.length; i++) {
          try {
            results[i] = ops[i]!();
          } catch (err) {
            errors[i] = err;
          }
        }
      });
    } catch (err) {
      this.rejectAll(settle, err);
      return;
    }
    const done = () => {
      for (let i = 0; i < settle.length; i++) {
        if (i in errors) settle[i]!.reject(this.mapError(errors[i]));
        else settle[i]!.resolve(results[i]);
      }
    };
    if (this.flush) this.flush().then(done, (err) => this.rejectAll(settle, err));
    else done();
  }

  private rejectAll(settle: { reject(e: unknown): void }[], err: unknown): void {
    const mapped = this.mapError(err);
    for (const s of settle) s.reject(mapped);
  }
}
