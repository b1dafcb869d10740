import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { ProfileEntry } from './types.js';

interface CpuNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: CpuNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** Self and inclusive time per function of a V8 .cpuprofile (what `node --cpu-prof` writes). */
export function topFunctions(file: string, limit = 30): { entries: ProfileEntry[]; totalMs: number; idlePct: number } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, CpuNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (n: CpuNode) => {
    const f = n.callFrame;
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
    return `${f.functionName || '(anonymous)'}\u0000${where}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let sum = 0, idle = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i] ?? 0) / 1000; // µs → ms
    const node = byId.get(p.samples[i]!);
    if (!node || dt <= 0) continue;
    sum += dt;
    const name = node.callFrame.functionName;
    if (name === '(idle)') { idle += dt; continue; }
    const k = keyOf(node);
    self.set(k, (self.get(k) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const kk = keyOf(byId.get(id)!);
      if (seen.has(kk)) continue;
      seen.add(kk);
      total.set(kk, (total.get(kk) ?? 0) + dt);
    }
  }
  const busy = Math.max(1e-9, sum - idle);
  const entries = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([k, ms]) => {
    const [fn, loc] = k.split('\u0000');
    return { function: fn!, location: loc!, self_ms: Math.round(ms), self_pct: Math.round((ms / busy) * 1000) / 10, total_pct: Math.round(((total.get(k) ?? 0) / busy) * 1000) / 10 };
  });
  return { entries, totalMs: Math.round(sum), idlePct: Math.round((idle / Math.max(1e-9, sum)) * 1000) / 10 };
}

/** Inclusive time of the functions that matter most (for the "where does it go" view). */
export function topInclusive(file: string, limit = 30): ProfileEntry[] {
  const r = topFunctions(file, 100000);
  return r.entries.sort((a, b) => b.total_pct - a.total_pct).slice(0, limit);
}

function shortUrl(url: string): string {
  const u = url.replace(/^file:\/\//, '');
  const i = u.indexOf('/node_modules/');
  if (i >= 0) return u.slice(i + 1);
  const d = u.indexOf('/dist/');
  return d >= 0 ? u.slice(d + 1) : u;
}

/** Summarizes the Parley profiles a scenario wrote into bench/results/profile-<scenario>.md. */
export function summarizeProfiles(dir: string, scenario: string, out: string): { file: string; top: ProfileEntry[] } | null {
  let files: string[];
  try { files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile') && f.includes(scenario) && f.includes('parley')); } catch { return null; }
  if (!files.length) return null;
  const newest = files.map((f) => join(dir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
  const r = topFunctions(newest, 40);
  const incl = topInclusive(newest, 40);
  const md = [
    `# CPU profile of the Parley node: ${scenario}`,
    '',
    `Profile: \`${relative(process.cwd(), newest)}\` (${(r.totalMs / 1000).toFixed(1)} s sampled, ${r.idlePct}% idle).`,
    'Percentages are of the busy (non-idle) time of the main thread; "(program)" and "(garbage collector)" are V8\'s own.',
    'V8 counts as idle what the thread does outside JavaScript (socket reads in the kernel, native code): the load',
    'points\' main-thread column has the thread\'s whole user + system time, and bench/README.md how to see it with perf.',
    '',
    '## Top functions by self time',
    '',
    '| # | function | location | self % | self ms | inclusive % |',
    '|---:|---|---|---:|---:|---:|',
    ...r.entries.map((e, i) => `| ${i + 1} | \`${e.function}\` | ${e.location} | ${e.self_pct} | ${e.self_ms} | ${e.total_pct} |`),
    '',
    '## Top functions by inclusive time',
    '',
    '| # | function | location | inclusive % | self % |',
    '|---:|---|---|---:|---:|',
    ...incl.map((e, i) => `| ${i + 1} | \`${e.function}\` | ${e.location} | ${e.total_pct} | ${e.self_pct} |`),
    '',
  ].join('\n');
  const file = join(out, `profile-${scenario}.md`);
  writeFileSync(file, md);
  return { file, top: r.entries.slice(0, 15) };
}
