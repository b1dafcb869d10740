import { readFileSync } from 'node:fs';
import type { PushPlatform } from '../protocol/frames.js';
import type { UserId } from '../protocol/ids.js';
import type { DeviceId } from '../protocol/ids.js';
import type { PushRegistration, Store } from '../store/store.js';
import { APNS_REFRESH_MAX_MS, APNS_REFRESH_MIN_MS, ApnsProvider } from './apns.js';
import { FcmProvider, type ServiceAccount } from './fcm.js';
import { WebPushProvider } from './webpush.js';
import { WnsProvider } from './wns.js';
import { WebhookProvider } from './webhook.js';
import { PushDispatcher, type DispatcherConfig, type DispatcherDeps } from './dispatcher.js';
import { OutboxProvider, type PushProvider } from './push-gateway.js';

/** Push knobs (README.md, "Push notifications"): the dispatcher's, and each provider's credentials. */
export interface PushConfig {
  dispatch: DispatcherConfig;
  timeoutMs: number;
  apns?: { url: string; keyFile: string; keyId: string; teamId: string; topic: string; tokenRefreshMs: number; caFile?: string };
  fcm?: { serviceAccountFile: string; url: string; tokenUrl?: string };
  webpush?: { publicKey: string; privateKey: string; subject: string };
  wns?: { clientId: string; clientSecret: string; tokenUrl: string };
  /** Platforms without credentials go here instead of the dev outbox. */
  webhook?: { url: string; secret: string };
}

type Env = Record<string, string | undefined>;

/** The push services' own origins: a client's endpoint or channel must be on one of them. */
export const WEBPUSH_ORIGINS = [
  'https://fcm.googleapis.com', 'https://updates.push.services.mozilla.com', 'https://*.push.services.mozilla.com',
  'https://web.push.apple.com', 'https://*.notify.windows.com',
];
export const WNS_ORIGINS = ['https://*.notify.windows.com'];

const num = (env: Env, name: string, dflt: number, min = 0): number => {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number of at least ${min}, got ${JSON.stringify(v)}`);
  return n;
};
const list = (v: string | undefined, dflt: string[]): string[] =>
  v === undefined || v === '' ? dflt : v.split(',').map((s) => s.trim().replace(/\/+$/, '')).filter(Boolean);

/** All of a provider's variables or none: a half-configured provider is an error, not a silent outbox. */
function group<T>(env: Env, names: string[], build: () => T): T | undefined {
  const set = names.filter((n) => env[n]);
  if (!set.length) return undefined;
  const missing = names.filter((n) => !env[n]);
  if (missing.length) throw new Error(`${set.join(', ')} set but ${missing.join(', ')} missing`);
  return build();
}

export function pushConfig(env: Env): PushConfig {
  const mode = env.PARLEY_PUSH_ALERT ?? 'sender';
  if (mode !== 'sender' && mode !== 'wake') throw new Error('PARLEY_PUSH_ALERT must be sender or wake');
  const refresh = num(env, 'PARLEY_APNS_TOKEN_REFRESH_MS', 40 * 60_000, 1);
  if (refresh < APNS_REFRESH_MIN_MS || refresh > APNS_REFRESH_MAX_MS) throw new Error('PARLEY_APNS_TOKEN_REFRESH_MS must be between 20 and 60 minutes (Apple\'s rule)');
  return {
    dispatch: {
      coalesceMs: num(env, 'PARLEY_PUSH_COALESCE_MS', 1000),
      maxPending: num(env, 'PARLEY_PUSH_MAX_PENDING', 100_000, 1),
      concurrency: num(env, 'PARLEY_PUSH_CONCURRENCY', 32, 1),
      maxAttempts: num(env, 'PARLEY_PUSH_MAX_ATTEMPTS', 5, 1),
      retryBaseMs: num(env, 'PARLEY_PUSH_RETRY_BASE_MS', 1000, 1),
      retryMaxMs: num(env, 'PARLEY_PUSH_RETRY_MAX_MS', 5 * 60_000, 1),
      ttlSec: num(env, 'PARLEY_PUSH_TTL_S', 86_400, 0),
      mode,
      breakerFailures: num(env, 'PARLEY_PUSH_BREAKER_FAILURES', 10, 1),
      breakerOpenMs: num(env, 'PARLEY_PUSH_BREAKER_OPEN_MS', 30_000, 1),
      origins: { webpush: list(env.PARLEY_WEBPUSH_ORIGINS, WEBPUSH_ORIGINS), wns: list(env.PARLEY_WNS_ORIGINS, WNS_ORIGINS) },
    },
    timeoutMs: num(env, 'PARLEY_PUSH_TIMEOUT_MS', 10_000, 1),
    apns: group(env, ['PARLEY_APNS_KEY_FILE', 'PARLEY_APNS_KEY_ID', 'PARLEY_APNS_TEAM_ID', 'PARLEY_APNS_TOPIC'], () => ({
      url: env.PARLEY_APNS_URL || 'https://api.push.apple.com',
      keyFile: env.PARLEY_APNS_KEY_FILE!, keyId: env.PARLEY_APNS_KEY_ID!, teamId: env.PARLEY_APNS_TEAM_ID!, topic: env.PARLEY_APNS_TOPIC!,
      tokenRefreshMs: refresh,
      ...(env.PARLEY_APNS_CA_FILE ? { caFile: env.PARLEY_APNS_CA_FILE } : {}),
    })),
    fcm: group(env, ['PARLEY_FCM_SERVICE_ACCOUNT'], () => ({
      serviceAccountFile: env.PARLEY_FCM_SERVICE_ACCOUNT!,
      url: (env.PARLEY_FCM_URL || 'https://fcm.googleapis.com').replace(/\/+$/, ''),
      ...(env.PARLEY_FCM_TOKEN_URL ? { tokenUrl: env.PARLEY_FCM_TOKEN_URL } : {}),
    })),
    webpush: group(env, ['PARLEY_VAPID_PUBLIC_KEY', 'PARLEY_VAPID_PRIVATE_KEY', 'PARLEY_VAPID_SUBJECT'], () => ({
      publicKey: env.PARLEY_VAPID_PUBLIC_KEY!, privateKey: env.PARLEY_VAPID_PRIVATE_KEY!, subject: env.PARLEY_VAPID_SUBJECT!,
    })),
    wns: group(env, ['PARLEY_WNS_CLIENT_ID', 'PARLEY_WNS_CLIENT_SECRET'], () => ({
      clientId: env.PARLEY_WNS_CLIENT_ID!, clientSecret: env.PARLEY_WNS_CLIENT_SECRET!,
      tokenUrl: env.PARLEY_WNS_TOKEN_URL || 'https://login.live.com/accesstoken.srf',
    })),
    webhook: group(env, ['PARLEY_PUSH_WEBHOOK_URL', 'PARLEY_PUSH_WEBHOOK_SECRET'], () => {
      if ((env.PARLEY_PUSH_WEBHOOK_SECRET ?? '').length < 16) throw new Error('PARLEY_PUSH_WEBHOOK_SECRET needs at least 16 characters');
      return { url: env.PARLEY_PUSH_WEBHOOK_URL!, secret: env.PARLEY_PUSH_WEBHOOK_SECRET! };
    }),
  };
}

/** The providers whose credentials are configured, reading their key files now (a bad file stops the node at start). */
export function buildProviders(cfg: PushConfig): Partial<Record<PushPlatform, PushProvider>> {
  const out: Partial<Record<PushPlatform, PushProvider>> = {};
  const timeoutMs = cfg.timeoutMs;
  if (cfg.apns) {
    const a = cfg.apns;
    out.apns = new ApnsProvider({
      url: a.url, key: readFileSync(a.keyFile, 'utf8'), keyId: a.keyId, teamId: a.teamId, topic: a.topic, tokenRefreshMs: a.tokenRefreshMs,
      ...(a.caFile ? { ca: readFileSync(a.caFile, 'utf8') } : {}), timeoutMs,
    });
  }
  if (cfg.fcm) {
    const account = JSON.parse(readFileSync(cfg.fcm.serviceAccountFile, 'utf8')) as ServiceAccount;
    if (!account.client_email || !account.private_key || !account.project_id) throw new Error('PARLEY_FCM_SERVICE_ACCOUNT: not a service account key file (client_email, private_key, project_id)');
    out.fcm = new FcmProvider({ account, url: cfg.fcm.url, tokenUrl: cfg.fcm.tokenUrl ?? account.token_uri ?? 'https://oauth2.googleapis.com/token', timeoutMs });
  }
  if (cfg.webpush) out.webpush = new WebPushProvider({ ...cfg.webpush, timeoutMs });
  if (cfg.wns) out.wns = new WnsProvider({ ...cfg.wns, timeoutMs });
  return out;
}

/** The node's dispatcher: the configured providers; the webhook, else the dev outbox, for every other platform. */
export function startPush(cfg: PushConfig, deps: Omit<DispatcherDeps, 'providers' | 'fallback'> & { dead(to: { user: UserId; device: DeviceId; push: PushRegistration }): void }, outboxStore?: Pick<Store, 'devOutboxAdd' | 'devOutboxList'>) {
  const outbox = new OutboxProvider(1000, outboxStore);
  const fallback = cfg.webhook ? new WebhookProvider({ ...cfg.webhook, timeoutMs: cfg.timeoutMs }) : outbox;
  const dispatcher = new PushDispatcher(cfg.dispatch, { ...deps, providers: buildProviders(cfg), fallback });
  return { dispatcher, outbox };
}
