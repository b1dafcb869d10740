import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

/**
 * Real nats-server processes for the link's tests and its micro-benchmark: `n` servers clustered with each
 * other (core NATS only, no JetStream), on free ports on 127.0.0.1, in a temp directory; killed and removed
 * in teardown. The binary comes from `scripts/nats install` (built once into the cache). Not the project's
 * 3-server JetStream cluster (`scripts/nats start`): each test gets its own servers, so killing one harms
 * nobody else.
 */
export interface NatsServer {
  url: string;
  pid: number;
  proc: ChildProcess;
  logs: string[];
  /** kill -9, and wait for the exit. */
  kill(): Promise<void>;
}

export interface NatsServers {
  servers: NatsServer[];
  urls: string[];
  stop(): Promise<void>;
}

const ROOT = resolve(__dirname, '../../..');

function natsBinary(): string {
  const out = execFileSync(join(ROOT, 'scripts', 'nats'), ['install'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
  return out.trim().split('\n').pop()!;
}

/** Ports nobody listens on now (held open together, so they differ). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<import('node:net').Server>((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => res(s));
  })));
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  return ports;
}

/**
 * Starts `n` clustered servers. The ports are free when picked but not reserved, so another process may bind
 * one first: a server that exits before the cluster forms (or a cluster that doesn't form) is started again on
 * fresh ports, up to three times.
 */
export async function startNatsServers(t: { teardown(fn: () => unknown): void }, n = 2): Promise<NatsServers> {
  const bin = natsBinary();
  for (let attempt = 1; ; attempt++) {
    const started = await startOnce(bin, n);
    if (!('error' in started)) {
      t.teardown(started.stop);
      return started;
    }
    if (attempt === 3) throw started.error;
  }
}

async function startOnce(bin: string, n: number): Promise<NatsServers | { error: Error }> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-nats-'));
  const ports = await freePorts(3 * n);
  const client = (i: number) => ports[i]!;
  const route = (i: number) => ports[n + i]!;
  const monitor = (i: number) => ports[2 * n + i]!;
  const servers: NatsServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < n; i++) {
    const routes = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i).map((j) => `nats://127.0.0.1:${route(j)}`);
    const conf = join(dir, `s${i}.conf`);
    writeFileSync(conf, [
      `server_name: link-s${i}`,
      `listen: 127.0.0.1:${client(i)}`,
      `http: 127.0.0.1:${monitor(i)}`,
      ...(n > 1 ? [`cluster { name: link, listen: 127.0.0.1:${route(i)}, routes: [${routes.join(', ')}] }`] : []),
    ].join('\n'));
    const proc = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    const logs: string[] = [];
    createInterface({ input: proc.stderr! }).on('line', (l) => { logs.push(l); if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(`[nats s${i}] ${l}\n`); });
    const exited = new Promise<void>((res) => proc.once('exit', () => res()));
    servers.push({
      url: `nats://127.0.0.1:${client(i)}`, pid: proc.pid!, proc, logs,
      async kill() {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        await exited;
      },
    });
  }
  // Ready when every server answers and has a route to each of the others.
  const deadline = Date.now() + 20_000;
  const failed = async (why: string) => {
    await stop();
    return { error: new Error(`${why}:\n${servers.map((s, i) => `[s${i}] ${s.logs.join('\n')}`).join('\n')}`) };
  };
  for (let i = 0; i < n; i++) {
    for (;;) {
      const gone = servers.findIndex((s) => s.proc.exitCode !== null || s.proc.signalCode !== null);
      if (gone >= 0) return failed(`nats-server s${gone} exited`);
      try {
        const r = await fetch(`http://127.0.0.1:${monitor(i)}/routez`);
        if (r.ok && ((await r.json()) as { num_routes: number }).num_routes >= n - 1) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) return failed(`nats-server s${i} not clustered after 20 s`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  return { servers, urls: servers.map((s) => s.url), stop };
}
