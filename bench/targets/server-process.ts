import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { alive, openFiles, sampleProc, type ProcSample } from '../lib/proc.js';
import { sleep } from '../lib/clock.js';

/** A server the bench measures: a process of its own, so its CPU and memory are read alone from /proc. */
export interface ServerProcess {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Lines the process wrote to stderr (most recent last, at most 2,000). */
  readonly logs: string[];
  sample(): ProcSample;
  /** A target of several processes (a cluster): each role's processes read together, e.g. {parley, nats}. */
  sampleParts?(): Record<string, ProcSample>;
  openFiles(): number;
  /** Forces a full garbage collection through the inspector (false when the process has none). */
  gc(): Promise<boolean>;
  /** The process's JS heap as V8 reports it (after gc() this is its live set). */
  heapUsed(): Promise<number | undefined>;
  /** A heap snapshot, reduced to live objects per constructor: {count, bytes} (undefined without inspector). */
  heapByConstructor(): Promise<Map<string, { count: number; bytes: number }> | undefined>;
  alive(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface SpawnOptions {
  name: string;
  /** A node script; or, with `command`, the arguments of that executable. */
  script: string;
  nodeArgs?: string[];
  /** Another executable than node (a Go server): run as `command ...args`, no node flags, no inspector. */
  command?: string;
  args?: string[];
  /** With `command`: the port it was told to listen on; it is up once GET `readyPath` answers 200. */
  readyPort?: number;
  readyPath?: string;
  env?: Record<string, string>;
  /** Expose an inspector on a random port so the bench can force a GC before reading memory. */
  inspect?: boolean;
  cwd?: string;
  startTimeoutMs?: number;
  /** Echo the server's stderr. */
  verbose?: boolean;
}

const LISTEN_RE = /listening on (https?:\/\/[\d.]+:(\d+))/;
const INSPECT_RE = /Debugger listening on (ws:\/\/\S+)/;

/** Every server this process started and has not stopped: stopped on SIGINT/SIGTERM of the harness. */
export const running = new Set<ChildProcess>();

/** What to undo on SIGINT/SIGTERM of the harness once those servers are gone (NATS servers, bench keyspaces). */
export const interruptCleanups = new Set<() => Promise<void>>();

export async function spawnServer(o: SpawnOptions): Promise<ServerProcess> {
  const args = o.command ? (o.args ?? []) : [...(o.inspect ? ['--inspect=127.0.0.1:0'] : []), ...(o.nodeArgs ?? []), o.script];
  const proc: ChildProcess = spawn(o.command ?? process.execPath, args, {
    cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let inspectorUrl: string | undefined;
  running.add(proc);
  const exited = new Promise<number | null>((res) => proc.on('exit', (code, sig) => { running.delete(proc); res(code ?? (sig ? 128 : null)); }));
  let last = '', repeats = 0;
  const log = (l: string) => {
    if (o.verbose) process.stderr.write(`[${o.name}] ${l}\n`);
    // A line repeated back to back is kept once, with its count (a warning per request would push out the rest).
    if (l === last && logs.length) { logs[logs.length - 1] = `${l} (×${++repeats + 1})`; return; }
    last = l;
    repeats = 0;
    logs.push(l);
    if (logs.length > 2000) logs.splice(0, 1000);
  };
  createInterface({ input: proc.stderr! }).on('line', (l) => {
    const m = INSPECT_RE.exec(l);
    if (m) { inspectorUrl = m[1]; return; }
    if (/^For help, see: https:\/\/nodejs.org\/en\/docs\/inspector/.test(l) || /^Debugger (attached|ending)/.test(l) || /Waiting for the debugger to disconnect/.test(l)) return;
    log(l);
  });
  const { url, port } = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${o.name} did not start in time:\n${logs.join('\n')}`)), o.startTimeoutMs ?? 30_000);
    const lines = createInterface({ input: proc.stdout! });
    if (o.command && o.readyPort) {
      // A server that writes no "listening on" line: its own logs (stdout) are kept, and readiness is probed.
      lines.on('line', log);
      const at = `http://127.0.0.1:${o.readyPort}`;
      void waitHttp(`${at}${o.readyPath ?? '/'}`, exited, o.startTimeoutMs ?? 30_000).then((ok) => { if (ok) { clearTimeout(timer); resolve({ url: at, port: o.readyPort! }); } });
    } else {
      lines.on('line', (l) => {
        const m = LISTEN_RE.exec(l);
        if (m) { clearTimeout(timer); resolve({ url: m[1]!, port: Number(m[2]) }); }
      });
    }
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`${o.name} exited with ${code} before listening:\n${logs.slice(-40).join('\n')}`)); });
  });
  const pid = proc.pid!;
  if (o.inspect) for (let i = 0; i < 50 && !inspectorUrl; i++) await sleep(20);

  const inspector = async <T>(method: string, params: object = {}): Promise<T | undefined> => {
    if (!inspectorUrl) return undefined;
    const ws = new WebSocket(inspectorUrl, { perMessageDeflate: false });
    try {
      await new Promise<void>((res, rej) => { ws.once('open', () => res()); ws.once('error', rej); });
      return await new Promise<T>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`inspector ${method} timed out`)), 60_000);
        ws.on('message', (d) => {
          const msg = JSON.parse(d.toString()) as { id?: number; result?: T; error?: { message: string } };
          if (msg.id !== 1) return;
          clearTimeout(timer);
          if (msg.error) rej(new Error(msg.error.message)); else res(msg.result as T);
        });
        ws.send(JSON.stringify({ id: 1, method, params }));
      });
    } finally {
      ws.close();
    }
  };

  return {
    name: o.name, url, port, pid, logs,
    sample: () => sampleProc(pid),
    openFiles: () => openFiles(pid),
    async gc() {
      if (!inspectorUrl) return false;
      await inspector('HeapProfiler.collectGarbage');
      await sleep(100);
      await inspector('HeapProfiler.collectGarbage');
      await sleep(400); // let V8 hand freed pages back before /proc is read
      return true;
    },
    async heapUsed() {
      const r = await inspector<{ usedSize: number }>('Runtime.getHeapUsage');
      return r?.usedSize;
    },
    async heapByConstructor() {
      if (!inspectorUrl) return undefined;
      const ws = new WebSocket(inspectorUrl, { perMessageDeflate: false, maxPayload: 2 ** 31 });
      const chunks: string[] = [];
      try {
        await new Promise<void>((res, rej) => { ws.once('open', () => res()); ws.once('error', rej); });
        await new Promise<void>((res, rej) => {
          const timer = setTimeout(() => rej(new Error('heap snapshot timed out')), 300_000);
          ws.on('message', (d) => {
            const msg = JSON.parse(d.toString()) as { id?: number; method?: string; params?: { chunk: string } };
            if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(msg.params!.chunk);
            else if (msg.id === 1) { clearTimeout(timer); res(); }
          });
          ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.takeHeapSnapshot', params: { reportProgress: false, captureNumericValue: false } }));
        });
      } finally {
        ws.close();
      }
      return byConstructor(JSON.parse(chunks.join('')) as HeapSnapshot);
    },
    alive: () => proc.exitCode === null && proc.signalCode === null && alive(pid),
    async stop(graceMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); }, graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Polls `url` until it answers 200 (true), or the process exits or `timeoutMs` passes (false). */
async function waitHttp(url: string, exited: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let gone = false;
  void exited.then(() => { gone = true; });
  const end = Date.now() + timeoutMs;
  while (!gone && Date.now() < end) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return true;
    await sleep(50);
  }
  return false;
}

/** A server the bench did not start (e.g. `--url`): measured through /proc when its pid is known. */
export function externalServer(name: string, url: string, pid: number | undefined): ServerProcess {
  const port = Number(new URL(url).port);
  const none: ProcSample = { cpuUs: NaN, rssBytes: NaN, rssAnonBytes: NaN, rssFileBytes: NaN, threads: 0, at: performance.now() };
  return {
    name, url, port, pid: pid ?? -1, logs: [],
    sample: () => (pid ? sampleProc(pid) : { ...none, at: performance.now() }),
    openFiles: () => (pid ? openFiles(pid) : -1),
    gc: async () => false,
    heapUsed: async () => undefined,
    heapByConstructor: async () => undefined,
    alive: () => (pid ? alive(pid) : true),
    stop: async () => null,
  };
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count of every node of a V8 heap snapshot, grouped by type and constructor name. */
function byConstructor(h: HeapSnapshot): Map<string, { count: number; bytes: number }> {
  const f = h.snapshot.meta.node_fields;
  const width = f.length;
  const iType = f.indexOf('type'), iName = f.indexOf('name'), iSize = f.indexOf('self_size');
  const types = h.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < h.nodes.length; i += width) {
    const type = types[h.nodes[i + iType]!] ?? '?';
    const name = type === 'object' || type === 'closure' || type === 'native' ? h.strings[h.nodes[i + iName]!]! : `(${type})`;
    const key = type === 'closure' ? `closure ${name}` : name.length > 60 ? `${name.slice(0, 57)}...` : name;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += h.nodes[i + iSize]!;
    out.set(key, e);
  }
  return out;
}
