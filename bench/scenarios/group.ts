import { sleep } from '../lib/clock.js';
import type { StreamSpec, TargetKind, VuSpec } from '../load/messages.js';
import { ensureAccounts, startTarget, TARGET_NAMES, type BenchContext } from '../targets/targets.js';
import type { Check, LoadPoint, ScenarioResult, TargetResult } from '../report/types.js';
import {
  connectAll, connectFigures, emptyTarget, headline, machineInfo, memoryFigures, memorySample, partition, ratio, runPoint, setupPool,
  withSessions, type Scenario, type ScenarioOptions,
} from './common.js';

/**
 * Group fan-out. `clients` users split into groups of each size in turn (10, 100, 1000); in every group the
 * members take turns sending, `window` messages in flight per group (closed loop: a message is done when
 * every other member has it). Counted in device deliveries. On Parley the group is created through the
 * protocol (group.create) and every delivery is written to the device's inbox before it is pushed; the
 * baselines use uWS topics and Socket.IO rooms, Centrifugo one channel per group.
 */
export const group: Scenario = {
  name: 'group',
  title: 'group fan-out',
  async run(ctx, o) {
    const started = new Date().toISOString();
    const sizes = o.sizes ?? [10, 100, 1000];
    const clients = Math.max(o.clients ?? 2000, ...sizes);
    const durationS = o.durationS ?? 5;
    const window = o.window ?? 4;
    const workers = o.workers ?? 2;
    const warmupS = o.warmupS ?? 1;
    const accounts = o.targets.includes('parley') ? await ensureAccounts(ctx, clients) : [];
    const results = new Map<TargetKind, TargetResult>(o.targets.map((k) => [k, emptyTarget(k, TARGET_NAMES[k], clients)]));
    await withSessions(ctx, o.targets, 'group', workers, (kind) => startTarget(kind, ctx, { profileName: `group-${kind}.cpuprofile` }), async (ss) => {
      let first = true;
      for (const size of sizes) {
        // Each target in turn: connect and create the groups; then each load point on every target in turn.
        for (const s of ss) {
          const t = results.get(s.kind)!;
          const { vus, streams } = groups(s.kind, clients, size, accounts);
          await setupPool(s, partition(vus, streams, workers, (_st, i) => i), o);
          const mem0 = first ? await memorySample(s.server) : undefined;
          const conn = await connectAll(s, vus.length, `size ${size}: connect ${vus.length}`);
          if (first) {
            t.connect = connectFigures(conn);
            await sleep(500);
            t.memory = memoryFigures(mem0!, await memorySample(s.server), conn.connected);
          }
          const made = await s.pool.all<{ created: number; failed: number }>({ cmd: 'groups', timeoutMs: 60_000 });
          const failed = made.reduce((a, m) => a + m.failed, 0);
          if (failed) t.notes.push(`size ${size}: ${failed} groups could not be created`);
        }
        first = false;
        await sleep(1500); // the "created" system messages reach every member
        if (warmupS > 0) for (const s of ss) await runPoint(s, { label: `warm-up ${size}`, mode: 'closed', window, durationS: warmupS, fanout: size - 1 }, o);
        for (const s of ss) {
          const t = results.get(s.kind)!;
          const { point } = await runPoint(s, { label: `group of ${size}`, mode: 'closed', window, durationS, fanout: size - 1, drainS: 60 }, o);
          t.points.push(point);
          if (!point.drained) t.notes.push(`${point.label}: not drained (${point.pending ? `${point.pending} still in flight at the drain cap` : 'stalled'})`);
          await sleep(300);
        }
        for (const s of ss) await s.pool.all({ cmd: 'drop' });
        await sleep(1000);
      }
    });
    return groupResult(ctx, o, started, o.targets.map((k) => results.get(k)!), { clients, sizes, durationS, window, workers, warmupS, frameBytes: o.frameBytes });
  },
};

/** `clients` users in consecutive groups of `size`; every member sends in turn and receives the rest. */
function groups(kind: TargetKind, clients: number, size: number, accounts: { user: string; token: string }[]): { vus: VuSpec[]; streams: StreamSpec[] } {
  const count = Math.floor(clients / size);
  const n = count * size;
  const vus: VuSpec[] = Array.from({ length: n }, (_, i) => (kind === 'parley' ? { idx: i, user: accounts[i]!.user, token: accounts[i]!.token } : { idx: i }));
  const streams: StreamSpec[] = Array.from({ length: count }, (_, g) => {
    const members = Array.from({ length: size }, (_, j) => g * size + j);
    return {
      id: 100_000 + g, group: true, senders: members, recipients: members,
      ...(kind === 'parley' ? { create: { name: `bench ${size} #${g}`, members: members.slice(1).map((m) => accounts[m]!.user) } } : {}),
    };
  });
  return { vus, streams };
}

function groupResult(ctx: BenchContext, o: ScenarioOptions, started: string, results: TargetResult[], config: Record<string, unknown>): ScenarioResult {
  const get = (k: TargetKind) => results.find((r) => r.target === k);
  const at = (t: TargetResult | undefined, size: number): LoadPoint | undefined => t?.points.find((p) => p.label === `group of ${size}`);
  const head = (t?: TargetResult) => (t ? headline(at(t, 100) ?? t.points[0], t.memory, t) : null);
  const parley = get('parley'), uws = get('uws'), sio = get('socketio');
  const ratios: Record<string, number | null> = {};
  for (const size of (config.sizes as number[])) {
    ratios[`deliveries_vs_uws_size_${size}`] = ratio(at(parley, size)?.delivered_per_s, at(uws, size)?.delivered_per_s);
    ratios[`deliveries_vs_socketio_size_${size}`] = ratio(at(parley, size)?.delivered_per_s, at(sio, size)?.delivered_per_s);
    ratios[`cpu_vs_uws_size_${size}`] = ratio(at(parley, size)?.server_cpu_us_per_msg, at(uws, size)?.server_cpu_us_per_msg);
    ratios[`cpu_vs_socketio_size_${size}`] = ratio(at(parley, size)?.server_cpu_us_per_msg, at(sio, size)?.server_cpu_us_per_msg);
    for (const k of ['centrifugo-relay', 'centrifugo-history'] as const) {
      const cf = get(k), key = k.replace('-', '_');
      if (!cf) continue;
      ratios[`deliveries_vs_${key}_size_${size}`] = ratio(at(parley, size)?.delivered_per_s, at(cf, size)?.delivered_per_s);
      ratios[`cpu_vs_${key}_size_${size}`] = ratio(at(parley, size)?.server_cpu_us_per_msg, at(cf, size)?.server_cpu_us_per_msg);
    }
  }
  const checks: Check[] = [];
  const p100 = at(parley, 100);
  if (parley) checks.push({ name: 'group of 100: ≥ 150,000 device deliveries/s', value: p100?.delivered_per_s ?? null, limit: '≥ 150,000/s', pass: p100 ? p100.delivered_per_s >= 150_000 : null });
  for (const t of results) {
    const lost = t.points.reduce((a, p) => a + p.lost, 0), dup = t.points.reduce((a, p) => a + p.duplicated, 0);
    checks.push({ name: `${t.name}: zero lost and duplicated`, value: `${lost} lost, ${dup} dup`, limit: '0', pass: lost === 0 && dup === 0 });
  }
  return {
    scenario: 'group', title: 'Group fan-out', started_at: started, finished_at: new Date().toISOString(), command: o.command, machine: machineInfo(ctx), config,
    targets: results,
    summary: {
      scenario: 'group',
      basis: {
        delivered_per_s: 'device deliveries/s, group of 100, closed loop (saturation)',
        latency: 'send → each member\'s device, group of 100, under saturation (closed loop)',
        server_cpu_us_per_msg: 'server CPU per device delivery, group of 100',
        server_bytes_per_conn: 'RSS growth after a forced GC over the connected members',
      },
      ...(head(parley) ?? headline(undefined, null)),
      baselines: {
        uws: head(uws), socketio: head(sio),
        ...(get('centrifugo-relay') ? { centrifugo_relay: head(get('centrifugo-relay')) } : {}),
        ...(get('centrifugo-history') ? { centrifugo_history: head(get('centrifugo-history')) } : {}),
      },
      ratios, checks,
    },
    notes: [],
  };
}
