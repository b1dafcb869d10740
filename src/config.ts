import { join, resolve } from 'node:path';
import { parseRetention, type Retention } from './gdpr/retention.js';
import { DEFAULT_LIMITS } from './protocol/limits.js';
import { RETRY_MS } from './actors/fanout.js';
import type { Limits } from './protocol/frames.js';
import { parseTrustedProxies } from './transport/client-address.js';
import type { Rate } from './transport/rate-limit.js';
import { pushConfig, type PushConfig } from './push/push-config.js';
import { clusterConfig, type ClusterConfig } from './cluster/cluster-config.js';

/** Every knob of a node, read once from the environment. Names and defaults are listed in README.md. */
export interface Config {
  /**
   * `development` (the default): conveniences on (dev SMS outbox, dev API key, a generated secret), bound to
   * loopback, and said loudly at start. `production`: refuses to start with any of them (productionProblems).
   */
  env: 'development' | 'production';
  host: string;
  port: number;
  /** Serve HTTPS and WSS with these files (reloaded on SIGHUP); plain HTTP when unset. */
  tls?: TlsFiles;
  /** Load balancers (addresses, CIDR ranges) whose PROXY protocol header names the client; empty: none. */
  trustProxy: string[];
  dataDir: string;
  store: 'lmdb' | 'scylla';
  /** LMDB: acks wait for the disk flush too (power-loss durable), not only the commit. */
  lmdbFlush: boolean;
  scylla: {
    contactPoints: string[];
    localDataCenter: string;
    keyspace: string;
    replication: string;
    consistency: string;
    serialConsistency: string;
    credentials?: { username: string; password: string };
    requestTimeoutMs: number;
    connectTimeoutMs: number;
    reconnectMaxDelayMs: number;
  };
  /** HMAC key for session tokens; generated and kept in dataDir when unset. */
  secret?: string;
  apiKeys: string[];
  sms: { provider: 'dev' | 'http'; url?: string };
  otp: OtpConfig;
  /** Lifetime of a session token; renewed while the device is in use (a sliding window). */
  tokenTtlMs: number;
  /** A device signed in less than this long ago may not sign out older devices. */
  deviceTrustMs: number;
  inboxTtlMs: number;
  /**
   * How long a delivery pushed to an online device may wait for its ack before it is written to the inbox
   * anyway; one acked in time is never written. 0 writes every delivery at once.
   */
  inboxDeferMs: number;
  /**
   * A delivery no recipient entity confirmed is sent again after `retryMs` (doubling, up to a minute); a
   * sender still without its tick after `slowMs` hears a retryable `timeout` while delivery goes on.
   */
  fanout: { retryMs: number };
  /** How long messages stay in history (src/gdpr/retention.ts); `sweepMs`: how often LMDB sweeps them. */
  retention: Retention & { sweepMs: number };
  /** The audit log's file (admin and erasure actions, src/gdpr/audit.ts): `<data>/audit.log` unless set; `-` is stdout. */
  auditLog: string;
  /** An export's job id works this long after it was asked for. */
  exportTtlMs: number;
  maxConnections: number;
  /** Bytes buffered for one socket before the node closes it as a slow consumer. */
  maxBackpressure: number;
  idleTimeoutSec: number;
  passivateAfterMs: number;
  /** How often the node writes its analytics to the store (PARLEY_ANALYTICS_FLUSH_MS). */
  analyticsFlushMs: number;
  rate: { perSecond: number; burst: number };
  /** Request shaping: token buckets (`perSecond` sustained, `burst` at once); docs/protocol.md lists them. */
  shaping: {
    /** HTTP requests per client address; /healthz is exempt. */
    ipHttp: Rate;
    /** WebSocket upgrades per client address, and per user. */
    ipUpgrades: Rate;
    userUpgrades: Rate;
    /** Cost units of expensive frames per device (src/transport/frame-cost.ts). */
    frameCost: Rate;
    /** Inbox entries a device's syncs may send again (sent to it before, not acked). */
    syncResend: Rate;
    /** Recipients of the messages of one sender, on one node. */
    fanout: Rate;
  };
  limits: Limits;
  /** Media: signed URL lifetime, and what bounds uploads (src/media/upload-gate.ts). */
  media: {
    urlTtlMs: number;
    uploadsPerUser: number;
    uploadsInFlight: number;
    uploadDiskBytes: number;
    uploadGraceMs: number;
    uploadMinBytesPerSec: number;
  };
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Enables GET /v1/admin/* when set. */
  adminKey?: string;
  /** Test and drill only: enables POST /v1/admin/faults. */
  faults: boolean;
  /** Test and drill only (with `faults`): every message append waits this long before it reaches the store (a slow store). */
  faultAppendDelayMs: number;
  /** Every message crossing the routing seam goes through its cluster codec (src/routing/seam-check.ts): on in tests. */
  seamCheck: boolean;
  /**
   * Origins (scheme://host[:port]) whose browser pages may open a WebSocket; the node's own origin always
   * may, and `*` allows any. A client that sends no Origin (an app, the CLI) is not a browser page and is let in.
   */
  allowedOrigins: string[];
  /**
   * The web client: where its built bundle is (`PARLEY_WEB_DIR`, default dist/web, which `npm run build`
   * writes), and the API key its pages sign in with (`PARLEY_WEB_API_KEY`), which any visitor can read: on
   * a development node it defaults to the first of PARLEY_API_KEYS; in production only a key set for it is
   * published, and without one the page can't sign in (src/http/web-routes.ts). `map`: the tile server its
   * location messages draw their map from (`PARLEY_MAP_TILES`, `PARLEY_MAP_ATTRIBUTION`); none when `off`.
   */
  web: { dir: string; apiKey: string; map?: WebMap };
  /** Push notifications: coalescing, retries, and each provider's credentials (src/push/push-config.ts). */
  push: PushConfig;
  /** The cluster over NATS (src/cluster/cluster-config.ts); undefined without PARLEY_NATS_URLS: one node. */
  cluster?: ClusterConfig;
}

export const DEV_API_KEY = 'parley-dev-key';

/** OpenStreetMap's own tile server and the attribution its tile policy requires (HTML: Leaflet shows it as such). */
export const OSM_TILES = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';
export const OSM_ATTRIBUTION = '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';

/** An XYZ tile template, what the map must credit, and the template's origin (the one image origin the page's CSP adds). */
export interface WebMap { tiles: string; attribution: string; origin: string }

/** `PARLEY_MAP_TILES` (an http(s) template with {z}, {x}, {y}, or `off`) and `PARLEY_MAP_ATTRIBUTION`. */
export function webMap(env: Env): WebMap | undefined {
  const tiles = env.PARLEY_MAP_TILES || OSM_TILES;
  if (tiles === 'off') return undefined;
  // {s} would spread tiles over several hosts, and the CSP would need a wildcard for them: one host only.
  if (tiles.includes('{s}')) throw new Error('PARLEY_MAP_TILES: {s} subdomains are not supported: name one tile host');
  let url: URL | undefined;
  try { url = new URL(tiles); } catch { /* reported below */ }
  if (!url || !/^https?:$/.test(url.protocol) || !['{z}', '{x}', '{y}'].every((p) => tiles.includes(p))) {
    throw new Error(`PARLEY_MAP_TILES must be off or an http(s) URL template with {z}, {x} and {y} (like ${OSM_TILES}), not ${tiles}`);
  }
  return { tiles, attribution: env.PARLEY_MAP_ATTRIBUTION || OSM_ATTRIBUTION, origin: url.origin };
}

/** Loopback: reachable from this machine only. */
export const isLoopback = (host: string): boolean => /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === 'localhost';

/**
 * What a production node must not run with, each with what to set instead; empty when it may start.
 * Pure over the environment, so the list is tested as it is, and printed whole rather than one at a time.
 */
export function productionProblems(env: Env): string[] {
  const out: string[] = [];
  const keys = (env.PARLEY_API_KEYS ?? '').split(',').map((k) => k.trim()).filter(Boolean);
  if ((env.PARLEY_SMS ?? 'dev') === 'dev') out.push('PARLEY_SMS is dev (codes stay in an outbox): set PARLEY_SMS=http and PARLEY_SMS_URL');
  if (!keys.length) out.push('PARLEY_API_KEYS is unset (the dev key would be accepted): set your apps\' keys');
  if (keys.includes(DEV_API_KEY)) out.push(`PARLEY_API_KEYS includes ${DEV_API_KEY}: remove it`);
  if (keys.some((k) => k.length < 16)) out.push('PARLEY_API_KEYS: each key needs at least 16 characters');
  if (!env.PARLEY_SECRET) out.push('PARLEY_SECRET is unset (a secret would be generated per data directory): set 32+ random characters, the same on every node');
  else if (env.PARLEY_SECRET.length < 32) out.push('PARLEY_SECRET needs at least 32 characters');
  if (env.PARLEY_WEB_API_KEY && !keys.includes(env.PARLEY_WEB_API_KEY)) out.push('PARLEY_WEB_API_KEY is not one of PARLEY_API_KEYS: the web client could not sign in');
  if (env.PARLEY_ADMIN_KEY && env.PARLEY_ADMIN_KEY.length < 16) out.push('PARLEY_ADMIN_KEY needs at least 16 characters');
  if (env.PARLEY_FAULTS === '1') out.push('PARLEY_FAULTS=1 enables fault injection: unset it');
  if (env.PARLEY_OTP_COOLDOWN_MS === '0') out.push('PARLEY_OTP_COOLDOWN_MS=0 turns off the code cooldown: unset it');
  return out;
}

export interface TlsFiles {
  /** PEM: the server certificate, optionally followed by its intermediates. */
  cert: string;
  /** PEM private key, optionally encrypted (then `passphraseFile`). */
  key: string;
  /** PEM intermediates sent after the certificate, when `cert` holds only the leaf. */
  chain?: string;
  passphraseFile?: string;
}

/** `count` per `perMs`: as a token bucket, bursts of `count`, refilled over `perMs`; as a window, `count` in it. */
export interface Allowance { count: number; perMs: number }

/** One-time codes: what a code lives and takes, and the limits on sending and guessing them (README.md). */
export interface OtpConfig {
  ttlMs: number;
  /** Wrong guesses one code takes before it is locked. */
  maxAttempts: number;
  /** The wait after a code, doubling with each code of a streak up to the max; a quiet reset ends the streak. */
  cooldownMs: number;
  cooldownMaxMs: number;
  cooldownResetMs: number;
  /** Wrong guesses per number per window, across codes and addresses (stored with the number). */
  phoneGuesses: Allowance;
  /** Of those, how many one address may make (stored with the number). */
  phoneIpGuesses: number;
  /** Wrong guesses per address across numbers (per node, in memory). */
  ipGuesses: Allowance;
  /** Codes sent per address, per API key, per node (per node, in memory). */
  ipCodes: Allowance;
  keyCodes: Allowance;
  nodeCodes: Allowance;
}

type Env = Record<string, string | undefined>;

const int = (env: Env, name: string, dflt: number): number => {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(v)}`);
  return n;
};

const positive = (env: Env, name: string, dflt: number): number => {
  const n = int(env, name, dflt);
  if (n <= 0) throw new Error(`${name} must be positive, got ${JSON.stringify(env[name])}`);
  return n;
};

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** An allowance written `N/unit` or `N/<k>unit` (units ms, s, min, h, d): `20/h`, `3/10min`, `50/s`. */
export const allowance = (env: Env, name: string, dflt: string): Allowance => {
  const v = env[name] || dflt;
  const m = /^\s*(\d+)\s*\/\s*(\d*)\s*(ms|s|min|h|d)\s*$/.exec(v);
  const count = m ? Number(m[1]) : 0;
  const perMs = m ? Number(m[2] || 1) * UNIT_MS[m[3]!]! : 0;
  if (!(count > 0 && perMs > 0)) throw new Error(`${name} must look like 20/h or 3/10min (a positive count per time), got ${JSON.stringify(v)}`);
  return { count, perMs };
};

function otpConfig(env: Env): OtpConfig {
  const cooldownMaxMs = int(env, 'PARLEY_OTP_COOLDOWN_MAX_MS', 3_600_000);
  const cooldownResetMs = int(env, 'PARLEY_OTP_COOLDOWN_RESET_MS', 6 * 3_600_000);
  // A streak that ended before its longest wait would cap the wait at the reset instead.
  if (cooldownResetMs < cooldownMaxMs) throw new Error('PARLEY_OTP_COOLDOWN_RESET_MS must be at least PARLEY_OTP_COOLDOWN_MAX_MS');
  return {
    ttlMs: int(env, 'PARLEY_OTP_TTL_MS', 5 * 60_000),
    maxAttempts: int(env, 'PARLEY_OTP_MAX_ATTEMPTS', 5),
    cooldownMs: int(env, 'PARLEY_OTP_COOLDOWN_MS', 30_000),
    cooldownMaxMs,
    cooldownResetMs,
    phoneGuesses: allowance(env, 'PARLEY_OTP_PHONE_GUESSES', '30/d'),
    phoneIpGuesses: positive(env, 'PARLEY_OTP_PHONE_IP_GUESSES', 10),
    ipGuesses: allowance(env, 'PARLEY_OTP_IP_GUESSES', '30/h'),
    ipCodes: allowance(env, 'PARLEY_OTP_IP_CODES', '20/h'),
    keyCodes: allowance(env, 'PARLEY_OTP_KEY_CODES', '20/s'),
    nodeCodes: allowance(env, 'PARLEY_OTP_NODE_CODES', '50/s'),
  };
}
const rate = (env: Env, prefix: string, perSecond: number, burst: number): Rate =>
  ({ perSecond: positive(env, `${prefix}_PER_S`, perSecond), burst: positive(env, `${prefix}_BURST`, burst) });

export function loadConfig(env: Env = process.env): Config {
  const mode = (env.PARLEY_ENV ?? 'development') as Config['env'];
  if (mode !== 'development' && mode !== 'production') throw new Error('PARLEY_ENV must be development or production');
  if (mode === 'production') {
    const problems = productionProblems(env);
    if (problems.length) throw new Error(`PARLEY_ENV=production refuses to start:\n  - ${problems.join('\n  - ')}`);
  }
  const store = (env.PARLEY_STORE ?? 'lmdb') as Config['store'];
  const apiKeys = (env.PARLEY_API_KEYS ?? DEV_API_KEY).split(',').map((s) => s.trim()).filter(Boolean);
  if (store !== 'lmdb' && store !== 'scylla') throw new Error('PARLEY_STORE must be lmdb or scylla');
  const sms = (env.PARLEY_SMS ?? 'dev') as Config['sms']['provider'];
  if (sms !== 'dev' && sms !== 'http') throw new Error('PARLEY_SMS must be dev or http');
  if (sms === 'http' && !env.PARLEY_SMS_URL) throw new Error('PARLEY_SMS=http needs PARLEY_SMS_URL');
  const username = env.PARLEY_SCYLLA_USERNAME || undefined;
  const password = env.PARLEY_SCYLLA_PASSWORD ?? '';
  if (!username && env.PARLEY_SCYLLA_PASSWORD) throw new Error('PARLEY_SCYLLA_PASSWORD needs PARLEY_SCYLLA_USERNAME');
  const tls = tlsFiles(env);
  return {
    env: mode,
    // A development node is reachable from this machine only unless told otherwise.
    host: env.PARLEY_HOST ?? (mode === 'production' ? '0.0.0.0' : '127.0.0.1'),
    port: int(env, 'PARLEY_PORT', 8080),
    ...(tls ? { tls } : {}),
    trustProxy: parseTrustedProxies(env.PARLEY_TRUST_PROXY ?? ''),
    dataDir: env.PARLEY_DATA ?? join(process.cwd(), 'data'),
    store,
    lmdbFlush: env.PARLEY_LMDB_FLUSH === '1',
    scylla: {
      contactPoints: (env.PARLEY_SCYLLA_CONTACT_POINTS ?? '127.0.0.1:9042').split(',').map((s) => s.trim()).filter(Boolean),
      localDataCenter: env.PARLEY_SCYLLA_DC ?? 'datacenter1',
      keyspace: env.PARLEY_SCYLLA_KEYSPACE ?? 'parley',
      replication: env.PARLEY_SCYLLA_REPLICATION ?? "{'class': 'SimpleStrategy', 'replication_factor': 1}",
      consistency: env.PARLEY_SCYLLA_CONSISTENCY ?? 'LOCAL_QUORUM',
      serialConsistency: env.PARLEY_SCYLLA_SERIAL_CONSISTENCY ?? 'LOCAL_SERIAL',
      ...(username ? { credentials: { username, password } } : {}),
      requestTimeoutMs: positive(env, 'PARLEY_SCYLLA_REQUEST_TIMEOUT_MS', 12_000),
      connectTimeoutMs: positive(env, 'PARLEY_SCYLLA_CONNECT_TIMEOUT_MS', 5_000),
      reconnectMaxDelayMs: positive(env, 'PARLEY_SCYLLA_RECONNECT_MAX_MS', 10_000),
    },
    secret: env.PARLEY_SECRET,
    apiKeys,
    sms: { provider: sms, url: env.PARLEY_SMS_URL },
    otp: otpConfig(env),
    tokenTtlMs: positive(env, 'PARLEY_TOKEN_TTL_MS', 30 * 86_400_000),
    deviceTrustMs: int(env, 'PARLEY_DEVICE_TRUST_MS', 86_400_000),
    inboxTtlMs: int(env, 'PARLEY_INBOX_TTL_MS', 30 * 86_400_000),
    inboxDeferMs: int(env, 'PARLEY_INBOX_DEFER_MS', 300),
    fanout: fanoutConfig(env),
    retention: { ...parseRetention(env.PARLEY_RETENTION, env.PARLEY_RETENTION_MS), sweepMs: positive(env, 'PARLEY_RETENTION_SWEEP_MS', 3_600_000) },
    auditLog: env.PARLEY_AUDIT_LOG || join(env.PARLEY_DATA ?? join(process.cwd(), 'data'), 'audit.log'),
    exportTtlMs: positive(env, 'PARLEY_EXPORT_TTL_MS', 3_600_000),
    // Kept below the 20,000 open files a process may hold here, leaving room for the store and listeners.
    maxConnections: int(env, 'PARLEY_MAX_CONNECTIONS', 19_500),
    maxBackpressure: int(env, 'PARLEY_MAX_BACKPRESSURE', 1024 * 1024),
    idleTimeoutSec: int(env, 'PARLEY_IDLE_TIMEOUT_S', 60),
    passivateAfterMs: int(env, 'PARLEY_PASSIVATE_AFTER_MS', 120_000),
    analyticsFlushMs: int(env, 'PARLEY_ANALYTICS_FLUSH_MS', 10_000),
    rate: { perSecond: int(env, 'PARLEY_RATE_PER_S', 200), burst: int(env, 'PARLEY_RATE_BURST', 400) },
    shaping: {
      ipHttp: rate(env, 'PARLEY_IP_HTTP', 100, 500),
      ipUpgrades: rate(env, 'PARLEY_IP_UPGRADE', 20, 200),
      userUpgrades: rate(env, 'PARLEY_USER_UPGRADE', 1, 10),
      frameCost: rate(env, 'PARLEY_FRAME_COST', 100, 2000),
      syncResend: rate(env, 'PARLEY_SYNC_RESEND', 20, 2000),
      // Recipients a second per sender: ~5 messages/s into a full group of 1,024, 24 at once. The group bench's
      // busiest sender needs ~25/s, a whole group of 100 at full speed 2,400/s (docs/architecture.md).
      fanout: rate(env, 'PARLEY_FANOUT', 5000, 25_000),
    },
    limits: {
      ...DEFAULT_LIMITS,
      maxBodyBytes: int(env, 'PARLEY_MAX_BODY_BYTES', DEFAULT_LIMITS.maxBodyBytes),
      maxMediaBytes: int(env, 'PARLEY_MAX_MEDIA_BYTES', DEFAULT_LIMITS.maxMediaBytes),
    },
    media: {
      urlTtlMs: positive(env, 'PARLEY_MEDIA_URL_TTL_MS', 5 * 60_000),
      uploadsPerUser: positive(env, 'PARLEY_MEDIA_UPLOADS_PER_USER', 4),
      // Each upload in flight holds two file descriptors (socket, temp file) and up to its length of disk.
      uploadsInFlight: positive(env, 'PARLEY_MEDIA_UPLOADS_MAX', 128),
      uploadDiskBytes: positive(env, 'PARLEY_MEDIA_UPLOAD_DISK_BYTES', 2 * 1024 ** 3),
      uploadGraceMs: int(env, 'PARLEY_MEDIA_UPLOAD_GRACE_MS', 10_000),
      uploadMinBytesPerSec: positive(env, 'PARLEY_MEDIA_UPLOAD_MIN_BPS', 16 * 1024),
    },
    logLevel: (env.PARLEY_LOG_LEVEL ?? 'info') as Config['logLevel'],
    adminKey: env.PARLEY_ADMIN_KEY || undefined,
    faults: env.PARLEY_FAULTS === '1',
    faultAppendDelayMs: env.PARLEY_FAULTS === '1' ? Number(env.PARLEY_FAULT_APPEND_DELAY_MS ?? 0) || 0 : 0,
    seamCheck: env.PARLEY_SEAM_CHECK === '1',
    allowedOrigins: (env.PARLEY_ALLOWED_ORIGINS ?? '').split(',').map((s) => s.trim().replace(/\/+$/, '').toLowerCase()).filter(Boolean),
    web: { dir: env.PARLEY_WEB_DIR || resolve(__dirname, '../web'), apiKey: env.PARLEY_WEB_API_KEY || (mode === 'development' ? apiKeys[0] ?? '' : ''), map: webMap(env) },
    push: pushConfig(env),
    cluster: clusterConfig(env),
  };
}

function fanoutConfig(env: Env): Config['fanout'] {
  return { retryMs: positive(env, 'PARLEY_FANOUT_RETRY_MS', RETRY_MS) };
}

function tlsFiles(env: Env): TlsFiles | undefined {
  const cert = env.PARLEY_TLS_CERT || undefined;
  const key = env.PARLEY_TLS_KEY || undefined;
  const chain = env.PARLEY_TLS_CHAIN || undefined;
  const passphraseFile = env.PARLEY_TLS_PASSPHRASE_FILE || undefined;
  if (!cert && !key) {
    if (chain || passphraseFile) throw new Error('PARLEY_TLS_CHAIN and PARLEY_TLS_PASSPHRASE_FILE need PARLEY_TLS_CERT and PARLEY_TLS_KEY');
    return undefined;
  }
  if (!cert || !key) throw new Error('TLS needs both PARLEY_TLS_CERT and PARLEY_TLS_KEY');
  return { cert, key, ...(chain ? { chain } : {}), ...(passphraseFile ? { passphraseFile } : {}) };
}
