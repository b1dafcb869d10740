import { createHmac } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { log } from '../log.js';
import type { AnalyticsEvent, AnalyticsSink } from './analytics.js';

export const ANALYTICS_STREAM = 'parley_analytics';
/** A node publishes on `parley.analytics.<node>`. */
export const ANALYTICS_SUBJECTS = 'parley.analytics.>';
const MAX_AGE_NS = 7 * 86_400 * 1e9;
/** A batch goes when it holds this many events, or this long after its first. */
export const BATCH_EVENTS = 500;
export const BATCH_MS = 250;
/** Batches published and not yet acknowledged: past this a batch is dropped, never queued without bound. */
const MAX_IN_FLIGHT = 16;

/**
 * One event as published (schema version 1), in a JSON array per NATS message. Envelope fields only: never a
 * body, phone number, token or user id; `user` is a pseudonym, the same on every node that shares the secret.
 */
export interface StreamEvent {
  v: 1;
  type: AnalyticsEvent['type'];
  /** When it happened, ms since the epoch (UTC). */
  t: number;
  node: string;
  kind?: string;
  group?: boolean;
  bytes?: number;
  /** HMAC-SHA256 of the user id under a key derived from the node's secret, 32 hex characters. */
  user?: string;
}

/** Pure: the event as published. */
export function streamEvent(e: AnalyticsEvent, node: string, t: number, pseudonym: (user: string) => string): StreamEvent {
  const out: StreamEvent = { v: 1, type: e.type, t, node };
  switch (e.type) {
    case 'message': out.kind = e.kind; out.group = e.group; break;
    case 'media': out.bytes = e.bytes; out.user = pseudonym(e.user); break;
    case 'active': case 'signup': out.user = pseudonym(e.user); break;
    case 'push': break;
  }
  return out;
}

export function pseudonymizer(secret: Buffer): (user: string) => string {
  const key = createHmac('sha256', secret).update('parley analytics pseudonym v1').digest();
  return (user) => createHmac('sha256', key).update(user).digest('hex').slice(0, 32);
}

/**
 * Analytics events to JetStream for a pipeline to consume (docs/architecture.md, "Analytics"): batched,
 * published without waiting; a batch that fails (or finds too many in flight) is dropped and counted.
 */
export class AnalyticsStream {
  private batch: StreamEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private readonly js;
  private readonly subject: string;
  private readonly pseudonym: (user: string) => string;
  readonly sink: AnalyticsSink = (e) => this.add(e);

  constructor(
    private readonly nc: NatsConnection,
    private readonly node: string,
    secret: Buffer,
    private readonly counts: { published(n: number): void; dropped(n: number): void },
  ) {
    this.js = jetstream(nc, { timeout: 5_000 });
    this.subject = `parley.analytics.${node}`;
    this.pseudonym = pseudonymizer(secret);
  }

  /** Creates the stream, or brings its configuration up to date (another node may have made it). */
  async ensure(replicas: number): Promise<void> {
    const jsm = await jetstreamManager(this.nc, { timeout: 5_000 });
    const cfg = { subjects: [ANALYTICS_SUBJECTS], max_age: MAX_AGE_NS, storage: StorageType.File, num_replicas: replicas, retention: RetentionPolicy.Limits, description: 'Parley analytics events (envelope only), JSON arrays' };
    const exists = await jsm.streams.info(ANALYTICS_STREAM).then(() => true, (err: unknown) => {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
      throw err;
    });
    if (exists) await jsm.streams.update(ANALYTICS_STREAM, { subjects: cfg.subjects, max_age: cfg.max_age, num_replicas: replicas, description: cfg.description });
    else await jsm.streams.add({ name: ANALYTICS_STREAM, ...cfg }).catch(async (err: unknown) => {
      // Another node made it meanwhile: the same configuration.
      await jsm.streams.info(ANALYTICS_STREAM).catch(() => { throw err; });
    });
  }

  private add(e: AnalyticsEvent): void {
    this.batch.push(streamEvent(e, this.node, Date.now(), this.pseudonym));
    if (this.batch.length >= BATCH_EVENTS) this.publish();
    else this.timer ??= setTimeout(() => this.publish(), BATCH_MS);
  }

  /** Sends what is batched now (the node calls it as it stops). */
  publish(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const events = this.batch;
    if (!events.length) return;
    this.batch = [];
    if (this.inFlight >= MAX_IN_FLIGHT) return this.counts.dropped(events.length);
    this.inFlight++;
    this.js.publish(this.subject, JSON.stringify(events)).then(
      () => this.counts.published(events.length),
      (err: unknown) => {
        this.counts.dropped(events.length);
        log('debug', 'analytics events dropped', { events: events.length, error: String(err) });
      },
    ).finally(() => { this.inFlight--; });
  }
}
