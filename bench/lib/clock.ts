import { performance } from 'node:perf_hooks';

/**
 * One clock for every process of a run: CLOCK_MONOTONIC (what process.hrtime reads) in milliseconds, read
 * through performance.now() for speed. A send time written by one load worker is comparable with a receive
 * time read by another, so latency can be measured across processes.
 */
const offset = Number(process.hrtime.bigint()) / 1e6 - performance.now();

export const monoMs = (): number => performance.now() + offset;
export const monoUs = (): number => (performance.now() + offset) * 1000;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when `cond()` holds, polling every `everyMs`; false when `timeoutMs` passes first. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= end) return false;
    await sleep(everyMs);
  }
}
