import type { TargetKind } from '../load/messages.js';

/** One measured load point of one target (a fixed offered rate, or the closed-loop saturation run). */
export interface LoadPoint {
  label: string;
  mode: 'rate' | 'closed';
  offered_per_s: number | null;
  duration_s: number;
  /** Recipients per message (1 for 1:1; members − 1 for a group). */
  fanout: number;
  sent: number;
  acked: number;
  delivered: number;
  /** Deliveries (device deliveries for groups) per second during the load window. */
  delivered_per_s: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  /** Send → the server's ack: Parley's "sent" (durable store), Centrifugo's publish reply; null where there is none. */
  ack_p50_ms: number | null;
  ack_p99_ms: number | null;
  /** Server process CPU time (user + system, all threads) per delivered message. */
  server_cpu_us_per_msg: number;
  /** A target of several processes (a cluster): CPU µs per delivered message of each role (parley, nats); they add up to the figure above. */
  server_cpu_parts_us_per_msg?: Record<string, number>;
  /** Server CPU time / wall time over the run (1.0 = one core busy). */
  server_cpu_cores: number;
  /** A single-process server's main thread: user and system time / wall time (1.0 together = that thread saturated). */
  server_main_thread?: { user_cores: number; sys_cores: number };
  loadgen_cpu_cores: number;
  /** CPU used by other processes of the machine during the run (noise: figures are only clean near 0). */
  other_cpu_cores: number;
  steal_cpu_cores: number;
  /** Acked by the server, never delivered: counted after a full drain, or when nothing arrived for 10 s. */
  lost: number;
  /** Acked, not delivered yet when the drain cap ran out while deliveries were still arriving (late, not lost). */
  pending: number;
  duplicated: number;
  /** Parley: a (conv, seq) delivered again to a device that had it (a fan-out retry; the SDK drops it): not a duplicate. */
  redelivered?: number;
  errors: number;
  error_kinds: Record<string, number>;
  receipts: number;
  receipts_missing: number;
  drained: boolean;
  max_issue_lag_ms: number;
}

export interface MemoryFigures {
  connections: number;
  /** VmRSS delta after a forced GC, per connection. */
  rss_bytes_per_conn: number;
  /** Anonymous memory (heap + native) delta, per connection: RSS without file-backed pages. */
  anon_bytes_per_conn: number;
  /** Live JS heap delta after a forced GC, per connection. */
  heap_bytes_per_conn: number | null;
  rss_before: number;
  rss_after: number;
}

export interface TargetResult {
  target: TargetKind;
  name: string;
  clients: number;
  connect: { connected: number; failed: number; seconds: number; per_s: number; ready_p50_ms: number; ready_p99_ms: number; errors: Record<string, number> };
  memory: MemoryFigures | null;
  points: LoadPoint[];
  extra: Record<string, unknown>;
  notes: string[];
}

export interface Check { name: string; value: number | string | null; limit: string; pass: boolean | null; note?: string }

/** The shape `--json FILE` writes, and the head of every results file. */
export interface Headline {
  delivered_per_s: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  p999_ms: number | null;
  server_cpu_us_per_msg: number | null;
  server_bytes_per_conn: number | null;
  lost: number;
  duplicated: number;
  errors: number;
}
export interface Summary extends Headline {
  scenario: string;
  /** What each headline figure is taken from. */
  basis: Record<string, string>;
  /** uws_acked: the uWS relay with Parley's frame count per message (relay only); centrifugo_*: when those targets ran; single_node: the cluster scenario's one-node figure. */
  baselines: { uws: Headline | null; socketio: Headline | null; uws_acked?: Headline | null; centrifugo_relay?: Headline | null; centrifugo_history?: Headline | null; single_node?: Headline | null };
  ratios: Record<string, number | null>;
  checks: Check[];
}

export interface ScenarioResult {
  scenario: string;
  title: string;
  started_at: string;
  finished_at: string;
  command: string;
  machine: Record<string, unknown>;
  config: Record<string, unknown>;
  targets: TargetResult[];
  summary: Summary;
  notes: string[];
  profile?: { file: string; top: ProfileEntry[] } | null;
  /** What the servers logged (the node runs at PARLEY_LOG_LEVEL=warn): the last lines per session. */
  server_logs?: Record<string, string[]>;
}

export interface ProfileEntry { function: string; location: string; self_pct: number; self_ms: number; total_pct: number }
