import { alive, sampleProc, sumSamples, type ProcSample } from '../lib/proc.js';
import type { ServerProcess } from './server-process.js';

/** A process of a target that the bench measures but did not start as a ServerProcess (a nats-server). */
export interface MeasuredProcess { role: string; pid(): number | undefined }

/**
 * Several processes measured as one target: a cluster's Parley nodes (role `parley`) and its NATS servers.
 * `sample()` adds every process up, so the scenarios' CPU per message is the whole cluster's;
 * `sampleParts()` gives each role's share. Clients use the first node's URL unless they are given their own.
 */
export function serverGroup(name: string, nodes: ServerProcess[], others: MeasuredProcess[], stopOthers: () => Promise<void>): ServerProcess {
  const first = nodes[0]!;
  const othersOf = (role: string) => others.filter((o) => o.role === role).map((o) => o.pid()).filter((p): p is number => p !== undefined && alive(p)).map(sampleProc);
  const parts = (): Record<string, ProcSample> => {
    const out: Record<string, ProcSample> = { parley: sumSamples(nodes.map((n) => n.sample())) };
    for (const role of new Set(others.map((o) => o.role))) out[role] = sumSamples(othersOf(role));
    return out;
  };
  return {
    name, url: first.url, port: first.port, pid: first.pid,
    get logs() { return nodes.flatMap((n, i) => n.logs.map((l) => `[node ${i + 1}] ${l}`)); },
    sample: () => sumSamples(Object.values(parts())),
    sampleParts: parts,
    openFiles: () => nodes.reduce((a, n) => a + n.openFiles(), 0),
    async gc() { return (await Promise.all(nodes.map((n) => n.gc()))).every(Boolean); },
    async heapUsed() {
      const h = await Promise.all(nodes.map((n) => n.heapUsed()));
      return h.every((x) => x !== undefined) ? h.reduce((a, x) => a + x!, 0) : undefined;
    },
    heapByConstructor: async () => undefined,
    alive: () => nodes.every((n) => n.alive()),
    async stop(graceMs) {
      const codes = await Promise.all(nodes.map((n) => n.stop(graceMs)));
      await stopOthers();
      return codes.find((c) => c !== 0 && c !== null) ?? codes[0] ?? null;
    },
  };
}
