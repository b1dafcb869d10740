import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** What /proc says about one process: its own CPU time (all threads, user + system) and its memory. */
export interface ProcSample {
  /** utime + stime of the process, in microseconds. */
  cpuUs: number;
  /**
   * The main thread's share of it (user, system), µs: a Node server's JavaScript, its socket syscalls and its
   * embedded store's commits all run there, so this thread saturates first. A V8 CPU profile shows only the
   * JavaScript part; time in the kernel and native code looks idle to it.
   */
  mainThread?: { userUs: number; sysUs: number };
  rssBytes: number;
  /** Anonymous memory (heaps, buffers); RSS minus file-backed pages such as the embedded store's mmap. */
  rssAnonBytes: number;
  rssFileBytes: number;
  threads: number;
  /** Wall clock of the sample, ms (monotonic). */
  at: number;
}

let clkTck = 0;
function ticksPerSecond(): number {
  if (!clkTck) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100; } catch { clkTck = 100; }
  }
  return clkTck;
}

/** utime and stime in a /proc stat line, in ticks. */
function statTicks(path: string): { user: number; sys: number } {
  const stat = readFileSync(path, 'utf8');
  // Fields after the command name (which may hold spaces): the 1st is field 3 (state); utime/stime are 14/15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(rest[11]), sys: Number(rest[12]) };
}

export function sampleProc(pid: number): ProcSample {
  const all = statTicks(`/proc/${pid}/stat`);
  const ticks = all.user + all.sys;
  const main = statTicks(`/proc/${pid}/task/${pid}/stat`);
  const us = (t: number) => (t * 1e6) / ticksPerSecond();
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return {
    cpuUs: us(ticks),
    mainThread: { userUs: us(main.user), sysUs: us(main.sys) },
    rssBytes: kb('VmRSS'),
    rssAnonBytes: kb('RssAnon'),
    rssFileBytes: kb('RssFile'),
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0),
    at: performance.now(),
  };
}

export function alive(pid: number): boolean {
  try { readFileSync(`/proc/${pid}/stat`); return true; } catch { return false; }
}

export function openFiles(pid: number): number {
  try { return readdirSync(`/proc/${pid}/fd`).length; } catch { return -1; }
}

/** The pid of the process listening on a local TCP port (so a node started elsewhere can be measured too). */
export function pidListeningOn(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue; // 0A = LISTEN
      if (parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!);
    }
  }
  if (!inodes.size) return undefined;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    let fds: string[];
    try { fds = readdirSync(`/proc/${p}/fd`); } catch { continue; }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${p}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return Number(p);
      } catch { /* gone */ }
    }
  }
  return undefined;
}

/** Machine-wide CPU time in use (all cores, user + system + irq + steal), µs: to see who else was busy. */
export function machineBusyUs(): { busyUs: number; stealUs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line;
  const tick = 1e6 / ticksPerSecond();
  return { busyUs: (user + nice + system + irq + softirq + steal) * tick, stealUs: steal * tick };
}

/** Several processes read as one (a cluster's nodes and its NATS servers): CPU, memory and threads added up. */
export function sumSamples(samples: readonly ProcSample[]): ProcSample {
  const add = (k: 'cpuUs' | 'rssBytes' | 'rssAnonBytes' | 'rssFileBytes' | 'threads') => samples.reduce((a, s) => a + s[k], 0);
  return {
    cpuUs: add('cpuUs'), rssBytes: add('rssBytes'), rssAnonBytes: add('rssAnonBytes'), rssFileBytes: add('rssFileBytes'), threads: add('threads'),
    at: samples.length ? Math.max(...samples.map((s) => s.at)) : performance.now(),
  };
}

/** CPU µs per message of each group of processes (by role) between two samplings of them. */
export function cpuPerMessageByRole(before: Record<string, ProcSample>, after: Record<string, ProcSample>, messages: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const role of Object.keys(after)) {
    const b = before[role];
    out[role] = b && messages > 0 ? Math.round(((after[role]!.cpuUs - b.cpuUs) / messages) * 100) / 100 : NaN;
  }
  return out;
}
