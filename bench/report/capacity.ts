import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadPoint, ScenarioResult, TargetResult } from './types.js';

/**
 * docs/capacity.md, regenerated from the latest bench results and the assumptions in
 * bench/capacity-params.json: how many nodes the design's peak needs, which resource binds, and what a
 * node costs. `npm run bench -- capacity` rewrites it without measuring anything.
 */
interface Params {
  peak_concurrent_connections: number;
  messages_per_day: number;
  peak_to_average: number;
  node: { description: string; vcpus: number; memory_gib: number; price_per_hour_usd: number; price_note: string };
  processes_per_node: number;
  cpu_utilization_at_peak: number;
  memory_utilization: number;
  reserved_memory_gib: number;
  v8_heap_limit_gib_per_process: number;
  raised_file_limit_per_process: number;
  reconnects_per_connection_per_hour: number;
  redundancy_factor: number;
  redundancy_note: string;
}

const GiB = 2 ** 30;
const f0 = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const f1 = (v: number, d = 1) => (Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: d }) : 'n/a');
const money = (v: number) => (Number.isFinite(v) ? `$${Math.round(v).toLocaleString('en-US')}` : 'n/a');

function load(out: string, name: string): ScenarioResult | undefined {
  const f = join(out, `${name}.json`);
  if (!existsSync(f)) return undefined;
  try { return JSON.parse(readFileSync(f, 'utf8')) as ScenarioResult; } catch { return undefined; }
}
const target = (r: ScenarioResult | undefined, k: string): TargetResult | undefined => r?.targets.find((t) => t.target === k);
const point = (t: TargetResult | undefined, label: string): LoadPoint | undefined => t?.points.find((p) => p.label === label);

export function writeCapacity(root: string, out: string): string {
  const params = JSON.parse(readFileSync(join(root, 'bench', 'capacity-params.json'), 'utf8')) as Params;
  const relay = load(out, 'relay'), group = load(out, 'group'), conns = load(out, 'connections'), rec = load(out, 'reconnect'), clus = load(out, 'cluster');
  const P = params;
  const headLabel = relay ? (relay.summary.basis.latency?.match(/rate ([\d,]+\/s)/)?.[1] ?? '10,000/s') : '10,000/s';

  // ---- measured inputs ----
  const pRelay = target(relay, 'parley'), uRelay = target(relay, 'uws'), sRelay = target(relay, 'socketio');
  const cpuMsgFixed = point(pRelay, headLabel)?.server_cpu_us_per_msg ?? NaN;
  const cpuMsgSat = point(pRelay, 'saturation')?.server_cpu_us_per_msg ?? NaN;
  const satRate = point(pRelay, 'saturation')?.delivered_per_s ?? NaN;
  const satCores = point(pRelay, 'saturation')?.server_cpu_cores ?? NaN;
  const uwsFixed = point(uRelay, headLabel)?.server_cpu_us_per_msg ?? NaN;
  const sioFixed = point(sRelay, headLabel)?.server_cpu_us_per_msg ?? NaN;
  // Per message at peak: the fixed-rate figure (little batching; conservative) unless only saturation exists.
  const cpuMsg = Number.isFinite(cpuMsgFixed) ? cpuMsgFixed : cpuMsgSat;
  const pConn = target(conns, 'parley');
  const bytesPerConn = pConn?.memory?.rss_bytes_per_conn ?? target(relay, 'parley')?.memory?.rss_bytes_per_conn ?? NaN;
  const heapPerConn = pConn?.memory?.heap_bytes_per_conn ?? NaN;
  const idleCores = Number(pConn?.extra.idle_cpu_cores ?? NaN);
  const idleConns = pConn?.connect.connected ?? NaN;
  const idleCpuPerConnUs = idleCores / idleConns * 1e6; // µs of CPU per connection per second
  const baseRss = pConn?.memory ? pConn.memory.rss_after - pConn.memory.rss_bytes_per_conn * (pConn.memory.connections + 1000) : 100 * 2 ** 20;
  const recPoint = target(rec, 'parley')?.points[0];
  const cpuPerReconnect = recPoint?.server_cpu_us_per_msg ?? NaN;
  const g100 = point(target(group, 'parley'), 'group of 100');

  // ---- demand ----
  const avgMsgs = P.messages_per_day / 86_400;
  const peakMsgs = avgMsgs * P.peak_to_average;
  const reconnectsPerS = (P.peak_concurrent_connections * P.reconnects_per_connection_per_hour) / 3600;

  // ---- per-node capacity ----
  const cpuBudgetUs = P.node.vcpus * P.cpu_utilization_at_peak * 1e6; // CPU µs per second a node may spend
  const memBudget = P.node.memory_gib * GiB * P.memory_utilization - P.reserved_memory_gib * GiB - Math.max(0, baseRss) * P.processes_per_node;
  const connByMemory = memBudget / bytesPerConn;
  const connByHeap = Number.isFinite(heapPerConn) && heapPerConn > 0 ? (P.v8_heap_limit_gib_per_process * GiB * P.processes_per_node * 0.8) / heapPerConn : Infinity;
  const connByFiles = P.raised_file_limit_per_process * P.processes_per_node * 0.95;
  const connPerNode = Math.min(connByMemory, connByHeap, connByFiles);
  const connBinding = connPerNode === connByMemory ? 'memory' : connPerNode === connByHeap ? 'V8 heap limit' : 'open files';
  const connHere = 19_500; // PARLEY_MAX_CONNECTIONS default under this machine's 20,000-file cap

  // CPU needed for the whole peak, spread over nodes.
  const cpuMsgsUs = peakMsgs * cpuMsg;
  const cpuIdleUs = Number.isFinite(idleCpuPerConnUs) ? P.peak_concurrent_connections * idleCpuPerConnUs : 0;
  const cpuReconnUs = Number.isFinite(cpuPerReconnect) ? reconnectsPerS * cpuPerReconnect : 0;
  const cpuTotalUs = cpuMsgsUs + cpuIdleUs + cpuReconnUs;
  const nodesCpu = Math.ceil(cpuTotalUs / cpuBudgetUs);
  const nodesConn = Math.ceil(P.peak_concurrent_connections / connPerNode);
  const nodes = Math.max(nodesCpu, nodesConn);
  const binding = nodesCpu >= nodesConn ? 'CPU (message path)' : `connections (${connBinding})`;
  const nodesRed = Math.ceil(nodes * P.redundancy_factor);
  const msgsPerNode = (cpuBudgetUs - (cpuIdleUs + cpuReconnUs) / Math.max(1, nodes)) / cpuMsg;
  const monthly = (n: number) => n * P.node.price_per_hour_usd * 730;

  // What-if: the relay target met (2.5× the uWS relay's CPU per message in the same run).
  const cpuAtTarget = 2.5 * uwsFixed;
  const nodesCpuAtTarget = Math.ceil((peakMsgs * cpuAtTarget + cpuIdleUs + cpuReconnUs) / cpuBudgetUs);
  const nodesAtTarget = Math.max(nodesCpuAtTarget, nodesConn);

  const L: string[] = [];
  L.push('# Capacity model', '');
  L.push('> Generated by `bench/report/capacity.ts` from the latest results in `bench/results/` and the assumptions in `bench/capacity-params.json`. Regenerate with `npm run bench -- capacity` (any bench run also rewrites it). Do not edit by hand.', '');
  L.push(`Results used: relay ${relay?.started_at.slice(0, 16) ?? '— (missing)'}, connections ${conns?.started_at.slice(0, 16) ?? '— (missing)'}, reconnect ${rec?.started_at.slice(0, 16) ?? '— (missing)'}, group ${group?.started_at.slice(0, 16) ?? '— (missing)'}, cluster ${clus?.started_at.slice(0, 16) ?? '— (missing)'} (UTC).`, '');
  L.push('## Answer', '');
  L.push(`**${f0(nodes)} nodes** (${P.node.description}) carry the design's peak — ${f0(P.peak_concurrent_connections)} concurrent connections and ${f1(P.messages_per_day / 1e9, 0)} billion messages a day at ${P.peak_to_average}× the average — with the CPU at ${Math.round(P.cpu_utilization_at_peak * 100)}% at peak; the binding resource is **${binding}**. With zone redundancy (${P.redundancy_note}) that is **${f0(nodesRed)} nodes**, about **${money(monthly(nodesRed))} a month** at the assumed ${money(P.node.price_per_hour_usd * 730)} per node-month.`, '');
  if (Number.isFinite(nodesAtTarget) && nodesAtTarget < nodes) {
    L.push(`If the relay path met its target (server CPU per message at 2.5× the raw uWebSockets relay's, i.e. ${f1(cpuAtTarget)} µs instead of ${f1(cpuMsg)} µs), the same peak would need **${f0(nodesAtTarget)} nodes** (${f0(Math.ceil(nodesAtTarget * P.redundancy_factor))} with redundancy).`, '');
  }
  L.push(`Not counted: the storage cluster (ScyllaDB)${clus ? '' : ', NATS, the cluster\'s cross-node routing cost (no `cluster` result yet)'}, media, and push gateways${clus ? '; what a message crossing nodes costs, NATS included, is in "Cross-node messages" below' : ''}.`
    + ' All figures come from one node on a 2-core machine whose cores the load generator shared (and, on a shared machine, other work: see "other cores" in the results): per-message CPU is the server process\'s own, but batching — and so CPU per message — depends on load. Read the count as an order of magnitude for the code as measured, and the "at the target" line as what the design can reach.', '');

  L.push('## Demand at peak', '', '| quantity | value |', '|---|---:|');
  L.push(`| concurrent connections | ${f0(P.peak_concurrent_connections)} |`);
  L.push(`| messages per day | ${f0(P.messages_per_day)} |`);
  L.push(`| average messages/s | ${f0(avgMsgs)} |`);
  L.push(`| peak messages/s (×${P.peak_to_average}) | ${f0(peakMsgs)} |`);
  L.push(`| reconnects/s (${P.reconnects_per_connection_per_hour} per connection per hour) | ${f0(reconnectsPerS)} |`);
  L.push('');
  L.push('Each message is costed as a 1:1 message on Parley\'s full path (durable store, ack, delivery, batched device ack, delivered receipt). Group messages cost per device delivery; see the sensitivity below.', '');

  L.push('## Measured per-node inputs', '', '| input | value | from |', '|---|---:|---|');
  L.push(`| server CPU per message, fixed rate ${headLabel} | ${f1(cpuMsgFixed)} µs | relay |`);
  L.push(`| server CPU per message, saturation | ${f1(cpuMsgSat)} µs | relay |`);
  L.push(`| saturation throughput of one node process (load generator on the same 2 cores) | ${f0(satRate)} msgs/s at ${f1(satCores, 2)} cores | relay |`);
  L.push(`| raw uWebSockets relay, CPU per message at ${headLabel} | ${f1(uwsFixed)} µs | relay (baseline) |`);
  L.push(`| Socket.IO relay, CPU per message at ${headLabel} | ${f1(sioFixed)} µs | relay (baseline) |`);
  L.push(`| server memory per idle connection (RSS slope) | ${f0(bytesPerConn)} B | connections |`);
  L.push(`| JS heap per idle connection | ${f0(heapPerConn)} B | connections |`);
  L.push(`| idle CPU per connection | ${f1(idleCpuPerConnUs, 3)} µs/s | connections |`);
  L.push(`| server CPU per reconnect with inbox sync | ${f1(cpuPerReconnect)} µs | reconnect |`);
  L.push(`| group of 100: device deliveries/s, CPU per delivery | ${f0(g100?.delivered_per_s ?? NaN)}/s, ${f1(g100?.server_cpu_us_per_msg ?? NaN)} µs | group |`);
  L.push('');

  L.push('## One node', '', '| limit | connections per node | note |', '|---|---:|---|');
  L.push(`| this machine (20,000 open files per process) | ${f0(connHere)} per process | PARLEY_MAX_CONNECTIONS default 19,500; past it new sockets get HTTP 503 |`);
  L.push(`| memory: ${P.node.memory_gib} GiB × ${P.memory_utilization} − ${P.reserved_memory_gib} GiB reserved − process base | ${f0(connByMemory)} | at ${f0(bytesPerConn)} B per connection |`);
  L.push(`| V8 heap: ${P.v8_heap_limit_gib_per_process} GiB × ${P.processes_per_node} processes × 0.8 | ${Number.isFinite(connByHeap) ? f0(connByHeap) : '—'} | raise with --max-old-space-size |`);
  L.push(`| open files raised to ${f0(P.raised_file_limit_per_process)} per process | ${f0(connByFiles)} | |`);
  L.push(`| **production host with a raised file limit** | **${f0(connPerNode)}** | bound by ${connBinding} |`);
  L.push('');
  L.push(`Message capacity of a node: ${P.node.vcpus} vCPU × ${Math.round(P.cpu_utilization_at_peak * 100)}% ÷ ${f1(cpuMsg)} µs ≈ **${f0(msgsPerNode)} messages/s** after its share of idle and reconnect work (one Node process per core, ${P.processes_per_node} per node).`, '');

  L.push('## Node count', '', '| constraint | CPU µs/s needed | nodes |', '|---|---:|---:|');
  L.push(`| messages at peak: ${f0(peakMsgs)}/s × ${f1(cpuMsg)} µs | ${f0(cpuMsgsUs)} | ${f0(Math.ceil(cpuMsgsUs / cpuBudgetUs))} |`);
  L.push(`| idle connections | ${f0(cpuIdleUs)} | ${f0(Math.ceil(cpuIdleUs / cpuBudgetUs))} |`);
  L.push(`| reconnects: ${f0(reconnectsPerS)}/s × ${f1(cpuPerReconnect)} µs | ${f0(cpuReconnUs)} | ${f0(Math.ceil(cpuReconnUs / cpuBudgetUs))} |`);
  L.push(`| **CPU total** (budget ${f0(cpuBudgetUs)} µs/s per node) | ${f0(cpuTotalUs)} | **${f0(nodesCpu)}** |`);
  L.push(`| **connections**: ${f0(P.peak_concurrent_connections)} ÷ ${f0(connPerNode)} | | **${f0(nodesConn)}** |`);
  L.push(`| **nodes** (the larger) | | **${f0(nodes)}** |`);
  L.push(`| with redundancy ×${P.redundancy_factor} | | **${f0(nodesRed)}** |`);
  L.push('');

  L.push('## What a node costs', '', '| item | value |', '|---|---:|');
  L.push(`| node | ${P.node.description} |`);
  L.push(`| price (assumption) | $${P.node.price_per_hour_usd}/hour, ${money(P.node.price_per_hour_usd * 730)}/month — ${P.node.price_note} |`);
  L.push(`| fleet, no redundancy | ${f0(nodes)} nodes, ${money(monthly(nodes))}/month |`);
  L.push(`| fleet with redundancy | ${f0(nodesRed)} nodes, ${money(monthly(nodesRed))}/month |`);
  L.push(`| per million concurrent connections | ${money(monthly(nodesRed) / (P.peak_concurrent_connections / 1e6))}/month |`);
  L.push(`| per billion messages | ${money((monthly(nodesRed) / 30.4) / (P.messages_per_day / 1e9))} |`);
  L.push('');

  L.push('## Sensitivity', '', '| if … | nodes (no redundancy) |', '|---|---:|');
  const nodesFor = (us: number) => Math.max(nodesConn, Math.ceil((peakMsgs * us + cpuIdleUs + cpuReconnUs) / cpuBudgetUs));
  L.push(`| CPU per message as at saturation (${f1(cpuMsgSat)} µs: more batching) | ${f0(nodesFor(cpuMsgSat))} |`);
  L.push(`| CPU per message at the target, 2.5× raw uWS (${f1(cpuAtTarget)} µs) | ${f0(nodesFor(cpuAtTarget))} |`);
  L.push(`| raw uWS relay's CPU per message (${f1(uwsFixed)} µs: the ceiling of this stack, no storage) | ${f0(nodesFor(uwsFixed))} |`);
  L.push(`| Socket.IO relay's CPU per message (${f1(sioFixed)} µs, no storage) | ${f0(nodesFor(sioFixed))} |`);
  if (g100) L.push(`| every message goes to a group of 100 (${f1(g100.server_cpu_us_per_msg)} µs per device delivery × 99) | ${f0(nodesFor(g100.server_cpu_us_per_msg * 99))} |`);
  L.push(`| peak ×2 instead of ×${P.peak_to_average} | ${f0(Math.max(nodesConn, Math.ceil((avgMsgs * 2 * cpuMsg + cpuIdleUs + cpuReconnUs) / cpuBudgetUs)))} |`);
  L.push('');
  if (clus) L.push(...crossNode(clus, { cpuMsg, peakMsgs, cpuBudgetUs, nodesFor }), '');
  L.push('## Method', '');
  L.push('- CPU per message is the server process\'s own CPU time (user + system, every thread, from /proc) over a run divided by the deliveries of that run; the load generator\'s CPU is not in it.');
  L.push('- Memory per connection is the slope of the server\'s RSS, after a forced garbage collection, between 1,000 and 19,000 idle authenticated connections.');
  L.push('- The node count is the larger of what CPU and what connection memory require; CPU is budgeted at the stated utilization so a node absorbs bursts.');
  L.push('- Change an assumption in `bench/capacity-params.json` and run `npm run bench -- capacity`.');
  L.push('');
  mkdirSync(join(root, 'docs'), { recursive: true });
  const file = join(root, 'docs', 'capacity.md');
  writeFileSync(file, L.join('\n'));
  return file;
}

/**
 * "Cross-node messages": what the cluster scenario measured — a message whose users and conversation are
 * on three different nodes, against one node on the same store — and what it does to the node count.
 */
function crossNode(r: ScenarioResult, m: { cpuMsg: number; peakMsgs: number; cpuBudgetUs: number; nodesFor: (us: number) => number }): string[] {
  const [one, many] = r.targets;
  const headLabel = r.summary.basis.latency?.match(/rate ([\d,]+\/s)/)?.[1];
  const a = one && headLabel ? point(one, headLabel) : undefined, b = many && headLabel ? point(many, headLabel) : undefined;
  if (!a || !b || !one || !many) return [];
  const parts = b.server_cpu_parts_us_per_msg ?? {};
  const parley = parts.parley ?? NaN, nats = parts.nats ?? NaN;
  const ratioAll = b.server_cpu_us_per_msg / a.server_cpu_us_per_msg;
  const idle = (t: TargetResult) => (t.extra.idle_cpu_cores as Record<string, number> | undefined) ?? {};
  const crossing = many.extra.crossing as { crossing_hops_per_msg?: number } | undefined;
  const L = ['## Cross-node messages', ''];
  L.push(`From the \`cluster\` scenario (${r.started_at.slice(0, 16)} UTC, \`${r.command}\`): the 1:1 relay at ${headLabel} over ${r.config.nodes} Parley nodes and ${r.config.nats_servers} nats-servers, each pair's users on two different nodes and their conversation owned by a third (${crossing?.crossing_hops_per_msg ?? '–'} of the 7 hops of a message and its receipts cross nodes), against one node on the same store in the same run. CPU is every Parley process and every nats-server, per delivered message; the CQL server is counted for neither.`, '');
  L.push('| per delivered message | one node | cluster | cluster ÷ one node |', '|---|---:|---:|---:|');
  L.push(`| server CPU, all processes | ${f1(a.server_cpu_us_per_msg)} µs | ${f1(b.server_cpu_us_per_msg)} µs | ${f1(ratioAll, 2)}× |`);
  L.push(`| of which Parley processes | ${f1(a.server_cpu_us_per_msg)} µs | ${f1(parley)} µs | ${f1(parley / a.server_cpu_us_per_msg, 2)}× |`);
  L.push(`| of which nats-servers | – | ${f1(nats)} µs | |`);
  L.push(`| idle CPU of the target (no load), cores | ${f1(idle(one).total ?? NaN, 3)} | ${f1(idle(many).total ?? NaN, 3)} (Parley ${f1(idle(many).parley ?? NaN, 3)}, NATS ${f1(idle(many).nats ?? NaN, 3)}) | |`);
  L.push(`| p99 delivery latency | ${f1(a.p99_ms, 1)} ms | ${f1(b.p99_ms, 1)} ms | |`);
  L.push(`| other processes on the machine meanwhile, cores | ${f1(a.other_cpu_cores, 2)} | ${f1(b.other_cpu_cores, 2)} | |`);
  L.push('');
  const check = r.summary.checks[0];
  L.push(`The Parley processes spend ${f1(parley - a.server_cpu_us_per_msg)} µs more per message than one node, the nats-servers ${f1(nats)} µs. The target is at most 1.5×; measured ${f1(ratioAll, 2)}×${check?.pass === null ? ', not judged: a target did not keep up (below)' : ''}.`, '');
  const runs: [TargetResult, LoadPoint][] = [[one, a], [many, b]];
  const short = runs.filter(([, p]) => p.delivered_per_s < 0.9 * (p.offered_per_s ?? 0)).map(([t, p]) => `${t.name} delivered ${f0(p.delivered_per_s)}/s of ${f0(p.offered_per_s ?? NaN)}/s offered`);
  if (short.length || Math.max(a.other_cpu_cores, b.other_cpu_cores) > 0.25) {
    L.push(`Read with care: ${[...short, `other processes used ${f1(a.other_cpu_cores, 2)} and ${f1(b.other_cpu_cores, 2)} cores of the machine during the two runs`].join('; ')}. A target at its limit spends more per message than one with room: acks come late, so deliveries are written to the inbox and deleted again instead of never written, and the fan-out retries what was not confirmed in time (the \`redelivered\` column).`, '');
  }
  const idleUs = ((idle(many).total ?? NaN) * 1e6) / (a.offered_per_s ?? NaN);
  const noIdle = r.summary.ratios[`cpu_cluster_vs_single_without_idle_at_${a.offered_per_s}`];
  L.push(`Where the rest goes: the cluster costs CPU with no message at all — ${f1(idle(many).total ?? NaN, 2)} cores here, against ${f1(idle(one).total ?? NaN, 2)} for one node: every node renews each of its shards (256 in all) by a compare-and-set on the JetStream lease bucket once a second, rescans the lease table on every change it sees, and the NATS client allocates a stack-capturing error per request; the nats-servers replicate each renewal three ways. At ${f0(a.offered_per_s ?? NaN)} messages/s that is ~${f1(idleUs)} µs of every message; it shrinks as the rate grows and grows with the shard count. Without it the cluster ÷ one node ratio is ${f1(noIdle ?? NaN, 2)}×. The rest is per message: the link's frames (at this rate about one item per NATS message, ~30 µs of CPU each across both ends), the seam codec, and the NATS client's parsing.`, '');
  if (Number.isFinite(ratioAll) && Number.isFinite(m.cpuMsg)) {
    const us = m.cpuMsg * ratioAll;
    L.push(`If every message crossed nodes like this, the message path would cost ${f1(us)} µs instead of ${f1(m.cpuMsg)} µs (the relay figure × ${f1(ratioAll, 2)}): **${f0(m.nodesFor(us))} nodes** instead of ${f0(m.nodesFor(m.cpuMsg))} (no redundancy), of which the nats-servers' share is ${f0(Math.ceil((m.peakMsgs * m.cpuMsg * (nats / b.server_cpu_us_per_msg) * ratioAll) / m.cpuBudgetUs))} nodes' worth of CPU. In a cluster of N nodes with users, conversations and user entities placed at random, a hop crosses with probability 1 − 1/N, so nearly every message is a cross-node message from a few nodes on.`);
  }
  return L;
}
