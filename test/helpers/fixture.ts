import { rmSync } from 'node:fs';
import { startNodeProcess, type RunningNode } from './node-process.js';
import { device, signIn, type TestDevice } from './clients.js';
import { RawSocket } from './raw-socket.js';
import type { ClientOptions } from '../../src/client/parley-client.js';
import type { SessionInfo } from '../../src/client/accounts-api.js';

/** Anything with tap's `teardown` (a test, or the root `t`). */
export interface HasTeardown { teardown(fn: () => unknown): void }

export const ADMIN_KEY = 'test-admin-key';

/**
 * One node process per test file plus the clients of each subtest: whatever a subtest opens through
 * `f.device(t)` / `f.raw(t)` is closed when that subtest ends, and the node goes when the file ends.
 */
export class Fixture {
  private readonly pastLogs: string[] = [];
  private constructor(public node: RunningNode, readonly env: Record<string, string>) {}

  static async start(env: Record<string, string> = {}): Promise<Fixture> {
    const all = { PARLEY_ADMIN_KEY: ADMIN_KEY, ...env };
    return new Fixture(await startNodeProcess(all), all);
  }

  get url(): string { return this.node.url; }

  async device(t: HasTeardown, opts: Partial<ClientOptions> & { phone?: string; session?: SessionInfo; connect?: boolean } = {}): Promise<TestDevice> {
    const d = await device(this.url, opts);
    t.teardown(() => d.close());
    return d;
  }

  /** Signs in a new user without connecting: its session and phone. */
  async signInOnly(): Promise<{ session: SessionInfo; phone: string; user: string }> {
    const s = await signIn(this.url);
    return { ...s, user: s.session.user };
  }

  /** A second device of the user `of` signed in (same phone): a new device id and token. */
  async secondDevice(t: HasTeardown, of: TestDevice, opts: Partial<ClientOptions> & { connect?: boolean } = {}): Promise<TestDevice> {
    const { session } = await signIn(this.url, of.phone);
    return this.device(t, { ...opts, session, phone: of.phone });
  }

  async raw(t: HasTeardown, token: string, format: 'msgpack' | 'json' = 'msgpack'): Promise<RawSocket> {
    const s = await RawSocket.open(this.url, token, format);
    t.teardown(() => s.close());
    return s;
  }

  /** Stops the node (SIGTERM: gracefully; SIGKILL: as a crash would) and starts a new process on the same data directory. */
  async restart(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const code = await this.node.stop(signal);
    this.pastLogs.push(...this.node.logs);
    if (signal === 'SIGTERM' && code !== 0) throw new Error(`the node exited with ${code} on SIGTERM`);
    this.node = await startNodeProcess(this.env, this.node.dataDir);
  }

  /** Error-level lines the node (and any earlier process of this fixture) logged. */
  errorLogs(): string[] {
    return [...this.pastLogs, ...this.node.logs].filter((l) => /"level":"error"/.test(l));
  }

  /** GET /v1/admin/actors: the regions by entity type. */
  async actors(): Promise<Record<string, { active: number; spawned: number; passivated: number; crashes: number; stopped: number; ids: string[] }>> {
    const r = await http(this.url, '/v1/admin/actors?ids=1', { headers: { 'x-admin-key': ADMIN_KEY } });
    if (r.status !== 200) throw new Error(`admin/actors answered ${r.status}`);
    const regions = (r.json as { regions: { type: string }[] }).regions;
    return Object.fromEntries(regions.map((x) => [x.type, x])) as never;
  }

  async destroy(): Promise<void> {
    await this.node.destroy();
    rmSync(this.node.dataDir, { recursive: true, force: true }); // also after restart(), which reuses the directory
  }
}

export interface HttpResult {
  status: number;
  headers: Headers;
  bytes: Buffer;
  /** The body parsed as JSON, when it is JSON. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** One HTTP request; never throws for a status, so tests can assert on it. */
export async function http(base: string, path: string, init: RequestInit & { json?: unknown } = {}): Promise<HttpResult> {
  const { json, ...rest } = init;
  const res = await fetch(`${base}${path}`, {
    ...rest,
    ...(json !== undefined ? { body: JSON.stringify(json), headers: { 'content-type': 'application/json', ...(rest.headers as Record<string, string>) } } : {}),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let parsed: unknown;
  try { parsed = bytes.length ? JSON.parse(bytes.toString('utf8')) : undefined; } catch { parsed = undefined; }
  return { status: res.status, headers: res.headers, bytes, json: parsed };
}
