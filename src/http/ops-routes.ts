import type { TemplatedApp } from 'uWebSockets.js';
import { ParleyError } from '../protocol/errors.js';
import type { Metrics } from '../ops/metrics.js';
import type { OutboxProvider } from '../push/push-gateway.js';
import type { Accounts } from '../accounts/accounts.js';
import { bearer, handle, headers, readJson, sendJson } from './http-io.js';
import { STORE_FAULTS, type FaultInjector, type StoreFault } from '../ops/faults.js';
import { OperatorAccess } from './operator-access.js';
import type { Audit } from '../gdpr/audit.js';
import type { AnalyticsReport } from '../analytics/report.js';
import { dayOf, periodStart } from '../analytics/aggregate.js';
import type { LiveSeries } from '../ops/live-series.js';
import type { LiveReport, RegionNode, SupervisionTree } from '../ops/admin-api.js';

/**
 *   GET /healthz            liveness and this node's id; 503 while the node can't serve (cut off from its cluster)
 *   GET /metrics            Prometheus text, prom-client's registry (admin key, or a development node on loopback)
 *   GET /v1/admin/actors    the supervision tree per entity kind: counts (all time, last minute, last hour),
 *                           mailboxes, the ?top=N (20, at most 100) busiest and crash-looping entities, the last
 *                           crashes with their reasons; ?ids=1 adds up to 1,000 live ids per kind (admin key)
 *   GET /v1/admin/live      ?since=<ms>: this node's last 10 minutes at 2 s resolution (connections, sends and
 *                           deliveries per second, sent-tick and delivery p50 / p99, errors, event loop, heap), the
 *                           points after `since`; what the ops console charts (admin key)
 *   GET /v1/admin/analytics ?from=YYYY-MM-DD&to=YYYY-MM-DD (UTC, at most 400 days; default: the last 7): per day
 *                           dau, messages by kind and direct / group, media bytes, sign-ups, pushes sent, delivery
 *                           latency percentiles; mau per month; every node's rows merged (admin key)
 *   GET /v1/admin/cluster   this node's view of the cluster: members, shard owners, routing counts (admin key)
 *   GET /v1/dev/push        push notices the outbox provider holds for the caller (Bearer; and as /metrics)
 *   POST /v1/admin/faults   {type, id, times}: the entity's next messages crash it; {store, times}: the next calls
 *                           of that store operation fail (0 disarms) (only with PARLEY_FAULTS=1)
 */
export function mountOps(app: TemplatedApp, deps: {
  node: string; store: string; startedAt: number; metrics: Metrics; access: OperatorAccess; accounts: Accounts; live: LiveSeries;
  tree: (top: number, ids: boolean) => RegionNode[]; cluster?: () => unknown; unavailable?: () => string | undefined; push?: OutboxProvider; faults?: FaultInjector;
  /** Admin actions are recorded there (src/gdpr/audit.ts). */
  audit?: Audit;
  /** The analytics rows: flushes this node's first, then merges every node's (src/analytics/report.ts). */
  analytics?: (from: string, to: string) => Promise<AnalyticsReport>;
}): void {
  const { access } = deps;
  app.get('/healthz', (res) => {
    const down = deps.unavailable?.();
    // A load balancer's health check takes the node out of rotation while it can't serve.
    if (down) res.writeStatus('503 Service Unavailable');
    res.writeHeader('content-type', 'application/json').end(JSON.stringify(down ? { ok: false, node: deps.node, reason: down } : { ok: true, node: deps.node }));
  });
  app.get('/metrics', (res, req) => {
    const key = OperatorAccess.keyOf(req);
    handle(res, async (r) => {
      access.local(key);
      const text = await deps.metrics.render();
      if (!r.aborted) r.res.cork(() => r.res.writeHeader('content-type', deps.metrics.contentType).end(text));
    });
  });
  app.get('/v1/admin/actors', (res, req) => {
    const key = OperatorAccess.keyOf(req);
    const q = new URLSearchParams(req.getQuery() ?? '');
    handle(res, async (r) => {
      access.admin(key);
      const top = q.has('top') ? Number(q.get('top')) : 20;
      if (!Number.isInteger(top) || top < 0 || top > 100) throw new ParleyError('invalid', 'top is a whole number from 0 to 100');
      if (q.get('ids') === '1') deps.audit?.write({ action: 'admin.view', actor: 'admin', detail: { what: 'entity ids' } });
      const tree: SupervisionTree = { node: deps.node, at: Date.now(), regions: deps.tree(top, q.get('ids') === '1') };
      sendJson(r, 200, tree);
    });
  });
  app.get('/v1/admin/live', (res, req) => {
    const key = OperatorAccess.keyOf(req);
    const since = Number(new URLSearchParams(req.getQuery() ?? '').get('since') ?? 0);
    handle(res, async (r) => {
      access.admin(key);
      if (!Number.isFinite(since) || since < 0) throw new ParleyError('invalid', 'since is a time in ms since the epoch');
      const report: LiveReport = {
        node: deps.node, store: deps.store, startedAt: deps.startedAt, at: Date.now(), cluster: !!deps.cluster,
        intervalMs: deps.live.intervalMs, points: deps.live.since(since),
      };
      sendJson(r, 200, report);
    });
  });
  app.get('/v1/admin/analytics', (res, req) => {
    const key = OperatorAccess.keyOf(req);
    const q = new URLSearchParams(req.getQuery() ?? '');
    handle(res, async (r) => {
      access.admin(key);
      if (!deps.analytics) throw new ParleyError('not_found', 'analytics are off on this node');
      const to = q.get('to') ?? dayOf(Date.now());
      const from = q.get('from') ?? dayOf((periodStart(to) ?? Date.now()) - 6 * 86_400_000);
      sendJson(r, 200, await deps.analytics(from, to));
    });
  });
  app.get('/v1/admin/cluster', (res, req) => {
    const key = OperatorAccess.keyOf(req);
    handle(res, async (r) => {
      access.admin(key);
      if (!deps.cluster) throw new ParleyError('not_found', 'this node runs alone (PARLEY_NATS_URLS is unset)');
      sendJson(r, 200, deps.cluster());
    });
  });
  if (deps.faults) {
    const faults = deps.faults;
    app.post('/v1/admin/faults', (res, req) => {
      const key = OperatorAccess.keyOf(req);
      handle(res, async (r) => {
        const body = await readJson(r);
        access.admin(key);
        const { type, id, times, store } = body;
        const n = typeof times === 'number' && times >= 0 ? times : 1;
        if (store !== undefined) {
          if (!STORE_FAULTS.includes(store as StoreFault)) throw new ParleyError('invalid', `store must be one of ${STORE_FAULTS.join(', ')}`);
          faults.armStore(store as StoreFault, n);
          deps.audit?.write({ action: 'admin.faults', actor: 'admin', detail: { store: store as string, times: n } });
          return sendJson(r, 200, { armed: n > 0 });
        }
        if ((type !== 'user' && type !== 'conv' && type !== 'group') || typeof id !== 'string') {
          throw new ParleyError('invalid', 'type must be user, conv or group, and id a string');
        }
        faults.arm(type, id, n || 1);
        deps.audit?.write({ action: 'admin.faults', actor: 'admin', detail: { type, times: n || 1 } });
        sendJson(r, 200, { armed: true });
      });
    });
  }
  if (deps.push) {
    const push = deps.push;
    app.get('/v1/dev/push', (res, req) => {
      const h = headers(req, 'authorization', 'x-admin-key');
      handle(res, async (r) => {
        access.local(h['x-admin-key']!);
        const s = await deps.accounts.authenticate(bearer(h.authorization!));
        sendJson(r, 200, { notices: await push.list(s.user) });
      });
    });
  }
}
