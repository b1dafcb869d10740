#!/usr/bin/env node
/**
 * The operator's view from a terminal: the supervision tree of one or more nodes, the busiest mailboxes,
 * and the cluster's members and shards.
 *
 *   npm run ops -- tree   [--url http://127.0.0.1:8080[,…]] [--key K] [--top 10]
 *   npm run ops -- top    [--url …] [--key K] [--top 20]     the busiest mailboxes over every node and kind
 *   npm run ops -- cluster [--url …] [--key K]              members, shard owners, routing counts per node
 *   npm run ops -- live   [--url …] [--key K] [--top 10]     each node's last intervals: connections, msgs/s, p99s, errors
 *   npm run ops -- analytics [--url …] [--key K] [--days 7] the product numbers per day (every node's, merged)
 *
 * The admin key comes from --key or PARLEY_ADMIN_KEY; a development node on loopback asks none.
 */
import type { AnalyticsReport, LiveReport, SupervisionTree as Tree } from './admin-api.js';

interface Args { cmd: string; urls: string[]; key?: string; top: number; days: number }

function parseArgs(argv: string[]): Args {
  const out: Args = { cmd: argv[0] ?? 'tree', urls: ['http://127.0.0.1:8080'], key: process.env.PARLEY_ADMIN_KEY, top: 10, days: 7 };
  for (let i = 1; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--url' && value) out.urls = value.split(',').map((u) => u.replace(/\/$/, ''));
    else if (flag === '--key' && value) out.key = value;
    else if (flag === '--top' && value) out.top = Number(value);
    else if (flag === '--days' && value) out.days = Number(value);
    else throw new Error(`unknown argument ${flag}`);
    i++;
  }
  return out;
}

async function get<T>(url: string, path: string, key?: string): Promise<T> {
  const r = await fetch(`${url}${path}`, { headers: key ? { 'x-admin-key': key } : {} });
  const body = await r.json() as T & { error?: { message: string } };
  if (!r.ok) throw new Error(`${url}${path}: ${r.status} ${body.error?.message ?? ''}`);
  return body;
}

const n = (x: number) => x.toLocaleString('en-US');
const dur = (ms: number) => (ms < 60_000 ? `${Math.round(ms / 1000)}s` : ms < 3_600_000 ? `${Math.round(ms / 60_000)}m` : `${(ms / 3_600_000).toFixed(1)}h`);

/** One node's tree as text (pure: the CLI prints it, a test reads it). */
export function renderTree(url: string, t: Tree): string {
  const lines = [`node ${t.node}  ${url}`];
  t.regions.forEach((r, i) => {
    const last = i === t.regions.length - 1;
    const [branch, pipe] = last ? ['└─', '   '] : ['├─', '│  '];
    const m = r.last.minute;
    const h = r.last.hour;
    lines.push(`${branch} ${r.type.padEnd(5)} active ${n(r.active)}  loading ${n(r.loading)}  mailbox ${n(r.mailbox.total)} (max ${n(r.mailbox.max)})` +
      `${r.shards ? `  shards ${r.shards.held}` : ''}`);
    lines.push(`${pipe}  last minute / hour: spawned ${m.spawned}/${h.spawned}  passivated ${m.passivated}/${h.passivated}  crashed ${m.crashed}/${h.crashed}  stopped ${m.stopped}/${h.stopped}`);
    for (const e of r.crashLooping) lines.push(`${pipe}  CRASH LOOP ${e.id}: ${e.recentCrashes} crashes in 10 s, mailbox ${e.mailbox}`);
    for (const e of r.busiest) lines.push(`${pipe}  busy ${e.id}: ${e.mailbox} waiting, ${e.state}, up ${dur(e.ageMs)}, idle ${dur(e.idleMs)}`);
    for (const c of r.lastCrashes.slice(0, 3)) {
      lines.push(`${pipe}  crashed ${dur(t.at - c.at)} ago ${c.id}${c.message ? ` on ${c.message}` : ''}: ${c.reason}${c.stopped ? ' (stopped)' : ''}`);
    }
  });
  return lines.join('\n');
}

/** A node's newest `last` intervals as a table, oldest first (pure: the CLI prints it, a test reads it). */
export function renderLive(url: string, l: LiveReport, last: number): string {
  const head = ['time', 'conns', 'msgs/s', 'deliv/s', 'sent p99', 'deliv p99', 'errors/s', 'loop ms', 'heap MB', 'entities'];
  const ms = (x: number | null) => (x === null ? '-' : String(x));
  const rows = l.points.slice(-last).map((p) => [new Date(p.at).toISOString().slice(11, 19), n(p.connections), String(p.sendsPerSec), String(p.deliveriesPerSec),
    ms(p.sentP99Ms), ms(p.deliveredP99Ms), String(p.errorsPerSec), String(p.loopMaxMs), String(p.heapMb), n(p.entities)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [`node ${l.node}  ${url}  up ${dur(l.at - l.startedAt)}  every ${l.intervalMs / 1000} s`, line(head), ...rows.map(line)].join('\n');
}

/** The analytics report as a table, a row per day (pure: the CLI prints it, a test reads it). */
export function renderAnalytics(r: AnalyticsReport): string {
  const head = ['day', 'dau', 'msgs', 'direct', 'group', 'text', 'image', 'video', 'media MB', 'signups', 'push', 'p50 ms', 'p90 ms', 'p99 ms'];
  const ms = (x: number | null) => (x === null ? '-' : String(x));
  const rows = r.days.map((d) => {
    const k = d.messages.byKind;
    return [d.day, n(d.dau), n(d.messages.direct + d.messages.group), n(d.messages.direct), n(d.messages.group), n(k.text), n(k.image), n(k.video),
      (d.mediaBytes / 1e6).toFixed(1), n(d.signups), n(d.pushSent), ms(d.latency.p50), ms(d.latency.p90), ms(d.latency.p99)];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line), '',
    r.months.map((m) => `mau ${m.month}: ${n(m.mau)}`).join('   '),
    `dau and mau are estimates (HyperLogLog, standard error ${(r.distinctError * 100).toFixed(2)}%); latency: a message's send to a device's ack`].join('\n');
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.cmd === 'tree') {
    for (const url of a.urls) console.log(renderTree(url, await get<Tree>(url, `/v1/admin/actors?top=${a.top}`, a.key)));
  } else if (a.cmd === 'top') {
    const rows: { node: string; type: string; id: string; mailbox: number; state: string }[] = [];
    for (const url of a.urls) {
      const t = await get<Tree>(url, `/v1/admin/actors?top=${a.top}`, a.key);
      for (const r of t.regions) for (const e of r.busiest) rows.push({ node: t.node, type: r.type, id: e.id, mailbox: e.mailbox, state: e.state });
    }
    rows.sort((x, y) => y.mailbox - x.mailbox);
    console.log(rows.length ? rows.slice(0, a.top).map((r) => `${String(r.mailbox).padStart(7)}  ${r.node}  ${r.type.padEnd(5)} ${r.id}  ${r.state}`).join('\n') : 'no mailbox is waiting');
  } else if (a.cmd === 'cluster') {
    for (const url of a.urls) {
      try {
        const s = await get<{ node: string; members: string[]; shards: { total: number; owned: number; serving: number; unowned: number } }>(url, '/v1/admin/cluster', a.key);
        const t = await get<Tree>(url, '/v1/admin/actors?top=0', a.key);
        console.log(`${s.node}  ${url}  members ${s.members.length}  shards owned ${s.shards.owned}/${s.shards.total} (serving ${s.shards.serving}, unowned ${s.shards.unowned})  ` +
          t.regions.map((r) => `${r.type} ${n(r.active)}`).join('  '));
      } catch (err) {
        console.log(`${'-'.repeat(9)}  ${url}  unreachable (${err instanceof Error ? err.message : String(err)})`);
      }
    }
  } else if (a.cmd === 'live') {
    for (const url of a.urls) console.log(renderLive(url, await get<LiveReport>(url, '/v1/admin/live', a.key), a.top));
  } else if (a.cmd === 'analytics') {
    if (!Number.isInteger(a.days) || a.days < 1 || a.days > 400) throw new Error('--days is a whole number from 1 to 400');
    const to = new Date().toISOString().slice(0, 10);
    const from = new Date(Date.now() - (a.days - 1) * 86_400_000).toISOString().slice(0, 10);
    // Every node's rows are in the shared store: one node answers for all.
    console.log(renderAnalytics(await get<AnalyticsReport>(a.urls[0]!, `/v1/admin/analytics?from=${from}&to=${to}`, a.key)));
  } else {
    throw new Error(`unknown command ${a.cmd}: tree, top, cluster, live or analytics`);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`ops: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
