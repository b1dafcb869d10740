import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { configurePersistence, start as startActorSystem, stop as stopActor } from 'nact';
import { StorePersistenceEngine } from './store/persistence-engine.js';
import type { TemplatedApp } from 'uWebSockets.js';
import { DEV_API_KEY, isLoopback, type Config } from './config.js';
import { newId } from './protocol/ids.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import { LocalSharding } from './routing/local-sharding.js';
import { LocalGateway, LocalPubSub } from './routing/local-gateway.js';
import { KeyedLimiter } from './transport/rate-limit.js';
import { limitRoutesByIp } from './transport/ip-limit.js';
import { ConnectionRegistry } from './routing/connections.js';
import { mountGateway } from './transport/ws-gateway.js';
import { Conversation } from './actors/conversation.js';
import { User } from './actors/user.js';
import { Group } from './actors/group.js';
import type { ActorDeps } from './actors/deps.js';
import { Regions, answerErrors } from './actors/regions.js';
import { recoverConversations } from './actors/recovery.js';
import type { EntityType } from './messages/entity-messages.js';
import { joinCluster } from './cluster/join.js';
import { shardOf } from './cluster/placement.js';
import { TokenSigner } from './accounts/tokens.js';
import { Accounts } from './accounts/accounts.js';
import { DevOutboxSms, HttpSms } from './accounts/sms-gateway.js';
import { startPush } from './push/push-config.js';
import { recoverPushes } from './push/registrar.js';
import { openMediaBlobs } from './media/open-blobs.js';
import { MediaAccess } from './media/media-access.js';
import { MediaUrlSigner } from './media/media-urls.js';
import { UploadGate } from './media/upload-gate.js';
import { mountAccounts } from './http/account-routes.js';
import { mountDevices } from './http/device-routes.js';
import { mountMedia } from './http/media-routes.js';
import { mountOps } from './http/ops-routes.js';
import { OperatorAccess } from './http/operator-access.js';
import { countHttpErrors, sendError, track, trustProxies } from './http/http-io.js';
import { listenEdge, type ReloadOutcome } from './transport/tls.js';
import { ParleyError } from './protocol/errors.js';
import { Metrics } from './ops/metrics.js';
import { FaultInjector, faultyStore, slowAppends } from './ops/faults.js';
import { EventLoopMonitor } from './ops/event-loop.js';
import { LiveSeries } from './ops/live-series.js';
import type { RegionNode } from './ops/admin-api.js';
import { timedStore } from './ops/store-timing.js';
import { timeRoutes } from './ops/http-timing.js';
import { traceNode } from './ops/trace.js';
import { log, setLogLevel } from './log.js';
import { openAudit } from './gdpr/audit.js';
import { Erasures } from './gdpr/erasure.js';
import { ExportJobs } from './gdpr/export.js';
import { mountPrivacy } from './http/privacy-routes.js';
import { KeyDirectory } from './e2e/key-directory.js';
import { mountWeb, readWebBundle } from './http/web-routes.js';
import { Analytics } from './analytics/analytics.js';
import { AnalyticsStream } from './analytics/stream.js';
import { analyticsReport } from './analytics/report.js';

export interface ParleyNode {
  readonly id: string;
  readonly port: number;
  /** https when the node serves TLS itself. */
  readonly scheme: 'http' | 'https';
  readonly store: Store;
  /** Re-reads the TLS certificate and key (SIGHUP); a bad pair is refused and the old one kept. */
  reloadTls(): ReloadOutcome;
  close(): Promise<void>;
}

/** Wires one node: store → routing seams → actor system and regions → HTTP and WebSocket edge. */
export async function startNode(cfg: Config): Promise<ParleyNode> {
  const startedAt = Date.now();
  setLogLevel(cfg.logLevel);
  mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  const id = `n${newId(8)}`;
  const secret = cfg.secret ? Buffer.from(cfg.secret) : loadOrCreateSecret(cfg.dataDir);
  traceNode(id);
  const metrics = new Metrics();
  // Timed outside the fault's delay: it stands for a remote database's latency.
  const rawStore = await openStore(cfg);
  const faults = cfg.faults ? new FaultInjector() : undefined;
  const store = timedStore(faultyStore(slowAppends(rawStore, cfg.faultAppendDelayMs), faults), metrics);

  const system = startActorSystem(configurePersistence(new StorePersistenceEngine(store)));
  const conns = new ConnectionRegistry();
  // In a cluster the seams' cluster adapters route by shard owner over NATS (src/cluster/); alone, the local ones.
  const cluster = cfg.cluster
    ? await joinCluster(cfg.cluster, { node: id }, conns, cfg.seamCheck, {
      linkAck: (ms) => metrics.linkAck.observe(ms / 1000),
      ask: (ms, remote) => (remote ? metrics.clusterAsk.remote : metrics.clusterAsk.local).observe(ms / 1000),
    })
    : undefined;
  // Product numbers (src/analytics/): a row per period of this node's, `local` alone; events to JetStream in a cluster.
  const stream = cluster && new AnalyticsStream(cluster.nc, id, secret, {
    published: (n) => metrics.count('analytics_events_published', n), dropped: (n) => metrics.count('analytics_events_dropped', n),
  });
  // Without the stream the node still serves: its events are dropped (and counted) until a restart makes it.
  await stream?.ensure(cfg.cluster!.replicas).catch((err: unknown) => log('warn', 'analytics stream not created; its events are dropped', { error: String(err) }));
  const analytics = new Analytics(store, cluster ? id : 'local', { flushMs: cfg.analyticsFlushMs, sink: stream?.sink });
  analytics.start();
  const sharding = cluster?.node.sharding ?? new LocalSharding(id, cfg.seamCheck);
  const gateway = new LocalGateway(id, conns, cfg.seamCheck, cluster?.node.remote);
  const pubsub = cluster?.node.pubsub ?? new LocalPubSub(conns, cfg.seamCheck);
  // Pushes go out from the dispatcher, outside the entities; a dead registration comes back to its user entity as a message.
  const pushSink = metrics.pushSink();
  const { dispatcher: push, outbox } = startPush(cfg.push, {
    // One call site for both: the dispatcher's `push_<provider>_sent` is also analytics' pushes sent.
    metrics: { ...pushSink, count: (name, by = 1) => { pushSink.count(name, by); if (name.endsWith('_sent')) analytics.pushSent(by); } },
    marks: { put: (device, mark) => store.putPushMark(device, mark), delete: (device) => store.deletePushMark(device) },
    senderName: async (user) => {
      const u = await store.getUser(user);
      return u?.name && u.name !== u.phone ? u.name : undefined; // a name equal to the number is no name (User.profile)
    },
    dead: ({ user, device, push: reg }) => sharding.tell('user', user, { t: 'push.drop', device, platform: reg.platform, token: reg.token, why: 'invalid' }),
  }, store); // the dev outbox is kept in the store: any node of a cluster answers /v1/dev/push
  const budgets = { fanout: new KeyedLimiter(cfg.shaping.fanout), syncResend: new KeyedLimiter(cfg.shaping.syncResend) };
  // A delivery's latency goes to the day's analytics and to /metrics' histogram.
  const observed: ActorDeps['analytics'] = {
    message: (kind, group) => analytics.message(kind, group),
    delivered: (ms) => { analytics.delivered(ms); metrics.delivery.observe(ms / 1000); },
  };
  const deps: ActorDeps = { store, sharding, gateway, pubsub, push, budgets, analytics: observed, config: cfg };
  const answer = answerErrors(sharding, gateway);
  const regions = new Regions(system, [User.kind(deps), Conversation.kind(deps), Group.kind(deps)] as never[], answer, cfg.passivateAfterMs, faults);
  sharding.serve(regions);
  let closing = false;
  /**
   * What a node owes after a crash, sent now: the fan-out of remembered conversations (re-driven above their
   * marks) and owed pushes. Alone: all of it, at start. In a cluster: those of the shards it acquired, as it does.
   */
  const recover = (keep?: (type: EntityType, id: string) => boolean) => {
    void recoverConversations(store, sharding, () => closing, keep && ((conv) => keep('conv', conv))).then(
      (n) => n && log('info', 'remembered conversations recovered', { conversations: n }),
      (err: unknown) => log('error', 'remembered conversations did not recover', { error: String(err) }),
    );
    recoverPushes(store, push, keep && ((user) => keep('user', user))).then(
      (n) => { if (n) log('info', 'push notifications owed before the restart are being sent', { devices: n }); },
      (err: unknown) => log('warn', 'push marks not read; notifications owed before the restart are not sent', { error: String(err) }),
    );
  };
  // A shard given up: its users' pushes are the next owner's to send, from the marks (sent once, by the owner).
  const release = (keep: (type: EntityType, id: string) => boolean) => push.release((user) => keep('user', user));
  cluster?.node.attach(regions, gateway, answer, { recover, release });
  const shardOfEntity = cfg.cluster && ((type: EntityType, eid: string) => shardOf(type, eid, cfg.cluster!.shards));

  const devSms = cfg.sms.provider === 'dev' ? new DevOutboxSms(store) : undefined;
  const tokens = new TokenSigner(secret);
  const accounts = new Accounts(store, devSms ?? new HttpSms(cfg.sms.url!), tokens, secret, cfg,
    (user, device) => sharding.ask('user', user, (reply) => ({ t: 'device.added', reply, device })), (user) => analytics.signup(user));
  const media = openMediaBlobs(rawStore, join(cfg.dataDir, 'media'));
  // Export and erasure (src/gdpr/); the audit log is a destination of its own, not the node's log.
  const audit = openAudit(cfg.auditLog, id);
  const erasures = new Erasures({ store, sharding, media, audit }, (user) => store.e2e.dropUserKeys(user));
  const keys = new KeyDirectory(store, pubsub);
  const exportJobs = new ExportJobs(secret, cfg.exportTtlMs);
  // A group's conversation says who may see which of its messages (members added later see from their join).
  const mediaAccess = new MediaAccess(store, (conv, user, seq) => sharding.ask<'conv', boolean>('conv', conv, (reply) => ({ t: 'visible', reply, user, seq })));
  const { media: m } = cfg;
  const uploads = new UploadGate({
    perUser: m.uploadsPerUser, inFlight: m.uploadsInFlight, diskBytes: m.uploadDiskBytes, graceMs: m.uploadGraceMs, minBytesPerSec: m.uploadMinBytesPerSec,
  });

  metrics.gauge('connections', 'Open client WebSockets', () => conns.size);
  metrics.gauge('heap_bytes', 'V8 heap in use, bytes (as nodejs_heap_size_used_bytes)', () => process.memoryUsage().heapUsed);
  // Beside prom-client's nodejs_eventloop_lag_* (reset at each scrape): a window of its own, so two
  // scrapers, or a test reading it, see the same worst stall of the last 10 s.
  const loop = new EventLoopMonitor();
  metrics.gauge('event_loop_delay_max_10s_ms', 'The longest event-loop delay in the last 10 s, ms', () => Math.round(loop.maxMs()));
  metrics.gauge('uploads_in_flight', 'Media uploads being received', () => uploads.inFlight);
  metrics.entities(() => regions.tree());
  const live = new LiveSeries(() => ({
    connections: conns.size, sends: metrics.framesIn.get('send'), deliveries: metrics.framesOut.get('msg'),
    errors: metrics.wsErrors.total() + metrics.httpErrors.total(), sent: metrics.sendOutcome.sent, delivered: metrics.delivery,
    loopMaxMs: loop.maxMs(), heapBytes: process.memoryUsage().heapUsed, entities: regions.active(),
  }));

  trustProxies(cfg.trustProxy);
  countHttpErrors((code) => metrics.httpErrors.add(code));
  const access = new OperatorAccess(cfg.adminKey, cfg.env === 'development' && isLoopback(cfg.host));
  const ipHttp = new KeyedLimiter(cfg.shaping.ipHttp);
  const mediaUrls = new MediaUrlSigner(secret, m.urlTtlMs);
  const webFiles = readWebBundle(cfg.web.dir);
  if (!webFiles.size) log('warn', 'no web client bundle: / answers 404 until `npm run build` writes it', { dir: cfg.web.dir });
  // Runs once per app: again on every TLS reload, so per-node state lives out here, not in the mount functions.
  const mount = (raw: TemplatedApp) => {
    // Every HTTP route behind a per-address budget (but /healthz); the WebSocket upgrade has its own.
    const app = limitRoutesByIp(timeRoutes(raw, metrics.http), ipHttp, new Set(['/healthz']), metrics);
    mountGateway(app, { accounts, sharding, conns, metrics, directory: accounts, media: mediaAccess, keys, analytics }, {
      node: id, maxConnections: cfg.maxConnections, maxBackpressure: cfg.maxBackpressure,
      idleTimeoutSec: cfg.idleTimeoutSec, rate: cfg.rate, shaping: cfg.shaping, limits: cfg.limits, allowedOrigins: cfg.allowedOrigins,
      unavailable: cluster && (() => cluster.node.unavailable()),
    });
    mountAccounts(app, { accounts, store, devSms, access });
    mountDevices(app, { accounts, sharding });
    mountPrivacy(app, { accounts, store, jobs: exportJobs, erasures, audit });
    mountMedia(app, {
      accounts, tokens, store, media, access: mediaAccess, urls: mediaUrls, gate: uploads, maxBytes: cfg.limits.maxMediaBytes, analytics,
    });
    mountOps(app, { node: id, store: store.kind, startedAt, metrics, accounts, access, live, tree: (top, ids) => supervisionTree(regions, top, ids, shardOfEntity || undefined),
      cluster: cluster && (() => cluster.node.status()), unavailable: cluster && (() => cluster.node.unavailable()), push: devSms ? outbox : undefined, faults, audit,
      // This node's latest numbers first, so a report includes what it counted until now.
      analytics: async (from, to) => { await analytics.flush(); return analyticsReport(store, from, to); } });
    mountWeb(app, { files: webFiles, apiKey: cfg.web.apiKey, devOutbox: !!devSms && access.openLocally, vapidPublicKey: cfg.push.webpush?.publicKey, map: cfg.web.map });
    app.any('/*', (res) => sendError(track(res), new ParleyError('not_found', 'no such route')));
  };
  const edge = await listenEdge({ host: cfg.host, port: cfg.port, tls: cfg.tls, workDir: join(cfg.dataDir, 'tls') }, mount);
  const port = edge.port;
  log('info', 'parley node listening', { node: id, port, scheme: edge.scheme, store: store.kind, data: cfg.dataDir, env: cfg.env });
  if (cfg.env === 'development') warnDevelopment(cfg, !cfg.secret);
  // Alone, everything owed is this node's; in a cluster it takes shards now, and recovers each as it does.
  if (cluster) await cluster.start(`${edge.scheme}://${cfg.host}:${port}`);
  else recover();
  // Erasures a node left half-way (a crash, a stop) finish now (in a cluster every node resumes them: each
  // step is idempotent).
  erasures.resume().then(
    (n) => { if (n) log('info', 'unfinished erasures resumed', { erasures: n }); },
    (err: unknown) => log('warn', 'erasure markers not read; unfinished erasures resume at the next start', { error: String(err) }),
  );

  return {
    id, port, store, scheme: edge.scheme,
    reloadTls: () => edge.reload(),
    async close() {
      closing = true;
      erasures.stop();
      edge.close();
      for (const c of [...conns.all()]) c.close(1001, 'node shutting down');
      // Let accepted work finish: stored messages still fan out to inboxes, acks still land. In a cluster each
      // shard is handed over once its entities finished theirs, and the node leaves.
      stream?.publish(); // what is batched goes before leave() drains NATS (events later are dropped, counted)
      if (cluster) await cluster.leave();
      else await regions.drain(() => sharding.asking > 0);
      await analytics.stop(); // after the drain: what it counted is stored
      regions.stop();
      sharding.stop();
      push.close();
      stopActor(system);
      await store.close();
      audit.close();
      loop.stop();
      live.stop();
    },
  };
}

/** The supervision view of every region, with the live ids when asked (they are bounded to 1,000 per kind). */
function supervisionTree(regions: Regions, top: number, ids: boolean, shardOfEntity?: (type: EntityType, id: string) => number): RegionNode[] {
  const views = regions.view(top, shardOfEntity);
  if (!ids) return views;
  const byType = new Map(regions.tree().map((s) => [s.type, s.ids]));
  return views.map((v) => ({ ...v, ids: byType.get(v.type) ?? [] }));
}

/** A development node says so, and what makes it one, every time it starts. */
function warnDevelopment(cfg: Config, generatedSecret: boolean): void {
  const conveniences = [
    cfg.sms.provider === 'dev' && 'one-time codes go to a dev outbox, not by SMS',
    cfg.apiKeys.includes(DEV_API_KEY) && `the public dev API key ${DEV_API_KEY} is accepted`,
    generatedSecret && 'the token secret was generated into the data directory',
    isLoopback(cfg.host) ? 'dev outboxes and /metrics are open to this machine' : 'dev outboxes and /metrics need the admin key',
  ].filter(Boolean);
  log('warn', 'DEVELOPMENT NODE: not for production (set PARLEY_ENV=production; README, "Production checklist")', { conveniences });
}

function loadOrCreateSecret(dir: string): Buffer {
  const file = join(dir, 'secret');
  if (existsSync(file)) return readFileSync(file);
  const secret = randomBytes(32);
  writeFileSync(file, secret, { mode: 0o600 });
  return secret;
}
