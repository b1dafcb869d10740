/**
 * The operator routes' answers (src/http/ops-routes.ts), as their readers type them: the ops CLI and the ops
 * console (web/ops). Types only, so a browser bundle can import them.
 */
import type { RegionNode } from '../actors/regions.js';
import type { LivePoint } from './live-series.js';

export type { AnalyticsReport, DayReport } from '../analytics/report.js';
export type { ClusterStatus } from '../cluster/cluster.js';
export type { CrashRecord, EntityRow } from '../actors/supervision-view.js';
export type { LivePoint } from './live-series.js';
export type { RegionNode } from '../actors/regions.js';


/** GET /v1/admin/actors */
export interface SupervisionTree { node: string; at: number; regions: RegionNode[] }

/** GET /v1/admin/live */
export interface LiveReport {
  node: string;
  store: string;
  startedAt: number;
  at: number;
  /** Whether the node is in a cluster (then GET /v1/admin/cluster answers). */
  cluster: boolean;
  intervalMs: number;
  points: LivePoint[];
}
