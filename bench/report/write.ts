import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadPoint, ScenarioResult, TargetResult } from './types.js';
import { chart, COLORS, type Panel, type Series } from './svg.js';

const SCENARIO_ORDER = ['relay', 'group', 'connections', 'reconnect', 'cluster'];

const n0 = (v: number | null | undefined): string => (v == null || !Number.isFinite(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const n1 = (v: number | null | undefined, d = 1): string => (v == null || !Number.isFinite(v) ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: 0 }));
const kb = (v: number | null | undefined): string => (v == null || !Number.isFinite(v) ? '–' : `${(v / 1024).toFixed(1)} KB`);
const mark = (p: boolean | null): string => (p === true ? '✅ pass' : p === false ? '❌ miss' : '– n/a');

/** Writes <scenario>.json, <scenario>.md and <scenario>.svg; returns the paths. */
export function writeScenarioReport(out: string, r: ScenarioResult): string[] {
  const json = join(out, `${r.scenario}.json`);
  const md = join(out, `${r.scenario}.md`);
  const svg = join(out, `${r.scenario}.svg`);
  writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(svg, scenarioChart(r));
  writeFileSync(md, scenarioMarkdown(r));
  return [json, md, svg];
}

function when(r: ScenarioResult): string {
  const m = r.machine as { cpus?: number; cpu_model?: string; node?: string; memory_gib?: number };
  return `${r.started_at.replace('T', ' ').slice(0, 19)} UTC · ${m.cpus} × ${m.cpu_model} · ${m.memory_gib} GiB · Node ${m.node} · load generator on the same cores`;
}

export function scenarioMarkdown(r: ScenarioResult): string {
  const L: string[] = [];
  L.push(`# Bench: ${r.title}`, '');
  L.push(`${when(r)}  `, `Command: \`${r.command}\``, '');
  L.push(`![${r.title}](${r.scenario}.svg)`, '');
  if (r.summary.checks.length) {
    L.push('## Targets', '', '| check | measured | target | result |', '|---|---:|---:|---|');
    for (const c of r.summary.checks) L.push(`| ${c.name} | ${typeof c.value === 'number' ? n1(c.value, 2) : c.value ?? '–'} | ${c.limit} | ${mark(c.pass)}${c.note ? ` — ${c.note}` : ''} |`);
    L.push('');
  }
  const ratios = Object.entries(r.summary.ratios).filter(([, v]) => v != null);
  if (ratios.length) {
    L.push('## Parley ÷ baseline (same run, same load generator)', '', '| ratio | value |', '|---|---:|');
    for (const [k, v] of ratios) L.push(`| ${k.replace(/_/g, ' ')} | ${n1(v, 2)}× |`);
    L.push('');
  }
  if (r.targets.some((t) => t.points.length)) {
    L.push('## Load points', '');
    L.push('| target | load | delivered/s | p50 ms | p99 ms | p99.9 ms | max ms | sent-ack p99 ms | server CPU µs/msg | server cores | main thread: user + sys | load-gen cores | other cores | lost | dup | errors |');
    L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const t of r.targets) for (const p of t.points) {
      L.push(`| ${t.name} | ${p.label}${p.drained ? '' : ' ⚠ not drained'} | ${n0(p.delivered_per_s)} | ${n1(p.p50_ms, 2)} | ${n1(p.p99_ms, 2)} | ${n1(p.p999_ms, 2)} | ${n1(p.max_ms, 1)} | ${n1(p.ack_p99_ms, 2)} | ${n1(p.server_cpu_us_per_msg, 1)} | ${n1(p.server_cpu_cores, 2)} | ${p.server_main_thread ? `${n1(p.server_main_thread.user_cores, 2)} + ${n1(p.server_main_thread.sys_cores, 2)}` : '–'} | ${n1(p.loadgen_cpu_cores, 2)} | ${n1(p.other_cpu_cores, 2)} | ${p.lost}${p.pending ? ` (+${p.pending} late)` : ''} | ${p.duplicated}${p.redelivered ? ` (+${p.redelivered} redelivered)` : ''} | ${p.errors}${p.errors ? ` (${Object.entries(p.error_kinds).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''} |`);
    }
    L.push('');
    const split = r.targets.flatMap((t) => t.points.filter((p) => p.server_cpu_parts_us_per_msg).map((p) => ({ t, p })));
    if (split.length) {
      const roles = [...new Set(split.flatMap(({ p }) => Object.keys(p.server_cpu_parts_us_per_msg!)))];
      L.push(`| target | load | server CPU µs/msg | ${roles.map((x) => `of which ${x}`).join(' | ')} |`, `|---|---|---:|${roles.map(() => '---:').join('|')}|`);
      for (const { t, p } of split) L.push(`| ${t.name} | ${p.label} | ${n1(p.server_cpu_us_per_msg, 1)} | ${roles.map((x) => n1(p.server_cpu_parts_us_per_msg![x], 1)).join(' | ')} |`);
      L.push('');
    }
    L.push('Latency is measured from the intended send time at fixed offered rates (coordinated omission corrected) and from the actual send time in closed-loop runs. Server CPU is the server process\'s own user+system time (all threads) from /proc over the run and its drain, divided by deliveries. "other cores" is CPU used by other processes on the machine meanwhile: figures are clean only when it is near 0.', '');
  }
  L.push('## Connections and memory', '');
  L.push('| target | clients | connected | failed | connect/s | ready p50 ms | ready p99 ms | RSS per conn | anon per conn | JS heap per conn |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const t of r.targets) {
    L.push(`| ${t.name} | ${n0(t.clients)} | ${n0(t.connect.connected)} | ${n0(t.connect.failed)} | ${n0(t.connect.per_s)} | ${n1(t.connect.ready_p50_ms, 1)} | ${n1(t.connect.ready_p99_ms, 1)} | ${kb(t.memory?.rss_bytes_per_conn)} | ${kb(t.memory?.anon_bytes_per_conn)} | ${kb(t.memory?.heap_bytes_per_conn)} |`);
  }
  L.push('');
  const extras = r.targets.filter((t) => Object.keys(t.extra).length);
  if (extras.length) {
    L.push('## Details', '');
    for (const t of extras) {
      L.push(`**${t.name}**: ${Object.entries(t.extra).map(([k, v]) => `${k.replace(/_/g, ' ')} = ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('; ')}`, '');
    }
  }
  const notes = [...r.notes, ...r.targets.flatMap((t) => t.notes.map((n) => `${t.name}: ${n}`))];
  if (notes.length) L.push('## Notes', '', ...notes.map((n) => `- ${n}`), '');
  if (r.profile) {
    L.push('## Where the Parley node spends its CPU', '', `From \`node --cpu-prof\` (full table: [${r.profile.file.split('/').pop()}](${r.profile.file.split('/').pop()})).`, '');
    L.push('| function | location | self % | inclusive % |', '|---|---|---:|---:|');
    for (const e of r.profile.top) L.push(`| \`${e.function}\` | ${e.location} | ${e.self_pct} | ${e.total_pct} |`);
    L.push('');
  }
  if (r.server_logs) {
    L.push('## Server logs (last lines, warn and above)', '');
    for (const [k, lines] of Object.entries(r.server_logs)) L.push(`**${k}**`, '', '```', ...lines.map((l) => l.slice(0, 300)), '```', '');
  }
  L.push(`Summary (\`--json\`):`, '', '```json', JSON.stringify(r.summary, null, 2), '```', '');
  return L.join('\n');
}

const series = (targets: TargetResult[], f: (t: TargetResult) => (number | null)[]): Series[] =>
  targets.map((t) => ({ name: t.name, color: COLORS[t.target] ?? '#6b7280', values: f(t) }));

export function scenarioChart(r: ScenarioResult): string {
  const T = r.targets;
  const sub = when(r);
  const panels: Panel[] = [];
  const labelsOf = (filter: (p: LoadPoint) => boolean) => [...new Set(T.flatMap((t) => t.points.filter(filter).map((p) => p.label)))];
  const val = (t: TargetResult, label: string, f: (p: LoadPoint) => number | null) => {
    const p = t.points.find((x) => x.label === label);
    return p ? f(p) : null;
  };
  if (r.scenario === 'relay') {
    const rateOf = (l: string) => T.flatMap((t) => t.points).find((p) => p.label === l)?.offered_per_s ?? Infinity;
    const fixed = labelsOf((p) => p.mode === 'rate').sort((a, b) => rateOf(a) - rateOf(b));
    const all = [...fixed, ...labelsOf((p) => p.mode === 'closed')];
    panels.push({ title: 'Server CPU per delivered message', subtitle: 'µs of the server process\'s CPU · lower is better', categories: all, unit: 'µs / message', series: series(T, (t) => all.map((l) => val(t, l, (p) => p.server_cpu_us_per_msg))) });
    panels.push({ title: 'p99 latency at fixed offered rates', subtitle: 'send → delivery, coordinated omission corrected · lower is better', categories: fixed, unit: 'ms', log: true, line: { value: 10, label: 'target 10 ms' }, series: series(T, (t) => fixed.map((l) => val(t, l, (p) => p.p99_ms))) });
    panels.push({ title: 'Throughput at saturation', subtitle: 'delivered messages/s, closed loop · higher is better', categories: ['saturation'], unit: 'messages / s', series: series(T, (t) => [val(t, 'saturation', (p) => p.delivered_per_s)]) });
    panels.push({ title: 'p99.9 latency at fixed offered rates', subtitle: 'lower is better', categories: fixed, unit: 'ms', log: true, line: { value: 25, label: 'target 25 ms' }, series: series(T, (t) => fixed.map((l) => val(t, l, (p) => p.p999_ms))) });
  } else if (r.scenario === 'group') {
    const sizes = labelsOf((p) => p.label.startsWith('group of'));
    const cats = sizes.map((s) => s.replace('group of ', 'size '));
    panels.push({ title: 'Device deliveries per second', subtitle: 'closed loop · higher is better', categories: cats, unit: 'deliveries / s', line: { value: 150_000, label: 'target 150k/s (size 100)' }, series: series(T, (t) => sizes.map((l) => val(t, l, (p) => p.delivered_per_s))) });
    panels.push({ title: 'Server CPU per device delivery', subtitle: 'lower is better', categories: cats, unit: 'µs / delivery', series: series(T, (t) => sizes.map((l) => val(t, l, (p) => p.server_cpu_us_per_msg))) });
    panels.push({ title: 'p99 delivery latency under saturation', subtitle: 'send → each member · lower is better', categories: cats, unit: 'ms', log: true, series: series(T, (t) => sizes.map((l) => val(t, l, (p) => p.p99_ms))) });
  } else if (r.scenario === 'connections') {
    panels.push({ title: 'Server memory per idle connection', subtitle: 'RSS slope after a forced GC · lower is better', categories: ['bytes / connection'], unit: 'bytes', line: { value: 4096, label: 'target 4 KB (Parley)' }, series: series(T, (t) => [t.memory?.rss_bytes_per_conn ?? null]) });
    panels.push({ title: 'Connections opened per second', subtitle: 'Parley: authenticated, welcome + inbox synced · higher is better', categories: ['connect / s'], unit: 'connections / s', series: series(T, (t) => [t.connect.per_s]) });
  } else if (r.scenario === 'reconnect') {
    panels.push({ title: 'Reconnect → ready, per device', subtitle: 'Parley: welcome + missed messages synced · lower is better', categories: ['p50', 'p99', 'p99.9'], unit: 'ms', log: true, series: series(T, (t) => { const p = t.points[0]; return [p?.p50_ms ?? null, p?.p99_ms ?? null, p?.p999_ms ?? null]; }) });
    panels.push({ title: 'Reconnects per second during the storm', subtitle: 'higher is better', categories: ['reconnects / s'], unit: 'per second', series: series(T, (t) => [(t.extra.reconnects_per_s as number) ?? null]) });
  } else if (r.scenario === 'cluster') {
    const rates = labelsOf((p) => p.mode === 'rate');
    const [one, many] = T;
    const v = (t: TargetResult | undefined, f: (p: LoadPoint) => number | null | undefined) => rates.map((l) => (t ? val(t, l, (p) => f(p) ?? null) : null));
    panels.push({ title: 'Server CPU per delivered message', subtitle: 'every Parley process and nats-server · lower is better', categories: rates, unit: 'µs / message', series: [
      { name: one?.name ?? 'one node', color: '#2563eb', values: v(one, (p) => p.server_cpu_us_per_msg) },
      { name: many?.name ?? 'cluster', color: '#dc2626', values: v(many, (p) => p.server_cpu_us_per_msg) },
      { name: 'cluster: Parley processes', color: '#f59e0b', values: v(many, (p) => p.server_cpu_parts_us_per_msg?.parley) },
      { name: 'cluster: nats-servers', color: '#7c3aed', values: v(many, (p) => p.server_cpu_parts_us_per_msg?.nats) },
    ] });
    panels.push({ title: 'p99 delivery latency', subtitle: 'send → delivery, coordinated omission corrected · lower is better', categories: rates, unit: 'ms', log: true, series: [
      { name: one?.name ?? 'one node', color: '#2563eb', values: v(one, (p) => p.p99_ms) },
      { name: many?.name ?? 'cluster', color: '#dc2626', values: v(many, (p) => p.p99_ms) },
    ] });
  }
  if (r.scenario === 'cluster') return chart(`Parley: one node vs a cluster — ${r.title}`, sub, panels);
  const peer = T.some((t) => t.target.startsWith('centrifugo')) ? ' vs Centrifugo' : '';
  return chart(`Parley vs raw uWS vs Socket.IO${peer} — ${r.title}`, sub, panels);
}

/** bench/results/README.md: the latest result of every scenario, one table. */
export function writeIndex(out: string): void {
  const rows: string[] = [];
  const checks: string[] = [];
  for (const s of SCENARIO_ORDER) {
    const f = join(out, `${s}.json`);
    if (!existsSync(f)) continue;
    let r: ScenarioResult;
    try { r = JSON.parse(readFileSync(f, 'utf8')) as ScenarioResult; } catch { continue; }
    const h = r.summary;
    const b = h.baselines;
    rows.push(`| [${r.title}](${s}.md) | ${r.started_at.slice(0, 16).replace('T', ' ')} | ${n0(h.delivered_per_s)} | ${n1(h.p50_ms, 2)} | ${n1(h.p99_ms, 2)} | ${n1(h.p999_ms, 2)} | ${n1(h.server_cpu_us_per_msg, 1)} | ${kb(h.server_bytes_per_conn)} | ${h.lost} | ${h.duplicated} | ${n1(b.uws?.server_cpu_us_per_msg, 1)} / ${n1(b.socketio?.server_cpu_us_per_msg, 1)} |`);
    for (const c of h.checks) checks.push(`| ${r.title} | ${c.name} | ${typeof c.value === 'number' ? n1(c.value, 2) : c.value ?? '–'} | ${c.limit} | ${mark(c.pass)} |`);
  }
  const md = [
    '# Bench results (latest run of each scenario)',
    '',
    'Written by `npm run bench`; see [bench/README.md](../README.md) for what each figure means. One node on this 2-core machine, the load generator on the same cores: compare figures within one run only.',
    '',
    '| scenario | run (UTC) | delivered/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/msg | server memory/conn | lost | dup | baseline CPU µs/msg (uWS / Socket.IO) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    '## Targets',
    '',
    '| scenario | check | measured | target | result |',
    '|---|---|---:|---:|---|',
    ...checks,
    '',
    'Charts: ' + SCENARIO_ORDER.filter((s) => existsSync(join(out, `${s}.svg`))).map((s) => `[${s}](${s}.svg)`).join(' · '),
    '',
    ...(SCENARIO_ORDER.some((s) => existsSync(join(out, `profile-${s}.md`)))
      ? ['CPU profiles of the Parley node (`--profile`): ' + SCENARIO_ORDER.filter((s) => existsSync(join(out, `profile-${s}.md`))).map((s) => `[${s}](profile-${s}.md)`).join(' · '), '']
      : []),
  ].join('\n');
  writeFileSync(join(out, 'README.md'), md);
}
