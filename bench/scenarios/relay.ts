import { sleep } from '../lib/clock.js';
import type { StreamSpec, TargetKind, VuSpec } from '../load/messages.js';
import { ensureAccounts, startTarget, TARGET_NAMES, type BenchContext } from '../targets/targets.js';
import type { Check, LoadPoint, ScenarioResult, TargetResult } from '../report/types.js';
import {
  connectAll, connectFigures, emptyTarget, headline, machineInfo, memoryFigures, memorySample, partition, ratio, runPoint, setupPool,
  withSessions, type Scenario, type ScenarioOptions,
} from './common.js';

/**
 * 1:1 chat. `clients` users in pairs, each writing to its partner: first at fixed offered rates (open loop,
 * latency from the intended send time), then at saturation (closed loop, `window` messages in flight per
 * user). On Parley every message takes the full path: durable store → "sent" ack → delivery → batched ack
 * from the recipient → delivered receipt back to the sender. Every target gets the same users, rates and
 * message counts.
 */
export const relay: Scenario = {
  name: 'relay',
  title: '1:1 relay',
  async run(ctx, o) {
    const started = new Date().toISOString();
    const clients = o.clients ?? 1000;
    const rates = [...new Set([...(o.rates ?? [1000, 5000, 10000, 20000])])].sort((a, b) => a - b);
    const durationS = o.durationS ?? 5;
    const window = o.window ?? 2;
    const workers = o.workers ?? 2;
    const warmupS = o.warmupS ?? 3;
    const accounts = o.targets.includes('parley') ? await ensureAccounts(ctx, clients) : [];
    const results = await relayTargets(ctx, o, o.targets, { clients, rates, durationS, window, workers, warmupS, accounts });
    return relayResult(ctx, o, started, results, { clients, rates, durationS, window, workers, warmupS, frameBytes: o.frameBytes });
  },
};

export function pairs(kind: TargetKind, clients: number, accounts: { user: string; token: string }[]): { vus: VuSpec[]; streams: StreamSpec[] } {
  const n = clients - (clients % 2);
  const vus: VuSpec[] = Array.from({ length: n }, (_, i) => (kind === 'parley' ? { idx: i, user: accounts[i]!.user, token: accounts[i]!.token } : { idx: i }));
  const streams: StreamSpec[] = vus.map((v) => {
    const peer = v.idx ^ 1;
    return { id: v.idx, group: false, senders: [v.idx], recipients: [peer], to: kind === 'parley' ? accounts[peer]!.user : peer };
  });
  return { vus, streams };
}

/** Every target started at once; each load point runs on every target in turn before the next point. */
async function relayTargets(ctx: BenchContext, o: ScenarioOptions, kinds: TargetKind[], p: {
  clients: number; rates: number[]; durationS: number; window: number; workers: number; warmupS: number; accounts: { user: string; token: string }[];
}): Promise<TargetResult[]> {
  const results = new Map<TargetKind, TargetResult>(kinds.map((k) => [k, emptyTarget(k, TARGET_NAMES[k], p.clients)]));
  await withSessions(ctx, kinds, 'relay', p.workers, (kind) => startTarget(kind, ctx, { profileName: `relay-${kind}.cpuprofile` }), async (ss) => {
    for (const s of ss) {
      const t = results.get(s.kind)!;
      const { vus, streams } = pairs(s.kind, p.clients, p.accounts);
      await setupPool(s, partition(vus, streams, p.workers, (st) => Math.floor(st.id / 2)), o);
      await sleep(300);
      const mem0 = await memorySample(s.server);
      const conn = await connectAll(s, vus.length, `connect ${vus.length}`);
      t.connect = connectFigures(conn);
      await sleep(700);
      t.memory = memoryFigures(mem0, await memorySample(s.server), conn.connected);
    }
    if (p.warmupS > 0) for (const s of ss) await runPoint(s, { label: 'warm-up', mode: 'rate', ratePerS: Math.min(2000, p.rates[0] ?? 2000), durationS: p.warmupS, fanout: 1 }, o);
    const behind = new Map<TargetKind, string>();
    for (const rate of p.rates) {
      const label = `${rate.toLocaleString('en-US')}/s`;
      for (const s of ss) {
        const t = results.get(s.kind)!;
        if (behind.has(s.kind) && rate !== o.headlineRate) {
          t.notes.push(`${label}: skipped — the target could not sustain ${behind.get(s.kind)}; a higher offered rate would only queue (the headline rate always runs)`);
          continue;
        }
        const { point } = await runPoint(s, { label, mode: 'rate', ratePerS: rate, durationS: p.durationS, fanout: 1 }, o);
        t.points.push(point);
        if (!point.drained) t.notes.push(`${point.label}: not drained (${point.pending ? `${point.pending} still in flight at the drain cap` : 'stalled'})`);
        if (point.delivered_per_s < 0.9 * rate) behind.set(s.kind, label);
        await sleep(300);
      }
    }
    if (!o.skipSaturation) {
      for (const s of ss) {
        const { point } = await runPoint(s, { label: 'saturation', mode: 'closed', window: p.window, durationS: p.durationS, fanout: 1 }, o);
        results.get(s.kind)!.points.push(point);
        await sleep(300);
      }
    }
    for (const s of ss) results.get(s.kind)!.extra.server_open_files = s.server.openFiles();
  });
  return kinds.map((k) => results.get(k)!);
}

export function relayResult(ctx: BenchContext, o: ScenarioOptions, started: string, results: TargetResult[], config: Record<string, unknown>, scenario = 'relay', title = '1:1 relay'): ScenarioResult {
  const get = (k: TargetKind) => results.find((r) => r.target === k);
  const at = (t: TargetResult | undefined, label: string) => t?.points.find((p) => p.label === label);
  const headLabel = `${o.headlineRate.toLocaleString('en-US')}/s`;
  const sat = (t?: TargetResult) => at(t, 'saturation');
  const fixed = (t?: TargetResult) => at(t, headLabel);
  const head = (t?: TargetResult) => {
    if (!t) return null;
    const h = headline(fixed(t), t.memory, t);
    const s = sat(t);
    return { ...h, delivered_per_s: s?.delivered_per_s ?? h.delivered_per_s, server_cpu_us_per_msg: fixed(t)?.server_cpu_us_per_msg ?? null };
  };
  const parley = get('parley'), uws = get('uws'), acked = get('uws-acked'), sio = get('socketio');
  const ratios: Record<string, number | null> = {
    cpu_vs_uws_at_headline_rate: ratio(fixed(parley)?.server_cpu_us_per_msg, fixed(uws)?.server_cpu_us_per_msg),
    cpu_vs_socketio_at_headline_rate: ratio(fixed(parley)?.server_cpu_us_per_msg, fixed(sio)?.server_cpu_us_per_msg),
    // Parley against the socket cost of its own frame count: what storage, actors and encoding add.
    cpu_vs_uws_acked_at_headline_rate: ratio(fixed(parley)?.server_cpu_us_per_msg, fixed(acked)?.server_cpu_us_per_msg),
    uws_acked_vs_uws_at_headline_rate: ratio(fixed(acked)?.server_cpu_us_per_msg, fixed(uws)?.server_cpu_us_per_msg),
    cpu_vs_uws_at_saturation: ratio(sat(parley)?.server_cpu_us_per_msg, sat(uws)?.server_cpu_us_per_msg),
    cpu_vs_socketio_at_saturation: ratio(sat(parley)?.server_cpu_us_per_msg, sat(sio)?.server_cpu_us_per_msg),
    cpu_vs_uws_acked_at_saturation: ratio(sat(parley)?.server_cpu_us_per_msg, sat(acked)?.server_cpu_us_per_msg),
    throughput_vs_uws: ratio(sat(parley)?.delivered_per_s, sat(uws)?.delivered_per_s),
    throughput_vs_socketio: ratio(sat(parley)?.delivered_per_s, sat(sio)?.delivered_per_s),
    p99_vs_uws_at_headline_rate: ratio(fixed(parley)?.p99_ms, fixed(uws)?.p99_ms),
    p99_vs_socketio_at_headline_rate: ratio(fixed(parley)?.p99_ms, fixed(sio)?.p99_ms),
    memory_vs_uws: ratio(parley?.memory?.rss_bytes_per_conn, uws?.memory?.rss_bytes_per_conn),
    memory_vs_socketio: ratio(parley?.memory?.rss_bytes_per_conn, sio?.memory?.rss_bytes_per_conn),
  };
  // The peer, in both configurations (keys only when that target ran): Parley ÷ Centrifugo, and Centrifugo ÷ the raw uWS relay.
  const peers = (['centrifugo-relay', 'centrifugo-history'] as const).map((k) => [k.replace('-', '_'), get(k)] as const).filter(([, t]) => t);
  for (const [key, cf] of peers) {
    ratios[`cpu_vs_${key}_at_headline_rate`] = ratio(fixed(parley)?.server_cpu_us_per_msg, fixed(cf)?.server_cpu_us_per_msg);
    ratios[`cpu_vs_${key}_at_saturation`] = ratio(sat(parley)?.server_cpu_us_per_msg, sat(cf)?.server_cpu_us_per_msg);
    ratios[`throughput_vs_${key}`] = ratio(sat(parley)?.delivered_per_s, sat(cf)?.delivered_per_s);
    ratios[`p99_vs_${key}_at_headline_rate`] = ratio(fixed(parley)?.p99_ms, fixed(cf)?.p99_ms);
    ratios[`sent_ack_p99_vs_${key}_at_headline_rate`] = ratio(fixed(parley)?.ack_p99_ms, fixed(cf)?.ack_p99_ms);
    ratios[`memory_vs_${key}`] = ratio(parley?.memory?.rss_bytes_per_conn, cf?.memory?.rss_bytes_per_conn);
    ratios[`${key}_cpu_vs_uws_at_headline_rate`] = ratio(fixed(cf)?.server_cpu_us_per_msg, fixed(uws)?.server_cpu_us_per_msg);
  }
  for (const r of (config.rates as number[] | undefined) ?? o.rates ?? []) {
    const l = `${r.toLocaleString('en-US')}/s`;
    ratios[`cpu_vs_uws_at_${r}`] = ratio(at(parley, l)?.server_cpu_us_per_msg, at(uws, l)?.server_cpu_us_per_msg);
    ratios[`cpu_vs_socketio_at_${r}`] = ratio(at(parley, l)?.server_cpu_us_per_msg, at(sio, l)?.server_cpu_us_per_msg);
    ratios[`cpu_vs_uws_acked_at_${r}`] = ratio(at(parley, l)?.server_cpu_us_per_msg, at(acked, l)?.server_cpu_us_per_msg);
    for (const [key, cf] of peers) ratios[`cpu_vs_${key}_at_${r}`] = ratio(at(parley, l)?.server_cpu_us_per_msg, at(cf, l)?.server_cpu_us_per_msg);
  }
  const checks: Check[] = [];
  if (parley) {
    const f = fixed(parley);
    const cpuU = ratios.cpu_vs_uws_at_headline_rate;
    checks.push({ name: `server CPU/msg ≤ 2.5× uWS relay (at ${headLabel})`, value: cpuU, limit: '≤ 2.5', pass: cpuU == null ? null : cpuU <= 2.5 });
    const cpuS = ratios.cpu_vs_uws_at_saturation;
    checks.push({ name: 'server CPU/msg ≤ 2.5× uWS relay (at saturation)', value: cpuS, limit: '≤ 2.5', pass: cpuS == null ? null : cpuS <= 2.5 });
    const sioR = ratios.cpu_vs_socketio_at_headline_rate;
    checks.push({ name: `server CPU/msg below the Socket.IO relay's (at ${headLabel})`, value: sioR, limit: '< 1', pass: sioR == null ? null : sioR < 1 });
    checks.push({ name: `p99 latency at ${headLabel} < 10 ms`, value: f?.p99_ms ?? null, limit: '< 10 ms', pass: f ? f.p99_ms < 10 : null });
    checks.push({ name: `p99.9 latency at ${headLabel} < 25 ms`, value: f?.p999_ms ?? null, limit: '< 25 ms', pass: f ? f.p999_ms < 25 : null });
    if (get('centrifugo-relay')) {
      // Issue #12's peer targets: durable and still no more CPU than Centrifugo without history; as much throughput.
      const cpuC = ratios.cpu_vs_centrifugo_relay_at_headline_rate;
      checks.push({ name: `server CPU/msg ≤ Centrifugo's, no history (at ${headLabel})`, value: cpuC ?? null, limit: '≤ 1', pass: cpuC == null ? null : cpuC <= 1 });
      const thrC = ratios.throughput_vs_centrifugo_relay;
      checks.push({ name: 'saturation throughput ≥ Centrifugo\'s, no history', value: thrC ?? null, limit: '≥ 1', pass: thrC == null ? null : thrC >= 1 });
    }
  }
  for (const t of results) {
    const lost = t.points.reduce((a, p) => a + p.lost, 0), dup = t.points.reduce((a, p) => a + p.duplicated, 0);
    checks.push({ name: `${t.name}: zero lost and duplicated`, value: `${lost} lost, ${dup} dup`, limit: '0', pass: lost === 0 && dup === 0 });
    if (t.target === 'parley') {
      const rm = t.points.reduce((a, p) => a + p.receipts_missing, 0);
      checks.push({ name: 'Parley: every acked message got its delivered receipt', value: rm, limit: '0 missing', pass: rm === 0 });
    }
  }
  const basis = {
    delivered_per_s: 'saturation run (closed loop)',
    latency: `fixed offered rate ${headLabel}, from the intended send time (coordinated omission corrected)`,
    server_cpu_us_per_msg: `fixed offered rate ${headLabel}; saturation figures in ratios and points`,
    server_bytes_per_conn: `RSS growth after a forced GC over ${results[0]?.clients ?? 0} connected clients`,
  };
  const ph = head(parley);
  return {
    scenario, title, started_at: started, finished_at: new Date().toISOString(), command: o.command, machine: machineInfo(ctx), config,
    targets: results,
    summary: {
      scenario, basis,
      ...(ph ?? headline(undefined, null)),
      baselines: {
        uws: head(uws), socketio: head(sio), uws_acked: head(acked),
        ...(get('centrifugo-relay') ? { centrifugo_relay: head(get('centrifugo-relay')) } : {}),
        ...(get('centrifugo-history') ? { centrifugo_history: head(get('centrifugo-history')) } : {}),
      },
      ratios, checks,
    },
    notes: [],
  };
}

export type { LoadPoint };
