/**
 * Centrifugo v6 as a bench target: the peer a team would pick for this job instead of writing Parley. Two
 * configurations, both on the in-memory engine, one Go process each:
 *
 *   centrifugo-relay     no history: a publication goes to the channel's subscribers and is gone
 *   centrifugo-history   every channel keeps a history stream (size, TTL) and subscriptions force recovery
 *                        (so every publication also carries its offset in the stream)
 *
 * Configured like the peer it is: every user subscribes to its own user-limited channel (`user:#<user>`),
 * clients publish into each other's personal channels (client-side publish), a group is a channel its
 * members subscribe and publish to (`group:<group>`), connections authenticate with an HS256 JWT.
 * The binary is built once by scripts/centrifugo from the pinned Go module.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { GROUP_NS, PERSONAL_NS } from '../load/centrifugo-protocol.js';

export type CentrifugoKind = 'centrifugo-relay' | 'centrifugo-history';

export const CENTRIFUGO_KINDS: readonly CentrifugoKind[] = ['centrifugo-relay', 'centrifugo-history'];
export const isCentrifugo = (k: string): k is CentrifugoKind => (CENTRIFUGO_KINDS as readonly string[]).includes(k);

/**
 * History of the second configuration: per channel the last 100 publications for 5 minutes. A personal
 * channel at 10,000/s over 1,000 users gets 10/s, so 100 covers a 10 s absence; it is what recovery after a
 * short reconnect needs, and what Centrifugo's docs suggest sizing for (history is not a store).
 */
export const HISTORY = { size: 100, ttl: '300s' } as const;

export interface CentrifugoConfigOptions { port: number; secret: string; history: boolean; logLevel?: string }

/** The JSON config file of one run (v6 key names). Listens on 127.0.0.1 only; nothing reaches outside. */
export function centrifugoConfig(o: CentrifugoConfigOptions): Record<string, unknown> {
  const history = o.history ? { history_size: HISTORY.size, history_ttl: HISTORY.ttl, force_recovery: true } : {};
  return {
    http_server: { address: '127.0.0.1', port: o.port },
    log: { level: o.logLevel ?? 'warn' },
    engine: { type: 'memory' },
    client: {
      token: { hmac_secret_key: o.secret },
      // The bench's thousands of connections from one machine: no per-node connection rate limit (none by
      // default either; said here so a changed default can't throttle the run).
      connection_rate_limit: 0,
    },
    channel: {
      namespaces: [
        // Personal channels: only the user named after '#' may subscribe; anyone signed in may publish (the 1:1 send).
        { name: PERSONAL_NS, allow_user_limited_channels: true, allow_publish_for_client: true, ...history },
        // Groups: members subscribe, and publish to what they are subscribed to.
        { name: GROUP_NS, allow_subscribe_for_client: true, allow_publish_for_subscriber: true, ...history },
      ],
    },
    health: { enabled: true },
    // No call home (the machine has no network beyond its package registries), no admin UI, no server API.
    usage_stats: { disabled: true },
    admin: { enabled: false },
    http_api: { disabled: true },
    shutdown: { timeout: '3s' },
  };
}

export function writeCentrifugoConfig(dir: string, kind: CentrifugoKind, o: Omit<CentrifugoConfigOptions, 'history'>): string {
  const file = join(dir, `${kind}.json`);
  writeFileSync(file, JSON.stringify(centrifugoConfig({ ...o, history: kind === 'centrifugo-history' }), null, 2) + '\n');
  return file;
}

export type BinaryLookup = { ok: true; path: string } | { ok: false; why: string };

/** The built binary (scripts/centrifugo path: PARLEY_CENTRIFUGO, else the cache); never builds. */
export function centrifugoBinary(root: string): BinaryLookup {
  const script = join(root, 'scripts', 'centrifugo');
  if (!existsSync(script)) return { ok: false, why: `${script} is missing` };
  const r = spawnSync(script, ['path'], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return { ok: true, path: r.stdout.trim() };
  return { ok: false, why: (r.stderr || r.error?.message || 'not installed').trim() };
}

/** Whether `go` is on PATH (then scripts/centrifugo install can build the binary). */
export function goAvailable(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
}

/** Builds the binary with scripts/centrifugo install (minutes, once); its progress goes to our stderr. */
export function installCentrifugo(root: string): BinaryLookup {
  const r = spawnSync(join(root, 'scripts', 'centrifugo'), ['install'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status === 0 && r.stdout.trim()) return { ok: true, path: r.stdout.trim() };
  return { ok: false, why: `scripts/centrifugo install failed (exit ${r.status})` };
}

/**
 * Finds the binary, building it when Go is there; otherwise says how to get it. Called before a run that
 * names a Centrifugo target, so a machine without Go fails at once and clearly, not half-way through.
 */
export function ensureCentrifugo(root: string, log: (s: string) => void): string {
  const found = centrifugoBinary(root);
  if (found.ok) return found.path;
  if (!goAvailable()) {
    throw new Error('the Centrifugo targets need the centrifugo binary, and there is no `go` on PATH to build it. '
      + 'Install Go 1.24+ and run `scripts/centrifugo install` (builds the pinned module once: a few minutes), or set PARLEY_CENTRIFUGO '
      + 'to a centrifugo v6 binary, or leave centrifugo-relay/centrifugo-history out of --targets.');
  }
  log('centrifugo: not built yet: scripts/centrifugo install (once; ~4 minutes on 2 cores)');
  const built = installCentrifugo(root);
  if (!built.ok) throw new Error(`${built.why}; run scripts/centrifugo install by hand to see why, or leave the Centrifugo targets out of --targets`);
  return built.path;
}

/** A port free on 127.0.0.1 now (Centrifugo takes a port from its config, not 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}
