/**
 * What the cluster's link costs per item: `Links` between two connections on one real nats-server (both ends
 * in this process), against a raw `nc.publish` per item to a plain subscription — the floor of core NATS,
 * with no order, no acks, no retransmission. The sender hands over `chunk` items per macrotask (the tells
 * of one busy node turn to one peer), as fast as the receiver takes them (closed loop: the link's window,
 * and for raw publishes at most a window's worth unreceived). Prints one JSON line per run: items/s, CPU µs
 * per item of this process (sender + receiver) and of the nats-server.
 *
 *   npm run build && node dist/bench/micro/link.js [items=200000] [bytes=100] [chunks=1,10,100,1000]
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Links } from '../../src/cluster/links.js';
import { sampleProc } from '../lib/proc.js';
import { startNatsServers } from '../../test/helpers/nats-link-servers.js';

const [itemsArg, bytesArg, chunksArg] = process.argv.slice(2);
const items = Number(itemsArg ?? 200_000);
const bytes = Number(bytesArg ?? 100);
const chunks = (chunksArg ?? '1,10,100,1000').split(',').map(Number);
const WINDOW = 20_000;

const teardown: (() => unknown)[] = [];
const payload = (n: number): Uint8Array => {
  const b = new Uint8Array(bytes);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};
const tick = () => new Promise<void>((res) => setImmediate(res));

interface Run { mode: string; chunk: number; items: number; bytes: number; wall_s: number; items_per_s: number; node_cpu_us_per_item: number; nats_cpu_us_per_item: number; frames_per_item?: number; lost?: number }

async function measure(mode: string, chunk: number, natsPid: number, go: () => Promise<Partial<Run>>): Promise<Run> {
  const cpu0 = process.cpuUsage();
  const srv0 = sampleProc(natsPid);
  const t0 = performance.now();
  const extra = await go();
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const srv = sampleProc(natsPid).cpuUs - srv0.cpuUs;
  return {
    mode, chunk, items, bytes, wall_s: +wall.toFixed(2), items_per_s: Math.round(items / wall),
    node_cpu_us_per_item: +((cpu.user + cpu.system) / items).toFixed(2), nats_cpu_us_per_item: +(srv / items).toFixed(2), ...extra,
  };
}

async function linkRun(ncA: NatsConnection, ncB: NatsConnection, chunk: number, natsPid: number, round: number): Promise<Run> {
  // Fresh node names per run: every run starts with a hello, as a new peer would.
  const a = new Links(ncA, `a${round}`);
  const b = new Links(ncB, `b${round}`);
  let got = 0;
  let bad = 0;
  b.onItem((_from, it) => { if (new DataView(it.buffer, it.byteOffset).getUint32(0) !== ++got) bad++; });
  const run = await measure('link', chunk, natsPid, async () => {
    let n = 1;
    while (n <= items) {
      for (let k = 0; k < chunk && n <= items; k++) {
        if (a.send(b.self, payload(n))) n++;
        else break; // window full: the next macrotask tries again
      }
      await tick();
    }
    while (got < items) await tick();
    return {};
  });
  const s = a.stats();
  a.close();
  b.close();
  if (bad) throw new Error(`${bad} items out of order`);
  return { ...run, frames_per_item: +((s.framesOut + b.stats().framesOut) / items).toFixed(4) };
}

async function rawRun(ncA: NatsConnection, ncB: NatsConnection, chunk: number, natsPid: number, round: number): Promise<Run> {
  const subject = `raw.${round}`;
  let got = 0;
  const sub = ncB.subscribe(subject, { callback: () => { got++; } });
  await ncB.flush();
  const run = await measure('raw', chunk, natsPid, async () => {
    let n = 1;
    while (n <= items) {
      if (n - got < WINDOW) for (let k = 0; k < chunk && n <= items; k++) ncA.publish(subject, payload(n++));
      await tick();
    }
    // Core NATS may drop (a slow consumer): stop waiting once nothing more comes for a while.
    let last = -1;
    let quiet = 0;
    while (got < items && quiet < 200) { await tick(); if (got === last) quiet++; else { quiet = 0; last = got; } }
    return { lost: items - got };
  });
  sub.unsubscribe();
  return run;
}

async function main(): Promise<void> {
  const nats = await startNatsServers({ teardown: (fn) => teardown.push(fn) }, 1);
  const url = nats.urls[0]!;
  const ncA = await connect({ servers: url, name: 'bench-a' });
  const ncB = await connect({ servers: url, name: 'bench-b' });
  const pid = nats.servers[0]!.pid;
  let round = 0;
  // A warm-up of each, unreported: the JIT and the connections' buffers.
  await linkRun(ncA, ncB, 100, pid, round++);
  await rawRun(ncA, ncB, 100, pid, round++);
  for (const chunk of chunks) {
    console.log(JSON.stringify(await linkRun(ncA, ncB, chunk, pid, round++)));
    console.log(JSON.stringify(await rawRun(ncA, ncB, chunk, pid, round++)));
  }
  await ncA.close();
  await ncB.close();
  for (const fn of teardown) await fn();
}

main().catch((e) => { console.error(e); process.exit(1); });
