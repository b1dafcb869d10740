import http from 'node:http';
import { monoMs, sleep, waitFor } from '../lib/clock.js';
import type { RunStats, StreamSpec, TargetKind, VuSpec } from '../load/messages.js';
import { mergeRuns } from '../load/pool.js';
import { ensureAccounts, startTarget, TARGET_NAMES, type BenchContext } from '../targets/targets.js';
import type { Check, ScenarioResult, TargetResult } from '../report/types.js';
import {
  connectAll, connectFigures, emptyTarget, machineInfo, memoryFigures, memorySample, partition, round, runPoint, setupPool,
  withSession, type Scenario, type ScenarioOptions,
} from './common.js';

/**
 * Reconnect storm. `clients` devices (10,000) are online, then drop at once (their TCP connections are
 * cut, no close handshake). While they are away, `senders` other users send each of them `missed`
 * messages (acked by the server, i.e. durably stored). Then all of them reconnect at once, each syncing
 * from the inbox pointer it held, and must get exactly what it missed: no loss, no duplicate.
 * The baselines keep no inbox: for them only the drop-and-reconnect part is measured.
 */
export const reconnect: Scenario = {
  name: 'reconnect',
  title: 'reconnect and sync',
  async run(ctx, o) {
    const started = new Date().toISOString();
    const clients = o.clients ?? 10_000;
    const senders = Math.max(1, Math.min(200, Math.ceil(clients / 50)));
    const missed = o.missed ?? 3;
    const workers = o.workers ?? 2;
    const accounts = o.targets.includes('parley') ? await ensureAccounts(ctx, clients + senders) : [];
    const results: TargetResult[] = [];
    for (const kind of o.targets) {
      const t = emptyTarget(kind, TARGET_NAMES[kind], clients);
      await withSession(ctx, kind, `reconnect ${kind}`, workers, () => startTarget(kind, ctx, { profileName: `reconnect-${kind}.cpuprofile` }), async (s) => {
        const { vus, streams } = plan(kind, clients, senders, accounts);
        const parts = partition(vus, streams, workers, (st) => st.senders[0]! - clients);
        await setupPool(s, parts, o, 200);
        await sleep(500);
        const mem0 = await memorySample(s.server);
        const c = await connectAll(s, vus.length, `connect ${vus.length}`);
        t.connect = connectFigures(c);
        await sleep(1000);
        t.memory = memoryFigures(mem0, await memorySample(s.server), c.connected);
        const droppers = parts.map((p) => p.vus.filter((v) => v.idx < clients).map((v) => v.idx));

        // 1. drop every device at once.
        const d0 = monoMs();
        await s.pool.all((i) => ({ cmd: 'drop', vus: droppers[i] }));
        if (kind === 'parley') {
          const gone = await waitFor(async () => (await gauge(s.server.url, 'parley_connections')) <= senders, 30_000, 100);
          if (!gone) t.notes.push('the node still counted dropped sockets after 30 s');
        } else {
          await sleep(2000);
        }
        t.extra.drop_detected_s = round((monoMs() - d0) / 1000, 2);

        // 2. they miss messages (Parley only: the baselines have nowhere to keep them).
        if (kind === 'parley') {
          const { point } = await runPoint(s, { label: `send ${missed} missed messages to each`, mode: 'closed', window: 1, gate: 'ack', perStream: missed, durationS: 60, fanout: 1, drainS: 30, awaitDelivery: false }, o);
          t.extra.missed_sent = point.acked;
          t.extra.missed_send_errors = point.errors;
        }

        // 3. everyone comes back at once and syncs.
        const cpu0 = s.server.sample();
        const r = await connectAll(s, clients, `reconnect ${clients} and sync`, droppers, 120_000);
        let after: RunStats[] = [];
        if (kind === 'parley') after = await s.pool.all<RunStats>({ cmd: 'drain', timeoutMs: 120_000, stallMs: 10_000 });
        const cpu1 = s.server.sample();
        const m = mergeRuns(after);
        const seconds = (cpu1.at - cpu0.at) / 1000;
        t.points.push({
          label: `reconnect ${clients.toLocaleString('en-US')}`, mode: 'closed', offered_per_s: null, duration_s: round(seconds, 2), fanout: 1,
          sent: kind === 'parley' ? (t.extra.missed_sent as number) : 0, acked: kind === 'parley' ? (t.extra.missed_sent as number) : 0,
          delivered: m.delivered, delivered_per_s: Math.round(m.delivered / Math.max(0.001, seconds)),
          // Connect → synced, per device.
          p50_ms: r.ready.p50_ms, p90_ms: r.ready.p90_ms, p99_ms: r.ready.p99_ms, p999_ms: r.ready.p999_ms, max_ms: r.ready.max_ms,
          ack_p50_ms: null, ack_p99_ms: null,
          server_cpu_us_per_msg: round((cpu1.cpuUs - cpu0.cpuUs) / Math.max(1, r.connected), 1),
          server_cpu_cores: round((cpu1.cpuUs - cpu0.cpuUs) / 1e6 / seconds, 3), loadgen_cpu_cores: NaN, other_cpu_cores: NaN, steal_cpu_cores: NaN,
          lost: m.lost, pending: 0, duplicated: m.duplicated, errors: r.failed + m.errorCount, error_kinds: { ...r.errors, ...m.errors },
          receipts: m.receipts, receipts_missing: 0, drained: kind === 'parley' ? m.drained : true, max_issue_lag_ms: 0,
        });
        t.extra.reconnected = r.connected;
        t.extra.reconnect_failed = r.failed;
        t.extra.reconnect_seconds = round(r.seconds, 2);
        t.extra.reconnects_per_s = Math.round(r.connected / Math.max(0.001, r.seconds));
        t.extra.resent_filtered = m.resentFiltered;
        s.ctx.progress.log(`  ${TARGET_NAMES[kind]}: ${r.connected}/${clients} back in ${r.seconds.toFixed(1)} s; connect→synced p50 ${r.ready.p50_ms} ms p99 ${r.ready.p99_ms} ms; recovered ${m.delivered}, lost ${m.lost}, dup ${m.duplicated}`);
        await s.pool.all({ cmd: 'drop' });
      });
      results.push(t);
    }
    return reconnectResult(ctx, o, started, results, { clients, senders, missed, workers });
  },
};

/** Droppers 0..clients-1 each get one stream from a sender (clients..clients+senders-1) that stays online. */
function plan(kind: TargetKind, clients: number, senders: number, accounts: { user: string; token: string }[]): { vus: VuSpec[]; streams: StreamSpec[] } {
  const vus: VuSpec[] = Array.from({ length: clients + senders }, (_, i) => (kind === 'parley' ? { idx: i, user: accounts[i]!.user, token: accounts[i]!.token } : { idx: i }));
  const streams: StreamSpec[] = Array.from({ length: clients }, (_, d) => {
    const sender = clients + (d % senders);
    return { id: d, group: false, senders: [sender], recipients: [d], to: kind === 'parley' ? accounts[d]!.user : d };
  });
  return { vus, streams };
}

function gauge(base: string, name: string): Promise<number> {
  return new Promise((resolve) => {
    http.get(`${base}/metrics`, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(Number(new RegExp(`^${name} (\\S+)`, 'm').exec(body)?.[1] ?? NaN)));
    }).on('error', () => resolve(NaN));
  });
}

function reconnectResult(ctx: BenchContext, o: ScenarioOptions, started: string, results: TargetResult[], config: Record<string, unknown>): ScenarioResult {
  const get = (k: TargetKind) => results.find((r) => r.target === k);
  const head = (t?: TargetResult) => {
    const p = t?.points[0];
    return t ? {
      delivered_per_s: p?.delivered_per_s ?? null, p50_ms: p?.p50_ms ?? null, p99_ms: p?.p99_ms ?? null, p999_ms: p?.p999_ms ?? null,
      server_cpu_us_per_msg: p?.server_cpu_us_per_msg ?? null, server_bytes_per_conn: t.memory?.rss_bytes_per_conn ?? null,
      lost: p?.lost ?? 0, duplicated: p?.duplicated ?? 0, errors: p?.errors ?? 0,
    } : null;
  };
  const parley = get('parley');
  const checks: Check[] = [];
  if (parley) {
    const p = parley.points[0];
    checks.push({ name: `all ${(config.clients as number).toLocaleString('en-US')} devices reconnected and synced`, value: parley.extra.reconnected as number, limit: `= ${config.clients}`, pass: parley.extra.reconnected === config.clients });
    checks.push({ name: 'every missed message recovered: zero lost', value: p?.lost ?? null, limit: '0', pass: p ? p.lost === 0 && p.drained : null });
    checks.push({ name: 'zero duplicated', value: p?.duplicated ?? null, limit: '0', pass: p ? p.duplicated === 0 : null });
  }
  return {
    scenario: 'reconnect', title: 'Reconnect and sync', started_at: started, finished_at: new Date().toISOString(), command: o.command, machine: machineInfo(ctx), config,
    targets: results,
    summary: {
      scenario: 'reconnect',
      basis: {
        delivered_per_s: 'missed messages recovered per second during the reconnect storm',
        latency: 'p50/p99/p99.9: reconnect → inbox synced, per device',
        server_cpu_us_per_msg: 'server CPU per reconnect (with its sync)',
        server_bytes_per_conn: 'RSS growth after a forced GC over all connected clients',
      },
      ...(head(parley) ?? { delivered_per_s: null, p50_ms: null, p99_ms: null, p999_ms: null, server_cpu_us_per_msg: null, server_bytes_per_conn: null, lost: 0, duplicated: 0, errors: 0 }),
      baselines: { uws: head(get('uws')), socketio: head(get('socketio')) },
      ratios: {},
      checks,
    },
    notes: ['Baselines keep no inbox: their row is the drop-and-reconnect of bare sockets only, for scale.'],
  };
}
