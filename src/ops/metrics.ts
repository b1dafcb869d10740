import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ErrorCodes } from '../protocol/errors.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { RegionStats } from '../actors/region.js';
import { FRAME_COSTS } from '../transport/frame-cost.js';
import { LatencyHistogram, type Series } from './latency-histogram.js';

/**
 * Counts on plain numbers for the message path, one per allowed label value, folded into a prom-client
 * Counter when /metrics is scraped (prom-client's `inc` with labels hashes them on every call). A key
 * outside `allowed` counts as `other`, so a label's values are bounded whatever the caller passes.
 */
export class Tally {
  private readonly counts = new Map<string, number>();

  constructor(allowed: readonly string[]) {
    for (const k of allowed) this.counts.set(k, 0);
    this.counts.set('other', 0);
  }

  add(key: string, by = 1): void {
    const v = this.counts.get(key);
    if (v === undefined) this.counts.set('other', this.counts.get('other')! + by);
    else this.counts.set(key, v + by);
  }

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  entries(): IterableIterator<[string, number]> {
    return this.counts.entries();
  }
}

/** Events counted without labels (the names as before prom-client, with `parley_` and `_total` around them). */
const COUNTERS = {
  ws_opened: 'WebSocket connections opened',
  ws_closed: 'WebSocket connections closed',
  ws_slow_consumer: 'Sockets closed for going over the send buffer cap (maxBackpressure)',
  frames_too_large: 'Sockets closed (1009) for a frame over the frame size limit',
  frames_rejected: 'Client frames refused at the edge (undecodable, invalid or over a rate limit): answered with an error frame',
  http_rate_limited: 'HTTP requests refused by the per-address budget (429)',
  analytics_events_published: 'Analytics events published to the JetStream stream parley_analytics (acknowledged)',
  analytics_events_dropped: 'Analytics events not published (the publish failed, or too many batches were in flight)',
} as const;
export type CounterName = keyof typeof COUNTERS;

const SERVER_FRAME_TYPES: readonly ServerFrame['t'][] = ['welcome', 'msg', 'synced', 'sent', 'receipt', 'typing', 'presence', 'res', 'error', 'pong', 'device'];
const ERROR_CODES = Object.keys(ErrorCodes);
/** Why an upgrade was refused. */
export type RefusedReason = 'origin' | 'capacity' | 'rate';

/**
 * The node's metrics, in a prom-client registry rendered on GET /metrics: Node's process metrics (CPU,
 * memory, heap, GC, event-loop lag: prom-client's defaults), Parley's counters and gauges, and histograms
 * of what users wait for, measured at the edges. No label carries a user, conversation, device or raw path.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Client frames by type (`invalid`: not decodable or not valid; `limited`: over the socket's frame rate, not read). */
  readonly framesIn = new Tally([...Object.keys(FRAME_COSTS), 'invalid', 'limited']);
  /** Frames queued to sockets by type (`msg`: deliveries). */
  readonly framesOut = new Tally(SERVER_FRAME_TYPES);
  /** Error frames sent on sockets, by code. */
  readonly wsErrors = new Tally(ERROR_CODES);
  /** HTTP error answers, by code. */
  readonly httpErrors = new Tally(ERROR_CODES);
  /** A `send` frame to the `sent` tick (or the error) going out for its cid, at the gateway. */
  readonly send: LatencyHistogram<'outcome'>;
  readonly sendOutcome: { sent: Series; duplicate: Series; error: Series };
  /** A message's send (its server time) to a recipient device's ack, at the recipient's user entity. */
  readonly delivery: Series;
  /** A `sync` frame to the `synced` without `more` that ends it (every page of it), at the gateway. */
  readonly sync: Series;
  /** Each Store method call to its promise settling (src/ops/store-timing.ts). */
  readonly store = new LatencyHistogram<'op'>('parley_store_seconds', 'Store operation latency by operation (method of the Store interface)', ['op']);
  readonly storeErrors: Counter<'op'>;
  /** An HTTP request's arrival to the end of its answer, by route pattern (src/ops/http-timing.ts). */
  readonly http = new LatencyHistogram<'route' | 'method' | 'status'>('parley_http_request_seconds',
    'HTTP request latency: arrival to the end of the answer (a media transfer: all of it), by route pattern, method and status class', ['route', 'method', 'status']);
  /** In a cluster: a link data frame to its ack over NATS, and an ask to its answer by where its entity was. */
  readonly linkAck: Series;
  readonly clusterAsk: { local: Series; remote: Series };
  readonly wsRefused: Counter<'reason'>;
  private readonly counters: Record<CounterName, Counter>;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.counters = Object.fromEntries(Object.entries(COUNTERS).map(([name, help]) =>
      [name, new Counter({ name: `parley_${name}_total`, help, registers })])) as Record<CounterName, Counter>;
    this.wsRefused = new Counter({ name: 'parley_ws_refused_total', help: 'WebSocket upgrades refused, by reason (origin, capacity, rate, unavailable)', labelNames: ['reason'], registers });
    this.storeErrors = new Counter({ name: 'parley_store_errors_total', help: 'Store operations that failed, by operation', labelNames: ['op'], registers });
    tallyCounter(this.registry, 'parley_frames_in_total', 'Client frames received, by type', [{ label: 'type', tally: this.framesIn }]);
    tallyCounter(this.registry, 'parley_frames_out_total', 'Frames queued to client sockets, by type', [{ label: 'type', tally: this.framesOut }]);
    tallyCounter(this.registry, 'parley_errors_total', 'Errors answered to clients, by code and edge (ws: error frames; http: error responses)', [
      { label: 'code', tally: this.wsErrors, fixed: { via: 'ws' } },
      { label: 'code', tally: this.httpErrors, fixed: { via: 'http' } },
    ]);
    this.send = new LatencyHistogram('parley_send_seconds', 'A send frame to its sent tick or error at the gateway, by outcome (sent, duplicate, error)', ['outcome'] as const).register(this.registry);
    this.sendOutcome = { sent: this.send.child('sent'), duplicate: this.send.child('duplicate'), error: this.send.child('error') };
    this.delivery = new LatencyHistogram('parley_delivery_seconds', "A message's send to a recipient device's ack (redeliveries and one's own devices not timed)", []).register(this.registry).child();
    this.sync = new LatencyHistogram('parley_sync_seconds', 'A sync frame to the synced frame without more that ends it, every page included', []).register(this.registry).child();
    this.linkAck = new LatencyHistogram('parley_cluster_link_ack_seconds', "In a cluster: a link data frame's first transmission over NATS to the peer's ack covering it (its delayed ack, up to 50 ms, included)", []).register(this.registry).child();
    const asks = new LatencyHistogram('parley_cluster_ask_seconds', 'In a cluster: a request to an entity to its answer, by where the entity was (local: a shard this node serves; remote: over a link)', ['where'] as const).register(this.registry);
    this.clusterAsk = { local: asks.child('local'), remote: asks.child('remote') };
    this.store.register(this.registry);
    this.http.register(this.registry);
  }

  count(name: CounterName, by = 1): void {
    this.counters[name].inc(by);
  }

  /** A gauge read when scraped: `parley_<name>`. */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({ name: `parley_${name}`, help, registers: [this.registry], collect() { this.set(read()); } });
  }

  /**
   * What the push dispatcher counts and reads: its events (a fixed set of names: push_notices, push_dropped,
   * push_<provider>_<sent|failed|retried|removed>) as `parley_push_events_total{event}`, its gauges as they are.
   */
  pushSink(): { count(name: string, by?: number): void; gauge(name: string, read: () => number): void } {
    const events = new Counter({ name: 'parley_push_events_total', help: 'Push dispatcher events (notices, drops; per provider: sent, failed, retried, removed)', labelNames: ['event'], registers: [this.registry] });
    return {
      count: (name, by = 1) => events.inc({ event: name.replace(/^push_/, '') }, by),
      gauge: (name, read) => this.gauge(name, `Push dispatcher: ${name.replace(/^push_/, '').replace(/_/g, ' ')}`, read),
    };
  }

  /** Entities per kind, from the regions' snapshots: live now, and spawned / passivated / crashed / stopped since start. */
  entities(read: () => readonly RegionStats[]): void {
    const registers = [this.registry];
    new Gauge({
      name: 'parley_entities', help: 'Live entities by kind (user, conv, group)', labelNames: ['kind'], registers,
      collect() { this.reset(); for (const r of read()) this.set({ kind: r.type }, r.active); },
    });
    new Counter({
      name: 'parley_entity_events_total', help: 'Entity lifecycle events by kind and event (spawned, passivated, crashed, stopped)',
      labelNames: ['kind', 'event'], registers,
      collect() {
        this.reset();
        for (const r of read()) {
          for (const [event, n] of [['spawned', r.spawned], ['passivated', r.passivated], ['crashed', r.crashes], ['stopped', r.stopped]] as const) {
            this.inc({ kind: r.type, event }, n);
          }
        }
      },
    });
  }

  /** The Prometheus text exposition of everything above. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A prom-client Counter whose values are the tallies' when scraped (each tally under its label, plus fixed labels). */
function tallyCounter(registry: Registry, name: string, help: string, sources: { label: string; tally: Tally; fixed?: Record<string, string> }[]): void {
  const labelNames = [...new Set(sources.flatMap((s) => [s.label, ...Object.keys(s.fixed ?? {})]))];
  new Counter({
    name, help, labelNames, registers: [registry],
    collect() {
      this.reset();
      for (const { label, tally, fixed } of sources) {
        for (const [k, v] of tally.entries()) if (v > 0) this.inc({ ...fixed, [label]: k }, v);
      }
    },
  });
}
