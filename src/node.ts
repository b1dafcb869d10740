import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { configurePersistence, start as startActorSystem, stop as stopActor } from 'nact';
import { StorePersistenceEngine } from './store/persistence-engine.js';
import uWS from 'uWebSockets.js';
import type { Config } from './config.js';
import { newId } from './protocol/ids.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import { LocalRouter } from './transport/local-router.js';
import { ConnectionRegistry } from './transport/connections.js';
import { mountGateway } from './transport/ws-gateway.js';
import { Conversation } from './actors/conversation.js';
import { User } from './actors/user.js';
import { Group } from './actors/group.js';
import type { ActorDeps } from './actors/deps.js';
import { TokenSigner } from './accounts/tokens.js';
import { Accounts } from './accounts/accounts.js';
import { DevOutboxSms, HttpSms } from './accounts/sms-gateway.js';
import { OutboxPushGateway } from './push/push-gateway.js';
import { MediaStore } from './media/media-store.js';
import { MediaAccess } from './media/media-access.js';
import { MediaUrlSigner } from './media/media-urls.js';
import { UploadGate } from './media/upload-gate.js';
import { mountAccounts } from './http/account-routes.js';
import { mountMedia } from './http/media-routes.js';
import { mountOps } from './http/ops-routes.js';
import { sendJson, track } from './http/http-io.js';
import { ParleyError } from './protocol/errors.js';
import { Metrics } from './ops/metrics.js';
import { FaultInjector } from './ops/faults.js';
import { log, setLogLevel } from './log.js';

export interface ParleyNode {
  readonly id: string;
  readonly port: number;
  readonly store: Store;
  close(): Promise<void>;
}

/** Wires one node: store → actor system and regions → router → HTTP and WebSocket edge. */
export async function startNode(cfg: Config): Promise<ParleyNode> {
  setLogLevel(cfg.logLevel);
  mkdirSync(cfg.dataDir, { recursive: true });
  const id = `n${newId(8)}`;
  const secret = cfg.secret ? Buffer.from(cfg.secret) : loadOrCreateSecret(cfg.dataDir);
  const store = await openStore(cfg);
  const metrics = new Metrics();

  const system = startActorSystem(configurePersistence(new StorePersistenceEngine(store)));
  const conns = new ConnectionRegistry();
  const faults = cfg.faults ? new FaultInjector() : undefined;
  const router = new LocalRouter(id, system, conns, cfg.passivateAfterMs, faults);
  const push = new OutboxPushGateway();
  const deps: ActorDeps = { store, router, push, config: cfg };
  router.host([User.kind(deps), Conversation.kind(deps), Group.kind(deps)] as never[]);

  const devSms = cfg.sms.provider === 'dev' ? new DevOutboxSms() : undefined;
  const tokens = new TokenSigner(secret);
  const accounts = new Accounts(store, devSms ?? new HttpSms(cfg.sms.url!), tokens, secret, cfg,
    (user, device) => router.ask('user', user, (reply) => ({ t: 'device.added', reply, device })));
  const media = new MediaStore(join(cfg.dataDir, 'media'));
  // A group's conversation says who may see which of its messages (members added later see from their join).
  const mediaAccess = new MediaAccess(store, (conv, user, seq) => router.ask<'conv', boolean>('conv', conv, (reply) => ({ t: 'visible', reply, user, seq })));
  const { media: m } = cfg;
  const uploads = new UploadGate({
    perUser: m.uploadsPerUser, inFlight: m.uploadsInFlight, diskBytes: m.uploadDiskBytes, graceMs: m.uploadGraceMs, minBytesPerSec: m.uploadMinBytesPerSec,
  });

  metrics.gauge('connections', () => conns.size);
  metrics.gauge('heap_bytes', () => process.memoryUsage().heapUsed);
  metrics.gauge('uploads_in_flight', () => uploads.inFlight);
  for (const kind of ['user', 'conv', 'group']) {
    metrics.gauge(`entities_${kind}`, () => (router.tree().find((r) => r.type === kind)?.active ?? 0));
  }

  const app = uWS.App();
  mountGateway(app, { accounts, router, conns, metrics, directory: accounts, media: mediaAccess }, {
    node: id, maxConnections: cfg.maxConnections, maxBackpressure: cfg.maxBackpressure,
    idleTimeoutSec: cfg.idleTimeoutSec, rate: cfg.rate, limits: cfg.limits,
  });
  mountAccounts(app, { accounts, store, devSms });
  mountMedia(app, {
    accounts, tokens, store, media, access: mediaAccess, urls: new MediaUrlSigner(secret, m.urlTtlMs), gate: uploads, maxBytes: cfg.limits.maxMediaBytes,
  });
  mountOps(app, { node: id, metrics, accounts, adminKey: cfg.adminKey, tree: () => router.tree(), push: devSms ? push : undefined, faults });
  app.any('/*', (res) => sendJson(track(res), 404, { error: new ParleyError('not_found', 'no such route') }));

  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
    app.listen(cfg.host, cfg.port, (s) => (s ? resolve(s) : reject(new Error(`cannot listen on ${cfg.host}:${cfg.port}`))));
  });
  const port = uWS.us_socket_local_port(listenSocket);
  log('info', 'parley node listening', { node: id, port, store: store.kind, data: cfg.dataDir });

  return {
    id, port, store,
    async close() {
      uWS.us_listen_socket_close(listenSocket);
      for (const c of [...conns.all()]) c.close(1001, 'node shutting down');
      // Let accepted work finish: stored messages still fan out to inboxes, acks still land.
      await router.drain();
      router.stop();
      stopActor(system);
      await store.close();
    },
  };
}

function loadOrCreateSecret(dir: string): Buffer {
  const file = join(dir, 'secret');
  if (existsSync(file)) return readFileSync(file);
  const secret = randomBytes(32);
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}
