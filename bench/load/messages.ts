/** The coordinator ↔ load-worker protocol (child_process IPC, "advanced" serialization). */

/**
 * `uws-acked`: the uWS relay driven with Parley's frame count per message (see bench/baselines/uws-relay.ts).
 * `centrifugo-relay` / `centrifugo-history`: Centrifugo v6 without and with history + recovery (bench/targets/centrifugo.ts).
 */
export type TargetKind = 'parley' | 'uws' | 'uws-acked' | 'socketio' | 'centrifugo-relay' | 'centrifugo-history';

export const TARGET_KINDS: readonly TargetKind[] = ['parley', 'uws', 'uws-acked', 'socketio', 'centrifugo-relay', 'centrifugo-history'];

/** Targets whose server acks each send (Parley's "sent", Centrifugo's publish reply): the rest count a send as acked. */
export const serverAcks = (k: TargetKind): boolean => k === 'parley' || k === 'centrifugo-relay' || k === 'centrifugo-history';

export interface VuSpec {
  /** Global index of the virtual user: its number on the baselines, its slot in the account pool on Parley. */
  idx: number;
  /** Parley user id and session token. */
  user?: string;
  token?: string;
  /** Inbox pointer held by the device (Parley). */
  ptr?: number;
  /** The node this VU connects to (Parley in a cluster: http://host:port); default the setup's url. */
  url?: string;
}

/**
 * A stream is what the accounting counts in: messages numbered n = 1, 2, … from its senders to its
 * recipients. A 1:1 stream is one user writing to one other; a group stream is one group.
 * Every sender and recipient of a stream lives in the same worker, so loss is checked locally.
 */
export interface StreamSpec {
  id: number;
  group: boolean;
  /** VU indexes; a group's senders take turns. */
  senders: number[];
  recipients: number[];
  /** The 1:1 recipient (user id on Parley, number on the baselines). */
  to?: string | number;
  /** Parley group: created by senders[0] with these member user ids. */
  create?: { name: string; members: string[] };
}

export interface SetupCmd {
  cmd: 'setup';
  kind: TargetKind;
  url: string;
  vus: VuSpec[];
  streams: StreamSpec[];
  addresses: string[];
  frameBytes: number;
  connectConcurrency: number;
  connectRetries: number;
  /** Centrifugo: the HMAC secret the worker signs its users' connection tokens with. */
  jwtSecret?: string;
}
export interface ConnectCmd { cmd: 'connect'; vus?: number[]; timeoutMs: number }
export interface GroupsCmd { cmd: 'groups'; timeoutMs: number }
export interface RunCmd {
  cmd: 'run';
  /** 'rate': open loop at ratePerS (intended send times: coordinated-omission-free latency); 'closed': `window` in flight per stream. */
  mode: 'rate' | 'closed';
  ratePerS: number;
  window: number;
  /** What frees a window slot in closed mode: the delivery to every recipient, or the server's ack. */
  gate: 'delivery' | 'ack';
  /** Send exactly this many per stream, then stop (closed mode); 0 = until the duration ends. */
  perStream: number;
  startAt: number;
  durationMs: number;
  maxMessages: number;
  /** Wait this long after the last send for acks, deliveries (and receipts) to arrive. 0 = don't wait. */
  drainMs: number;
  /** False: the drain waits for the server's acks only (recipients are offline). */
  awaitDelivery: boolean;
  /** The drain gives up early when nothing arrived for this long (the rest is lost, not late). */
  stallMs: number;
  /** Only record latencies of messages sent at or after this (monotonic ms). */
  recordFrom: number;
}
export interface DrainCmd { cmd: 'drain'; timeoutMs: number; stallMs: number }
export interface DropCmd { cmd: 'drop'; vus?: number[] }
export interface PingCmd { cmd: 'ping'; sample: number; timeoutMs: number }
export interface CloseCmd { cmd: 'close' }
export type WorkerCmd = SetupCmd | ConnectCmd | GroupsCmd | RunCmd | DrainCmd | DropCmd | PingCmd | CloseCmd;

export interface ConnectResult {
  connected: number;
  failed: number;
  /** Connect → ready (Parley: welcome and inbox synced), µs, encoded histogram. */
  readyHist: string;
  synced: number;
  errors: Record<string, number>;
}

export interface RunStats {
  sent: number;
  acked: number;
  /** Deliveries expected from what was acked (recipients other than the sender). */
  expected: number;
  delivered: number;
  deliveredInWindow: number;
  duplicated: number;
  lost: number;
  /** Parley 1:1: acked messages the sender never got a delivered receipt for. */
  receiptsMissing: number;
  receipts: number;
  /** Messages a reconnecting device was resent and dropped by pointer, as the SDK does (not duplicates). */
  resentFiltered: number;
  /** Parley: deliveries of a (conv, seq) the device already had (the fan-out's retry), dropped as the SDK drops them. */
  redelivered: number;
  errors: Record<string, number>;
  /** Send → delivery latency, µs. */
  hist: string;
  /** Send → server ack (Parley's "sent", after durable store; Centrifugo's publish reply), µs. */
  ackHist: string;
  drained: boolean;
  /** The drain ended because nothing arrived for stallMs (what is missing then is lost, not late). */
  stalled: boolean;
  /** Issue loop's worst lag behind the schedule, ms (the load generator falling behind). */
  maxIssueLagMs: number;
  windowMs: number;
}

export type WorkerEvent =
  | { ev: 'reply'; id: number; ok: true; result: unknown }
  | { ev: 'reply'; id: number; ok: false; error: string }
  | { ev: 'progress'; sent: number; delivered: number; connected: number; errors: number };
