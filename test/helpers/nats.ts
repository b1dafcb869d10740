import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { join, resolve } from 'node:path';

/**
 * A NATS cluster of a test's own: N real nats-server processes (the version scripts/nats pins, built once
 * into its cache by `scripts/nats install`), clustered, JetStream on each, on free ports on 127.0.0.1 and in
 * a temp directory. Never the development cluster of scripts/nats. A server can be killed (-9) and restarted
 * on its ports and data; `stop()` (the test's teardown) stops them all and removes the directory.
 */

const SCRIPT = resolve(__dirname, '../../../scripts/nats');

let binary: string | undefined;

/** The nats-server binary, building it on first use (once per machine; the script holds a lock). */
export function natsServerBinary(): string {
  if (binary) return binary;
  const r = spawnSync(SCRIPT, ['install'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  if (r.status !== 0) throw new Error(`scripts/nats install failed:\n${r.stderr}`);
  binary = r.stdout.trim().split('\n').at(-1)!;
  return binary;
}

async function freePort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((res, rej) => {
      const s = createServer();
      s.once('error', rej);
      s.listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => res(port));
      });
    });
    if (!taken.has(port)) { taken.add(port); return port; }
  }
}

export interface NatsServer {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  running(): boolean;
  /** The process id while it runs (the bench reads its CPU from /proc). */
  pid(): number | undefined;
  /** SIGKILL, as a crash: no goodbye to the cluster or the clients. Resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and JetStream data; resolves once it is healthy. */
  restart(): Promise<void>;
}

export interface NatsCluster {
  readonly servers: readonly NatsServer[];
  /** Every server's client URL. */
  readonly urls: string[];
  stop(): Promise<void>;
}

class Server implements NatsServer {
  private proc?: ChildProcess;
  private exited: Promise<void> = Promise.resolve();
  readonly url: string;

  constructor(readonly name: string, readonly port: number, private readonly monitor: number, private readonly conf: string, private readonly log: string) {
    this.url = `nats://127.0.0.1:${port}`;
  }

  running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  pid(): number | undefined {
    return this.running() ? this.proc!.pid : undefined;
  }

  spawn(): void {
    const proc = spawn(natsServerBinary(), ['-c', this.conf, '-l', this.log], { stdio: 'ignore' });
    this.proc = proc;
    this.exited = new Promise((res) => proc.once('exit', () => res()));
  }

  /** JetStream up on this server (meta leader known): /healthz answers 200 only then. */
  async healthy(deadline: number): Promise<void> {
    for (;;) {
      if (!this.running()) throw new Error(`nats server ${this.name} exited; see ${this.log}`);
      const ok = await fetch(`http://127.0.0.1:${this.monitor}/healthz`).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`nats server ${this.name} not healthy in time; see ${this.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async kill(): Promise<void> {
    if (this.running()) this.proc!.kill('SIGKILL');
    await this.exited;
  }

  async term(): Promise<void> {
    if (!this.running()) return;
    this.proc!.kill('SIGTERM');
    const timer = setTimeout(() => this.proc?.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    if (this.running()) throw new Error(`${this.name} is running`);
    this.spawn();
    await this.healthy(Date.now() + 30_000);
  }
}

/**
 * /healthz answers before a fresh cluster can place a replicated stream (the meta group is still
 * forming): create and remove a probe bucket with `replicas` until that works.
 */
async function replicatedReady(urls: string[], replicas: number, deadline: number): Promise<void> {
  const nc = await connect({ servers: urls });
  try {
    for (;;) {
      try {
        const kv = await new Kvm(nc).create('probe', { replicas, timeout: 2_000 });
        await kv.destroy();
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await nc.close();
  }
}

/** Starts `n` clustered servers with JetStream and waits until each is healthy. */
export async function startNatsCluster(n = 3): Promise<NatsCluster> {
  natsServerBinary();
  const dir = mkdtempSync(join(tmpdir(), 'parley-nats-'));
  const taken = new Set<number>();
  const ports: { client: number; route: number; monitor: number }[] = [];
  for (let i = 0; i < n; i++) ports.push({ client: await freePort(taken), route: await freePort(taken), monitor: await freePort(taken) });
  const servers = ports.map((p, i) => {
    const sdir = join(dir, `n${i + 1}`);
    mkdirSync(join(sdir, 'jetstream'), { recursive: true });
    const routes = ports.filter((_, j) => j !== i).map((q) => `    nats://127.0.0.1:${q.route}`).join('\n');
    const conf = join(sdir, 'nats.conf');
    writeFileSync(conf, [
      `server_name: t-n${i + 1}`,
      `listen: 127.0.0.1:${p.client}`,
      `http: 127.0.0.1:${p.monitor}`,
      `jetstream { store_dir: "${join(sdir, 'jetstream')}", max_memory_store: 64MB, max_file_store: 256MB }`,
      ...(n > 1 ? ['cluster {', '  name: parley-test', `  listen: 127.0.0.1:${p.route}`, '  routes: [', routes, '  ]', '}'] : []),
      '',
    ].join('\n'));
    return new Server(`t-n${i + 1}`, p.client, p.monitor, conf, join(sdir, 'nats.log'));
  });
  // A test process that dies without its teardown still stops its servers.
  const onExit = () => { for (const s of servers) if (s.running()) s.kill().catch(() => undefined); };
  process.on('exit', onExit);
  for (const s of servers) s.spawn();
  const deadline = Date.now() + 60_000;
  try {
    await Promise.all(servers.map((s) => s.healthy(deadline)));
    if (n > 1) await replicatedReady(servers.map((s) => s.url), n, deadline);
  } catch (e) {
    await Promise.all(servers.map((s) => s.kill()));
    throw e;
  }
  return {
    servers,
    urls: servers.map((s) => s.url),
    async stop() {
      await Promise.all(servers.map((s) => s.term()));
      process.removeListener('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
