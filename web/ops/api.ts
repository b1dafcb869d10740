import type { AnalyticsReport, ClusterStatus, LiveReport, SupervisionTree } from '../../src/ops/admin-api.js';

/** An answer the console shows as it is: the node's stable code and message (docs/protocol.md, "Errors"). */
export class AdminError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** The operator routes, with the admin key the operator typed (never stored beyond this tab's session). */
export class AdminApi {
  constructor(private readonly key: string) {}

  live(since: number): Promise<LiveReport> {
    return this.get(`/v1/admin/live?since=${since}`);
  }

  tree(top = 10): Promise<SupervisionTree> {
    return this.get(`/v1/admin/actors?top=${top}`);
  }

  cluster(): Promise<ClusterStatus> {
    return this.get('/v1/admin/cluster');
  }

  analytics(days: number, now = Date.now()): Promise<AnalyticsReport> {
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    return this.get(`/v1/admin/analytics?from=${day(now - (days - 1) * 86_400_000)}&to=${day(now)}`);
  }

  private async get<T>(path: string): Promise<T> {
    let r: Response;
    try {
      r = await fetch(path, { headers: { 'x-admin-key': this.key }, cache: 'no-store' });
    } catch {
      throw new AdminError(0, 'unreachable', 'The node does not answer.');
    }
    const body = await r.json().catch(() => ({})) as T & { error?: { code: string; message: string } };
    if (!r.ok) throw new AdminError(r.status, body.error?.code ?? 'internal', body.error?.message ?? `HTTP ${r.status}`);
    return body;
  }
}
