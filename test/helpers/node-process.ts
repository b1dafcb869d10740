import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { NODE_FLAGS } from '../../src/node-flags.js';

export interface RunningNode {
  /** http://127.0.0.1:PORT, or https:// when the node serves TLS (PARLEY_TLS_CERT / PARLEY_TLS_KEY). */
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  /** Lines the node wrote to stderr (its JSON log). */
  logs: string[];
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Kills the process without a graceful shutdown, as a crash would. */
  kill(): Promise<void>;
  /** Stops and removes its data directory. */
  destroy(): Promise<void>;
}

const MAIN = resolve(__dirname, '../../src/main.js');

/**
 * Tests sign in hundreds of users from 127.0.0.1, so the one-time-code limits are opened wide here; a test of
 * those limits sets strict ones explicitly (test/security/otp.test.ts).
 */
export const GENEROUS_OTP_ENV: Record<string, string> = {
  PARLEY_OTP_COOLDOWN_MS: '0',
  PARLEY_OTP_IP_CODES: '1000000/s', PARLEY_OTP_KEY_CODES: '1000000/s', PARLEY_OTP_NODE_CODES: '1000000/s',
  PARLEY_OTP_IP_GUESSES: '1000000/s', PARLEY_OTP_PHONE_GUESSES: '1000000/d', PARLEY_OTP_PHONE_IP_GUESSES: '1000000',
};

/**
 * Request shaping out of the way: tests run every client from 127.0.0.1 and flood on purpose. A test of the
 * limits themselves (test/security/shaping.test.ts) passes strict values.
 */
export const UNSHAPED: Record<string, string> = Object.fromEntries(
  ['IP_HTTP', 'IP_UPGRADE', 'USER_UPGRADE', 'FRAME_COST', 'SYNC_RESEND', 'FANOUT'].flatMap((k) => [[`PARLEY_${k}_PER_S`, '1000000'], [`PARLEY_${k}_BURST`, '1000000']]),
);

/** Starts a real node process on a free port with its own data directory, and waits until it listens. */
export async function startNodeProcess(env: Record<string, string> = {}, dataDir?: string): Promise<RunningNode> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'parley-test-'));
  // PARLEY_TEST_LOG_LEVEL: the nodes' log level (warn by default; PARLEY_TEST_VERBOSE prints their logs, prefixed by pid).
  // PARLEY_TEST_NODE_ARGS: extra node flags for the nodes a test starts (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`).
  const proc = spawn(process.execPath, [...NODE_FLAGS, ...(process.env.PARLEY_TEST_NODE_ARGS?.split(' ').filter(Boolean) ?? []), MAIN], {
    env: { ...process.env, PARLEY_PORT: '0', PARLEY_HOST: '127.0.0.1', PARLEY_DATA: dir, ...GENEROUS_OTP_ENV, PARLEY_LOG_LEVEL: process.env.PARLEY_TEST_LOG_LEVEL ?? 'warn', PARLEY_SEAM_CHECK: '1', ...UNSHAPED, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (l) => { logs.push(l); if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(`[node ${proc.pid}] ${l}\n`); });
  const { scheme, port } = await new Promise<{ scheme: string; port: number }>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`node did not start: ${logs.join('\n')}`)), 20_000);
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const m = /listening on (https?):\/\/127\.0\.0\.1:(\d+)/.exec(l);
      if (m) { clearTimeout(timer); res({ scheme: m[1]!, port: Number(m[2]) }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); rej(new Error(`node exited with ${code}: ${logs.join('\n')}`)); });
  });
  const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
  const node: RunningNode = {
    url: `${scheme}://127.0.0.1:${port}`, port, dataDir: dir, proc, logs,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    async kill() { await node.stop('SIGKILL'); },
    async destroy() {
      await node.stop();
      if (!dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return node;
}
