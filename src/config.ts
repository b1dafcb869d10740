import { join } from 'node:path';
import { DEFAULT_LIMITS } from './protocol/limits.js';
import type { Limits } from './protocol/frames.js';

/** Every knob of a node, read once from the environment. Names and defaults are listed in README.md. */
export interface Config {
  host: string;
  port: number;
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
  otp: { ttlMs: number; cooldownMs: number; maxAttempts: number };
  tokenTtlMs: number;
  inboxTtlMs: number;
  /**
   * How long a delivery pushed to an online device may wait for its ack before it is written to the inbox
   * anyway; one acked in time is never written. 0 writes every delivery at once.
   */
  inboxDeferMs: number;
  maxConnections: number;
  /** Bytes buffered for one socket before the node closes it as a slow consumer. */
  maxBackpressure: number;
  idleTimeoutSec: number;
  passivateAfterMs: number;
  rate: { perSecond: number; burst: number };
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

export function loadConfig(env: Env = process.env): Config {
  const store = (env.PARLEY_STORE ?? 'lmdb') as Config['store'];
  if (store !== 'lmdb' && store !== 'scylla') throw new Error('PARLEY_STORE must be lmdb or scylla');
  const sms = (env.PARLEY_SMS ?? 'dev') as Config['sms']['provider'];
  if (sms !== 'dev' && sms !== 'http') throw new Error('PARLEY_SMS must be dev or http');
  if (sms === 'http' && !env.PARLEY_SMS_URL) throw new Error('PARLEY_SMS=http needs PARLEY_SMS_URL');
  const username = env.PARLEY_SCYLLA_USERNAME || undefined;
  const password = env.PARLEY_SCYLLA_PASSWORD ?? '';
  if (!username && env.PARLEY_SCYLLA_PASSWORD) throw new Error('PARLEY_SCYLLA_PASSWORD needs PARLEY_SCYLLA_USERNAME');
  return {
    host: env.PARLEY_HOST ?? '0.0.0.0',
    port: int(env, 'PARLEY_PORT', 8080),
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
    apiKeys: (env.PARLEY_API_KEYS ?? 'parley-dev-key').split(',').map((s) => s.trim()).filter(Boolean),
    sms: { provider: sms, url: env.PARLEY_SMS_URL },
    otp: {
      ttlMs: int(env, 'PARLEY_OTP_TTL_MS', 5 * 60_000),
      cooldownMs: int(env, 'PARLEY_OTP_COOLDOWN_MS', 30_000),
      maxAttempts: int(env, 'PARLEY_OTP_MAX_ATTEMPTS', 5),
    },
    tokenTtlMs: int(env, 'PARLEY_TOKEN_TTL_MS', 90 * 86_400_000),
    inboxTtlMs: int(env, 'PARLEY_INBOX_TTL_MS', 30 * 86_400_000),
    inboxDeferMs: int(env, 'PARLEY_INBOX_DEFER_MS', 300),
    // Kept below the 20,000 open files a process may hold here, leaving room for the store and listeners.
    maxConnections: int(env, 'PARLEY_MAX_CONNECTIONS', 19_500),
    maxBackpressure: int(env, 'PARLEY_MAX_BACKPRESSURE', 1024 * 1024),
    idleTimeoutSec: int(env, 'PARLEY_IDLE_TIMEOUT_S', 60),
    passivateAfterMs: int(env, 'PARLEY_PASSIVATE_AFTER_MS', 120_000),
    rate: { perSecond: int(env, 'PARLEY_RATE_PER_S', 200), burst: int(env, 'PARLEY_RATE_BURST', 400) },
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
  };
}
