import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'cassandra-driver';
import { scratchKeyspace } from '../../src/store/scylla/scylla-store.js';
import { Fixture } from './fixture.js';

/**
 * The CQL server the tests use: PARLEY_CQL_CONTACT (host:port, default 127.0.0.1:9042) in datacenter
 * PARLEY_CQL_DATACENTER (default datacenter1). scripts/run-tests.js starts one for files whose path matches
 * /scylla|cql/; alone: `scripts/cassandra start`.
 */
export const cqlContact = (): string => process.env.PARLEY_CQL_CONTACT ?? '127.0.0.1:9042';
export const cqlDataCenter = (): string => process.env.PARLEY_CQL_DATACENTER ?? 'datacenter1';

/** A fresh keyspace name for one test file. */
export const testKeyspace = (prefix = 'parley_node'): string => scratchKeyspace(prefix);

/** The environment of a node on the Scylla store in `keyspace`. */
export function scyllaNodeEnv(keyspace: string, contact = cqlContact()): Record<string, string> {
  return {
    PARLEY_STORE: 'scylla',
    PARLEY_SCYLLA_CONTACT_POINTS: contact,
    PARLEY_SCYLLA_DC: cqlDataCenter(),
    PARLEY_SCYLLA_KEYSPACE: keyspace,
  };
}

/** A driver session for checks and cleanup; fails with a clear message when no server answers. */
/** What one test file needs for a node on the Scylla store: set in `before`, gone at `teardown`. */
export interface ScyllaNodeSetup { keyspace: string; f: Fixture; admin: Client }

/**
 * A node on the Scylla store in a keyspace of its own for one test file, and an admin session to read its
 * tables; the node stops and the keyspace is dropped when the file's tests end.
 */
export function scyllaNodeForTests(t: { before(f: () => Promise<void>): void; teardown(f: () => Promise<void>): void }, prefix: string): ScyllaNodeSetup {
  const s = { keyspace: testKeyspace(prefix) } as ScyllaNodeSetup;
  t.before(async () => {
    s.admin = await cqlAdmin();
    s.f = await Fixture.start(scyllaNodeEnv(s.keyspace));
  });
  t.teardown(async () => {
    await s.f?.destroy();
    if (s.admin) {
      await dropKeyspace(s.admin, s.keyspace);
      await s.admin.shutdown();
    }
  });
  return s;
}

/** Two development nodes on one keyspace of their own, sharing a token secret (one file's tests; gone at teardown). */
export interface TwoNodes { keyspace: string; a: Fixture; b: Fixture; admin: Client }

export function twoNodesOnOneKeyspace(t: { before(f: () => Promise<void>): void; teardown(f: () => Promise<void>): void }, prefix: string, secret: string): TwoNodes {
  const s = { keyspace: testKeyspace(prefix) } as TwoNodes;
  t.before(async () => {
    s.admin = await cqlAdmin();
    const env = { ...scyllaNodeEnv(s.keyspace), PARLEY_SECRET: secret };
    s.a = await Fixture.start(env);
    s.b = await Fixture.start(env);
  });
  t.teardown(async () => {
    await s.a?.destroy();
    await s.b?.destroy();
    if (s.admin) {
      await dropKeyspace(s.admin, s.keyspace);
      await s.admin.shutdown();
    }
  });
  return s;
}

/**
 * Reads CQL until `done` holds (or 10 s pass) and returns the last read. The `sent` tick follows the log write
 * alone, so what the fan-out writes after it (inbox rows) lands a moment later.
 */
export async function eventually<T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (done(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function cqlAdmin(contact = cqlContact()): Promise<Client> {
  const client = new Client({ contactPoints: [contact], localDataCenter: cqlDataCenter() });
  try {
    await client.connect();
  } catch (err) {
    await client.shutdown().catch(() => undefined);
    throw new Error(`no CQL server at ${contact} (${(err as Error).message}); start one with: scripts/cassandra start`);
  }
  return client;
}

export async function dropKeyspace(client: Client, keyspace: string): Promise<void> {
  await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
}

const SCRIPT = resolve(__dirname, '../../../scripts/cassandra');

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

/**
 * A Cassandra of a test's own, managed by scripts/cassandra with its own data directory and ports, for
 * tests that stop and start the database: the shared server (and whoever else uses it) is never touched.
 */
export class PrivateCassandra {
  private running = false;
  private readonly onExit = () => {
    if (this.running) spawnSync(SCRIPT, ['stop'], { env: this.env(), stdio: 'ignore' });
  };

  private constructor(readonly dataDir: string, readonly port: number, readonly storagePort: number) {
    // A test process that ends without its teardown (a timeout) still stops its server.
    process.on('exit', this.onExit);
  }

  static async create(): Promise<PrivateCassandra> {
    const dir = mkdtempSync(join(tmpdir(), 'parley-cassandra-'));
    let port = await freePort();
    let storage = await freePort();
    while (storage === port) storage = await freePort();
    return new PrivateCassandra(dir, port, storage);
  }

  get contact(): string { return `127.0.0.1:${this.port}`; }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PARLEY_CASSANDRA_DATA: this.dataDir,
      PARLEY_CQL_PORT: String(this.port),
      PARLEY_CASSANDRA_STORAGE_PORT: String(this.storagePort),
      PARLEY_CASSANDRA_HEAP: process.env.PARLEY_CASSANDRA_HEAP ?? '768m',
    };
  }

  /** Runs scripts/cassandra without blocking the event loop (clients keep talking meanwhile). */
  private run(cmd: 'start' | 'stop'): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((res) => {
      const p = spawn(SCRIPT, [cmd], { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => { stdout += d; });
      p.stderr.on('data', (d) => { stderr += d; });
      p.on('close', (status) => res({ status, stdout, stderr }));
    });
  }

  /** Starts it (or waits for it) until CQL answers; resolves with the seconds it took. */
  async start(): Promise<number> {
    const t0 = Date.now();
    this.running = true;
    const r = await this.run('start');
    if (r.status !== 0) throw new Error(`scripts/cassandra start failed:\n${r.stderr}`);
    return (Date.now() - t0) / 1000;
  }

  /** Stops it (SIGTERM: Cassandra drains) and waits for the process to exit. */
  async stop(): Promise<number> {
    const t0 = Date.now();
    const r = await this.run('stop');
    this.running = false;
    if (r.status !== 0) throw new Error(`scripts/cassandra stop failed:\n${r.stderr}`);
    return (Date.now() - t0) / 1000;
  }

  /** Stops it and removes its data. */
  async destroy(): Promise<void> {
    if (this.running) await this.stop().catch(() => undefined);
    process.removeListener('exit', this.onExit);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * A TCP proxy in front of a CQL server that can freeze: while frozen it accepts connections and bytes but
 * forwards nothing, in either direction, and on thaw delivers everything it held, in order. To the driver
 * that is a replica that stopped answering (requests time out), and whose writes may still be applied
 * later: the worst case for "did my write happen?".
 */
export class FreezableProxy {
  private frozen = false;
  private readonly held: { to: Socket; data: Buffer }[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(upstream: string): Promise<FreezableProxy> {
    const [host, port] = upstream.split(':') as [string, string];
    let proxy: FreezableProxy | undefined;
    const server = createServer((client) => {
      const up = connect({ host, port: Number(port) });
      proxy!.track(client, up);
      proxy!.track(up, client);
    });
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
    proxy = new FreezableProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  get contact(): string { return `127.0.0.1:${this.port}`; }

  private track(from: Socket, to: Socket): void {
    this.sockets.add(from);
    from.on('data', (data: Buffer) => {
      if (this.frozen) this.held.push({ to, data });
      else if (!to.destroyed) to.write(data);
    });
    from.on('error', () => undefined);
    from.on('close', () => {
      this.sockets.delete(from);
      // A close is forwarded only once nothing is held for the other side.
      const end = () => (this.frozen || this.held.some((h) => h.to === to) ? setTimeout(end, 50) : to.end());
      end();
    });
  }

  freeze(): void { this.frozen = true; }

  thaw(): void {
    this.frozen = false;
    for (const { to, data } of this.held.splice(0)) if (!to.destroyed) to.write(data);
  }

  async close(): Promise<void> {
    this.thaw();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
  }
}
