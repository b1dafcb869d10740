import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { sampleProc } from '../lib/proc.js';
import { mergeHistograms, summarize, type LatencySummary } from '../lib/hist.js';
import type { ConnectResult, RunStats, WorkerCmd, WorkerEvent } from './messages.js';

interface Worker {
  proc: ChildProcess;
  pending: Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>;
  progress: { sent: number; delivered: number; connected: number; errors: number };
}

/** The coordinator's side of the load workers: forks them, sends each its commands, merges what they return. */
export class LoadPool {
  private seq = 0;
  private constructor(private readonly workers: Worker[]) {}

  static async start(count: number): Promise<LoadPool> {
    const script = join(__dirname, 'worker.js');
    const workers: Worker[] = [];
    for (let i = 0; i < count; i++) {
      const execArgv = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const proc = fork(script, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
      const w: Worker = { proc, pending: new Map(), progress: { sent: 0, delivered: 0, connected: 0, errors: 0 } };
      proc.on('message', (e: WorkerEvent) => {
        if (e.ev === 'progress') { w.progress = e; return; }
        const p = w.pending.get(e.id);
        if (!p) return;
        w.pending.delete(e.id);
        if (e.ok) p.resolve(e.result); else p.reject(new Error(`load worker ${i}: ${e.error}`));
      });
      proc.on('exit', (code) => {
        for (const p of w.pending.values()) p.reject(new Error(`load worker ${i} exited with ${code}`));
        w.pending.clear();
      });
      workers.push(w);
    }
    return new LoadPool(workers);
  }

  get size(): number { return this.workers.length; }
  get pids(): number[] { return this.workers.map((w) => w.proc.pid!); }

  call<T>(i: number, cmd: WorkerCmd): Promise<T> {
    const w = this.workers[i]!;
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      if (!w.proc.connected) { reject(new Error(`load worker ${i} is gone`)); return; }
      w.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      w.proc.send({ ...cmd, id });
    });
  }

  all<T>(cmd: WorkerCmd | ((i: number) => WorkerCmd)): Promise<T[]> {
    return Promise.all(this.workers.map((_, i) => this.call<T>(i, typeof cmd === 'function' ? cmd(i) : cmd)));
  }

  progress(): { sent: number; delivered: number; connected: number; errors: number } {
    const t = { sent: 0, delivered: 0, connected: 0, errors: 0 };
    for (const w of this.workers) { t.sent += w.progress.sent; t.delivered += w.progress.delivered; t.connected += w.progress.connected; t.errors += w.progress.errors; }
    return t;
  }

  /** CPU time of all load workers, µs: the load generator's share of the machine. */
  cpuUs(): number {
    let t = 0;
    for (const w of this.workers) { try { t += sampleProc(w.proc.pid!).cpuUs; } catch { /* exited */ } }
    return t;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(async (w, i) => {
      if (!w.proc.connected) return;
      const exited = new Promise((r) => w.proc.once('exit', r));
      await this.call(i, { cmd: 'close' }).catch(() => undefined);
      const timer = setTimeout(() => w.proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }));
  }
}

export interface MergedConnect { connected: number; failed: number; ready: LatencySummary; errors: Record<string, number> }

export function mergeConnect(rs: ConnectResult[]): MergedConnect {
  return {
    connected: rs.reduce((a, r) => a + r.connected, 0),
    failed: rs.reduce((a, r) => a + r.failed, 0),
    ready: summarize(mergeHistograms(rs.map((r) => r.readyHist))),
    errors: mergeCounts(rs.map((r) => r.errors)),
  };
}

export interface MergedRun {
  sent: number; acked: number; expected: number; delivered: number; deliveredInWindow: number; duplicated: number; lost: number;
  receiptsMissing: number; receipts: number; resentFiltered: number; redelivered: number; errors: Record<string, number>; errorCount: number;
  latency: LatencySummary; ack: LatencySummary; drained: boolean; stalled: boolean; maxIssueLagMs: number; windowMs: number;
}

export function mergeRuns(rs: RunStats[]): MergedRun {
  const sum = (k: keyof RunStats) => rs.reduce((a, r) => a + (r[k] as number), 0);
  const errors = mergeCounts(rs.map((r) => r.errors));
  return {
    sent: sum('sent'), acked: sum('acked'), expected: sum('expected'), delivered: sum('delivered'), deliveredInWindow: sum('deliveredInWindow'),
    duplicated: sum('duplicated'), lost: sum('lost'), receiptsMissing: sum('receiptsMissing'), receipts: sum('receipts'), resentFiltered: sum('resentFiltered'), redelivered: sum('redelivered'),
    errors, errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    latency: summarize(mergeHistograms(rs.map((r) => r.hist))),
    ack: summarize(mergeHistograms(rs.map((r) => r.ackHist))),
    drained: rs.every((r) => r.drained),
    stalled: rs.some((r) => r.stalled),
    maxIssueLagMs: Math.max(0, ...rs.map((r) => r.maxIssueLagMs)),
    windowMs: Math.max(0, ...rs.map((r) => r.windowMs)),
  };
}

export function mergeCounts(list: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of list) for (const [k, v] of Object.entries(o)) out[k] = (out[k] ?? 0) + v;
  return out;
}
