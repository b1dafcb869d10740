import { randomBytes, randomInt } from 'node:crypto';
import { Client, errors, policies, types } from 'cassandra-driver';
import { parseConversationId, type ConversationId, type DeviceId, type GroupId, type UserId } from '../../protocol/ids.js';
import type { GroupRole, LastSeenPrivacy, Message, MessageKind, PushPlatform } from '../../protocol/frames.js';
import { ParleyError } from '../../protocol/errors.js';
import { pack, unpack } from '../../protocol/codec.js';
import type {
  DeviceKey, DeviceRecord, ErasureRecord, FenceClaim, FenceKey, GroupRecord, HistoryQuery, InboxEntry, JournalEvent, MediaGrant, MediaHolder, MediaRecord, MediaRef, OtpRecord,
  OtpStep, PushMark, PushRegistration, ReceiptCursor, SnapshotRecord, Store, UserRecord, DevOutbox, DevOutboxEntry,
} from '../store.js';
import { ANALYTICS_KEEP_MS, DEV_OUTBOX_KEEP, DEV_OUTBOX_TTL_MS, type AnalyticsRow } from '../store.js';
import { log } from '../../log.js';
import { DAY_MS, REMEMBER_SHARDS, bucketOf, maxRegisterTimestamp, minRegisterTimestamp, rememberShard, ttlUntil } from './buckets.js';
import { checkKeyspace, migrate, type Replication } from './schema.js';
import { ScyllaMediaBlobs, type CqlRunner } from './media-blobs.js';
import { ScyllaE2e } from './scylla-e2e.js';

export type ConsistencyName = keyof typeof types.consistencies;

export interface ScyllaOptions {
  /** `host` or `host:port`. */
  contactPoints: string[];
  /** The datacenter this node talks to; requests stay in it. Default 'datacenter1'. */
  localDataCenter?: string;
  /** Default 'parley'. Created, with `replication`, when missing. */
  keyspace?: string;
  /**
   * Used only when the keyspace is created. Default `{ class: 'SimpleStrategy', replication_factor: 1 }`;
   * in production `{ class: 'NetworkTopologyStrategy', dc1: 3, ... }`. A CQL map literal string also works.
   */
  replication?: Replication | string;
  /** Reads and writes: a driver name (localQuorum), a CQL name (LOCAL_QUORUM) or a number. Default LOCAL_QUORUM. */
  consistency?: ConsistencyName | string | number;
  /** Lightweight transactions (phone claims, one-time codes, media ids, schema lock). Default LOCAL_SERIAL. */
  serialConsistency?: ConsistencyName | string | number;
  credentials?: { username: string; password: string };
  /** Width of a message bucket. Default one day. Keep it fixed for the life of a keyspace. */
  bucketMs?: number;
  /** How long (conv, from, cid) → seq is remembered for resends. Default 7 days. */
  dedupeTtlSeconds?: number;
  /**
   * Per-request client timeout. Default 12 s (the driver's): above the server's own read and write
   * timeouts, so a slow replica answers with its timeout first. A request that times out fails with
   * store_unavailable (a write's outcome is then unknown; see appendMessage for how messages handle it).
   */
  requestTimeoutMs?: number;
  /** Default 5 s. */
  connectTimeoutMs?: number;
  /**
   * Longest wait between reconnection attempts to a host that is down (exponential from 500 ms up to
   * this). Default 10 s, so a node is back within seconds of the database (the driver's own default, 10
   * minutes, would leave it failing requests long after the cluster recovered). While every host is down,
   * requests fail at once with store_unavailable instead of waiting.
   */
  reconnectMaxDelayMs?: number;
  /** Events per journal partition: at most this many events in one (key, partition_nr). Default 5,000. */
  journalPartitionEvents?: number;
  /** Retention (PARLEY_RETENTION N days): message rows and their bucket index are written with this TTL. 0: none. */
  messageTtlSeconds?: number;
}

const LWT_APPLIED = '[applied]';
/** Compare-and-set rounds one otpUpdate may lose before it answers store_unavailable, and the longest pause between two. */
const OTP_CAS_ROUNDS = 24;
const OTP_CAS_BACKOFF_MS = 50;
/** Claims of one entity lost in a row before giving up (racing activations are a handful, not thousands). */
const FENCE_CAS_ROUNDS = 16;
/** Steps in one otpUpdate batch at most (a batch is run again whole when it loses a round). */
const OTP_BATCH_MAX = 500;

interface OtpWaiter { step: (cur: OtpRecord | undefined) => OtpStep<unknown>; resolve(v: unknown): void; reject(e: unknown): void }
const PAGE = 1000;
const MEDIA_IN_MAX = 100;
const BUCKET_CACHE_MAX = 100_000;
/** The write timestamp of cells that only fill a gap (indexClientIds): older than any real write. */
const FILL_TIMESTAMP = 1;
/** Per-row writes, 64 in flight at a time: fast, and never a flood of requests at the database. */
async function inParallelSlices<T>(items: readonly T[], write: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += 64) await Promise.all(items.slice(i, i + 64).map(write));
}

/** How often failed appends are rolled back again while the database is away. */
const ROLLBACK_RETRY_MS = 1000;

/** An append that failed: what to remove once the database answers again (cells written at `ts` or before). */
interface Rollback { conv: ConversationId; bucket: number; seq: number; from: UserId; cid: string; ts: number; running?: Promise<void> }

type Params = unknown[];
interface ExecOpts {
  /** Safe to send again: the driver may retry it on another host after a timeout. */
  idempotent: boolean;
  fetchSize?: number;
  pageState?: string;
}

/**
 * The cluster store over ScyllaDB (or Apache Cassandra): one table per access path of `Store`, every
 * request a prepared statement against one partition, routed token-aware to a replica in the local DC.
 * The tables and why they look the way they do are described in docs/architecture.md and schema.ts.
 */
export class ScyllaStore implements Store {
  readonly kind = 'scylla' as const;
  private readonly cl: number;
  private readonly serialCl: number;
  private readonly bucketMs: number;
  private readonly dedupeTtl: number;
  private readonly journalPartitionEvents: number;
  private readonly requestTimeoutMs: number;
  private readonly messageTtl: number;
  private readonly ks: string;
  private readonly q: ReturnType<typeof statements>;
  /** (conv, bucket) → lowest first_seq this process has durably written: lets appends skip the index write. */
  private readonly bucketsWritten = new Map<string, number>();
  /** Appends in flight, so a redaction of a message still being written waits for it. */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** Failed appends not yet rolled back, by conversation. */
  private readonly rollbacks = new Map<ConversationId, Set<Rollback>>();
  private rollbackTimer?: NodeJS.Timeout;
  private retryingRollbacks = false;
  /** (key, partition_nr) of the journal this process has indexed. */
  private readonly journalPartitionsWritten = new Set<string>();
  private lastWriteTs = 0;
  /** Requests in flight, so close() lets them finish. */
  private readonly requests = new Set<Promise<unknown>>();
  /** This process's otpUpdate steps waiting per phone; the first batch of each is in flight (see otpUpdate). */
  private readonly otpQueues = new Map<string, OtpWaiter[]>();

  private constructor(
    private readonly client: Client,
    o: Required<Pick<ScyllaOptions, 'keyspace' | 'bucketMs' | 'dedupeTtlSeconds' | 'journalPartitionEvents' | 'requestTimeoutMs'>> & { cl: number; serialCl: number; messageTtl?: number },
  ) {
    this.messageTtl = o.messageTtl ?? 0;
    this.requestTimeoutMs = o.requestTimeoutMs;
    this.ks = o.keyspace;
    this.cl = o.cl;
    this.serialCl = o.serialCl;
    this.bucketMs = o.bucketMs;
    this.dedupeTtl = o.dedupeTtlSeconds;
    this.journalPartitionEvents = o.journalPartitionEvents;
    this.q = statements(this.ks);
  }

  /** Connects, creates the keyspace if missing and brings the schema up to date. */
  static async open(opts: ScyllaOptions): Promise<ScyllaStore> {
    if (!opts.contactPoints?.length) throw new Error('ScyllaStore needs at least one contact point');
    const keyspace = checkKeyspace(opts.keyspace ?? 'parley');
    const localDataCenter = opts.localDataCenter ?? 'datacenter1';
    const cl = consistency(opts.consistency ?? 'localQuorum');
    const serialCl = consistency(opts.serialConsistency ?? 'localSerial');
    const bucketMs = opts.bucketMs ?? DAY_MS;
    if (!Number.isInteger(bucketMs) || bucketMs <= 0) throw new Error('bucketMs must be a positive integer');
    const journalPartitionEvents = opts.journalPartitionEvents ?? 5000;
    if (!Number.isInteger(journalPartitionEvents) || journalPartitionEvents <= 0) throw new Error('journalPartitionEvents must be a positive integer');
    const reconnectMax = opts.reconnectMaxDelayMs ?? 10_000;
    if (!(reconnectMax > 0)) throw new Error('reconnectMaxDelayMs must be positive');
    const client = new Client({
      contactPoints: opts.contactPoints,
      localDataCenter,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      policies: {
        loadBalancing: new policies.loadBalancing.TokenAwarePolicy(new policies.loadBalancing.DCAwareRoundRobinPolicy(localDataCenter)),
        reconnection: new policies.reconnection.ExponentialReconnectionPolicy(Math.min(500, reconnectMax), reconnectMax, false),
      },
      queryOptions: { consistency: cl, serialConsistency: serialCl, prepare: true },
      socketOptions: {
        readTimeout: opts.requestTimeoutMs ?? 12_000,
        connectTimeout: opts.connectTimeoutMs ?? 5_000,
      },
      protocolOptions: { maxSchemaAgreementWaitSeconds: 30 },
    });
    try {
      await client.connect();
      await migrate(client, { keyspace, replication: opts.replication ?? { class: 'SimpleStrategy', replication_factor: 1 }, consistency: cl, serialConsistency: serialCl });
    } catch (err) {
      await client.shutdown().catch(() => undefined);
      throw storeError(err, 'could not open the Scylla store');
    }
    return new ScyllaStore(client, {
      keyspace, bucketMs, dedupeTtlSeconds: opts.dedupeTtlSeconds ?? 7 * 86_400, journalPartitionEvents, cl, serialCl,
      requestTimeoutMs: opts.requestTimeoutMs ?? 12_000, messageTtl: opts.messageTtlSeconds ?? 0,
    });
  }

  get keyspace(): string {
    return this.ks;
  }

  private blobs?: ScyllaMediaBlobs;

  /** This store's session for the domains kept in classes of their own (tracked, errors mapped). */
  private readonly runner: CqlRunner = {
    run: (query, params, o) => o.serial
      ? this.track(this.client.execute(query, params, { prepare: true, consistency: this.serialCl, isIdempotent: o.idempotent })).catch((err: unknown) => { throw storeError(err); })
      : this.exec(query, params, { idempotent: o.idempotent, ...(o.fetchSize !== undefined ? { fetchSize: o.fetchSize } : {}), ...(o.pageState !== undefined ? { pageState: o.pageState } : {}) }),
  };

  /** Media bytes in this keyspace (media_blobs, media_chunks), on this store's session. */
  mediaBlobs(): ScyllaMediaBlobs {
    return (this.blobs ??= new ScyllaMediaBlobs(this.ks, this.runner));
  }

  private e2eDomain?: ScyllaE2e;
  get e2e(): ScyllaE2e {
    return (this.e2eDomain ??= new ScyllaE2e(this.ks, this.runner));
  }

  // ---- plumbing ----

  private async exec(query: string, params: Params, o: ExecOpts): Promise<types.ResultSet> {
    try {
      return await this.track(this.client.execute(query, params, {
        prepare: true, consistency: this.cl, serialConsistency: this.serialCl, isIdempotent: o.idempotent,
        ...(o.fetchSize !== undefined ? { fetchSize: o.fetchSize } : {}),
        ...(o.pageState !== undefined ? { pageState: o.pageState } : {}),
      }));
    } catch (err) {
      throw storeError(err);
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.requests.add(p);
    const done = () => this.requests.delete(p);
    p.then(done, done);
    return p;
  }

  private read(query: string, params: Params, fetchSize?: number): Promise<types.ResultSet> {
    return this.exec(query, params, { idempotent: true, ...(fetchSize !== undefined ? { fetchSize } : {}) });
  }

  private write(query: string, params: Params): Promise<types.ResultSet> {
    return this.exec(query, params, { idempotent: true });
  }

  /** Every row of a (partition) query, page by page. */
  private async readAll(query: string, params: Params): Promise<types.Row[]> {
    const rows: types.Row[] = [];
    let pageState: string | undefined;
    do {
      const rs = await this.exec(query, params, { idempotent: true, fetchSize: PAGE, ...(pageState ? { pageState } : {}) });
      rows.push(...rs.rows);
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return rows;
  }

  /** Unlogged batch: only ever used for statements on one partition, which is one atomic mutation. */
  private async batch(queries: { query: string; params: Params }[]): Promise<void> {
    try {
      await this.track(this.client.batch(queries, { prepare: true, logged: false, consistency: this.cl, isIdempotent: true }));
    } catch (err) {
      throw storeError(err);
    }
  }

  // ---- messages ----

  /**
   * `_epoch` is not checked here: that would be a Paxos round per message. The seq lies in its owner's
   * reservation, which no other activation hands out, so a stale owner's write can't replace anyone's.
   */
  async appendMessage(m: Message, _packed?: Uint8Array, media?: MediaGrant, _epoch?: number): Promise<void> {
    const key = `${m.conv}\u0000${m.seq}`;
    const done = this.append(m, media);
    this.inFlight.set(key, done);
    try {
      await done;
    } finally {
      if (this.inFlight.get(key) === done) this.inFlight.delete(key);
    }
  }

  private async append(m: Message, media?: MediaGrant): Promise<void> {
    const bucket = bucketOf(m.ts, this.bucketMs);
    // 1. The bucket index first: every stored message is then findable by seq and by lastSeq. With it, the
    // refs of the media it names: every stored message's media is then fetchable by its readers. (Left
    // behind by a failed append, either is harmless: an index entry over no message, a ref the sender gave.)
    await Promise.all([this.indexBucket(m.conv, bucket, m.seq), media ? this.putMediaRefs(media.media, media.refs) : undefined]);
    // 2. The message. 3. Then its client id: a resend can only be answered with a seq that is stored.
    // Both carry one write timestamp, so a failed attempt can be removed exactly (see rollBack).
    const ts = this.writeTimestamp();
    try {
      await this.write(this.q.insertMessage, [
        m.conv, bucket, m.seq, m.from, m.dev, m.cid, m.kind, m.ts,
        m.body === undefined ? null : Buffer.from(pack(m.body)), m.reply ?? null, m.target ?? null, this.messageTtl, ts,
      ]);
    } catch (err) {
      // Never sent (every host was down or busy): nothing landed, nothing to roll back.
      if (!neverSent(err)) this.rollBack({ conv: m.conv, bucket, seq: m.seq, from: m.from, cid: m.cid, ts });
      throw err;
    }
    try {
      await this.write(this.q.insertClientId, [m.conv, m.from, m.cid, m.seq, this.dedupeTtl, ts]);
    } catch (err) {
      this.rollBack({ conv: m.conv, bucket, seq: m.seq, from: m.from, cid: m.cid, ts });
      throw err;
    }
  }

  /**
   * A failed append may still have reached the database: a write that timed out, or whose replica went away
   * before answering, may have been applied (or may be applied late, from a socket buffer). Its conversation
   * counts the message as not stored (the sender was told to resend; nothing was delivered), so whatever
   * landed must go: otherwise a resend would find the client id and be acked as a duplicate of a message
   * no recipient ever got. Tombstones at the attempt's own write timestamp remove exactly its cells, whether
   * they arrive before or after it, and nothing written later. Until they are written, reads of the
   * conversation first retry them (and fail with store_unavailable while the database is away), and a timer
   * keeps retrying them in the background.
   */
  private rollBack(r: Rollback): void {
    let pending = this.rollbacks.get(r.conv);
    if (!pending) this.rollbacks.set(r.conv, (pending = new Set()));
    pending.add(r);
    log('warn', 'append failed after it may have reached the database; rolling it back', { conv: r.conv, seq: r.seq });
    this.rollbackTimer ??= setInterval(() => void this.retryRollbacks(), ROLLBACK_RETRY_MS);
    this.rollbackTimer.unref();
    this.runRollback(r).catch(() => undefined);
  }

  /** One at a time, stopping at the first failure (the database is still away): never a flood. */
  private async retryRollbacks(): Promise<void> {
    if (this.retryingRollbacks) return;
    this.retryingRollbacks = true;
    try {
      for (const set of [...this.rollbacks.values()]) for (const r of [...set]) await this.runRollback(r);
    } catch {
      // retried on the next tick
    } finally {
      this.retryingRollbacks = false;
    }
  }

  private runRollback(r: Rollback): Promise<void> {
    r.running ??= Promise.all([
      this.write(this.q.undoMessage, [r.ts, r.conv, r.bucket, r.seq]),
      this.write(this.q.undoClientId, [r.ts, r.conv, r.from, r.cid]),
    ]).then(
      () => {
        const set = this.rollbacks.get(r.conv);
        set?.delete(r);
        if (set?.size === 0) this.rollbacks.delete(r.conv);
        if (this.rollbacks.size === 0 && this.rollbackTimer) {
          clearInterval(this.rollbackTimer);
          this.rollbackTimer = undefined;
        }
      },
      (err: unknown) => {
        r.running = undefined;
        throw err;
      },
    );
    return r.running;
  }

  /** Before a read of a conversation: its failed appends are rolled back, or the read fails (retryable). */
  private async settled(conv: ConversationId): Promise<void> {
    const pending = this.rollbacks.get(conv);
    if (pending) await Promise.all([...pending].map((r) => this.runRollback(r)));
  }

  /** Write timestamps (µs) for message cells: strictly increasing within this process. */
  /** A bucket's index row outlives the last message it can hold by a bucket's width (0: no TTL). */
  private bucketTtl(): number {
    return this.messageTtl ? this.messageTtl + Math.ceil(this.bucketMs / 1000) : 0;
  }

  private writeTimestamp(): number {
    const now = Date.now() * 1000;
    this.lastWriteTs = now > this.lastWriteTs ? now : this.lastWriteTs + 1;
    return this.lastWriteTs;
  }

  private async indexBucket(conv: ConversationId, bucket: number, seq: number): Promise<void> {
    const key = `${conv}\u0000${bucket}`;
    const known = this.bucketsWritten.get(key);
    if (known !== undefined && known <= seq) return; // the register already holds something <= seq
    await this.write(this.q.indexBucket, [this.bucketTtl(), minRegisterTimestamp(seq), seq, conv, bucket]);
    const now = this.bucketsWritten.get(key);
    if (now === undefined || seq < now) {
      this.bucketsWritten.delete(key);
      this.bucketsWritten.set(key, seq);
      if (this.bucketsWritten.size > BUCKET_CACHE_MAX) this.bucketsWritten.delete(this.bucketsWritten.keys().next().value!);
    }
  }

  /** The bucket that holds seq: the newest bucket whose first seq is <= seq. */
  private async bucketForSeq(conv: ConversationId, seq: number): Promise<number | undefined> {
    const rs = await this.read(this.q.bucketForSeq, [conv, seq]);
    return rs.rowLength ? num(rs.first().get('bucket')) : undefined;
  }

  /** The bucket that holds time ts: the newest bucket starting at or before ts. */
  private async bucketForTs(conv: ConversationId, ts: number): Promise<number | undefined> {
    const rs = await this.read(this.q.bucketForTs, [conv, ts]);
    return rs.rowLength ? num(rs.first().get('bucket')) : undefined;
  }

  /** Bucket starts of a conversation from `start` on, in the given direction, lazily page by page. */
  private async *buckets(conv: ConversationId, start: number, ascending: boolean): AsyncGenerator<number> {
    let pageState: string | undefined;
    do {
      const rs = await this.exec(ascending ? this.q.bucketsAsc : this.q.bucketsDesc, [conv, start], {
        idempotent: true, fetchSize: 64, ...(pageState ? { pageState } : {}),
      });
      for (const row of rs.rows) yield num(row.get('bucket'))!;
      pageState = rs.pageState ?? undefined;
    } while (pageState);
  }

  async getMessage(conv: ConversationId, seq: number): Promise<Message | undefined> {
    await this.settled(conv);
    const bucket = await this.bucketForSeq(conv, seq);
    if (bucket === undefined) return undefined;
    const rs = await this.read(this.q.getMessage, [conv, bucket, seq]);
    return rs.rowLength ? toMessage(conv, rs.first()) : undefined;
  }

  async getMessages(conv: ConversationId, q: HistoryQuery): Promise<Message[]> {
    const limit = Math.floor(q.limit);
    if (!(limit > 0)) return [];
    const lo = q.after !== undefined ? q.after + 1 : 0;
    const hi = q.before !== undefined ? q.before - 1 : Number.MAX_SAFE_INTEGER;
    if (lo > hi || (q.from !== undefined && q.until !== undefined && q.from > q.until)) return [];
    await this.settled(conv);
    const out: Message[] = [];

    if (q.after !== undefined || q.from !== undefined) {
      // Oldest first from the lower bound.
      const [bySeq, byTs] = await Promise.all([
        q.after !== undefined ? this.bucketForSeq(conv, lo) : undefined,
        q.from !== undefined ? this.bucketForTs(conv, q.from) : undefined,
      ]);
      const start = Math.max(bySeq ?? Number.MIN_SAFE_INTEGER, byTs ?? Number.MIN_SAFE_INTEGER);
      for await (const bucket of this.buckets(conv, start, true)) {
        if (q.until !== undefined && bucket > q.until) break;
        const more = await this.scanBucket(conv, bucket, lo, hi, true, limit - out.length, (m) => {
          if (q.until !== undefined && m.ts > q.until) return 'stop';
          if (q.from !== undefined && m.ts < q.from) return 'skip';
          out.push(m);
          return 'take';
        });
        if (!more || out.length >= limit) break;
      }
      return out;
    }

    // Newest first from the upper bound, returned ascending.
    const [bySeq, byTs] = await Promise.all([
      q.before !== undefined ? this.bucketForSeq(conv, hi) : undefined,
      q.until !== undefined ? this.bucketForTs(conv, q.until) : undefined,
    ]);
    // Nothing at or below the bound: every stored seq (ts) is above it.
    if ((q.before !== undefined && bySeq === undefined) || (q.until !== undefined && byTs === undefined)) return [];
    const start = Math.min(bySeq ?? Number.MAX_SAFE_INTEGER, byTs ?? Number.MAX_SAFE_INTEGER);
    for await (const bucket of this.buckets(conv, start, false)) {
      await this.scanBucket(conv, bucket, lo, hi, false, limit - out.length, (m) => {
        if (q.until !== undefined && m.ts > q.until) return 'skip';
        out.push(m);
        return 'take';
      });
      if (out.length >= limit) break;
    }
    return out.reverse();
  }

  /**
   * Reads one bucket in seq order within [lo, hi], handing rows to `take` until it has `want` of them or says
   * stop. Returns false when the scan must end here (stopped), true when the next bucket may continue it.
   */
  private async scanBucket(
    conv: ConversationId, bucket: number, lo: number, hi: number, ascending: boolean, want: number,
    take: (m: Message) => 'take' | 'skip' | 'stop',
  ): Promise<boolean> {
    let taken = 0;
    let pageState: string | undefined;
    do {
      const rs = await this.exec(ascending ? this.q.rangeAsc : this.q.rangeDesc, [conv, bucket, lo, hi], {
        idempotent: true, fetchSize: Math.min(Math.max(want - taken, 1), PAGE), ...(pageState ? { pageState } : {}),
      });
      for (const row of rs.rows) {
        const verdict = take(toMessage(conv, row));
        if (verdict === 'stop') return false;
        if (verdict === 'take' && ++taken >= want) return true;
      }
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return true;
  }

  async lastSeq(conv: ConversationId): Promise<number> {
    await this.settled(conv);
    for await (const bucket of this.buckets(conv, Number.MAX_SAFE_INTEGER, false)) {
      const rs = await this.read(this.q.lastInBucket, [conv, bucket]);
      if (rs.rowLength) return num(rs.first().get('seq'))!;
    }
    return 0;
  }

  async seqForClientId(conv: ConversationId, from: UserId, cid: string): Promise<number | undefined> {
    await this.settled(conv);
    const rs = await this.read(this.q.getClientId, [conv, from, cid]);
    return rs.rowLength ? num(rs.first().get('seq')) : undefined;
  }

  /**
   * Written at FILL_TIMESTAMP, below every real write: an append's own client id (late, or rewritten) wins
   * over it, and the rollback of an append (tombstones at its timestamp) or an erasure removes it too.
   */
  async indexClientIds(conv: ConversationId, entries: readonly { from: UserId; cid: string; seq: number }[]): Promise<void> {
    await inParallelSlices(entries, (e) => this.write(this.q.insertClientId, [conv, e.from, e.cid, e.seq, this.dedupeTtl, FILL_TIMESTAMP]));
  }

  async redactMessage(conv: ConversationId, seq: number): Promise<void> {
    // A delete may name a message whose append is still in flight: let it land (and index its bucket) first.
    await this.inFlight.get(`${conv}\u0000${seq}`)?.catch(() => undefined);
    const bucket = await this.bucketForSeq(conv, seq);
    if (bucket === undefined) return;
    // Deletes the body cell only: the row (the envelope) stays, so seqs have no holes. Timestamped like the
    // appends, so it is later than the write of the message it redacts.
    await this.write(this.q.redact, [this.writeTimestamp(), conv, bucket, seq]);
  }

  // ---- receipt cursors ----

  async getFanoutMark(conv: ConversationId): Promise<number | undefined> {
    const rs = await this.read(this.q.getFanoutMark, [conv]);
    return rs.rowLength ? num(rs.first().get('seq')) : undefined;
  }

  async setFanoutMark(conv: ConversationId, seq: number): Promise<void> {
    // A max register: the write timestamp is the mark, so the highest write wins whatever order they land in.
    await this.write(this.q.setFanoutMark, [maxRegisterTimestamp(seq), seq, conv]);
  }

  // Write timestamps are the epoch: a forget (a delete at its epoch) shadows only remembrances of that epoch or older.
  async rememberConversation(conv: ConversationId, epoch: number): Promise<void> {
    await this.write(this.q.remember, [rememberShard(conv), conv, epoch]);
  }

  async forgetConversation(conv: ConversationId, epoch: number): Promise<void> {
    await this.write(this.q.forget, [epoch, rememberShard(conv), conv]);
  }

  async rememberedConversations(): Promise<ConversationId[]> {
    // The shards' partitions, 16 reads at a time.
    const shards = Array.from({ length: REMEMBER_SHARDS }, (_, i) => i);
    const out: ConversationId[] = [];
    for (let i = 0; i < shards.length; i += 16) {
      const pages = await Promise.all(shards.slice(i, i + 16).map((shard) => this.readAll(this.q.remembered, [shard])));
      for (const rows of pages) for (const row of rows) out.push(row.get('conv'));
    }
    return out;
  }

  async getCursors(conv: ConversationId): Promise<Map<UserId, ReceiptCursor>> {
    const out = new Map<UserId, ReceiptCursor>();
    for (const row of await this.readAll(this.q.getCursors, [conv])) {
      const from = num(row.get('visible_from'));
      out.set(row.get('user_id'), { delivered: num(row.get('delivered')) ?? 0, read: num(row.get('read_upto')) ?? 0, ...(from ? { from } : {}) });
    }
    return out;
  }

  async setCursor(conv: ConversationId, user: UserId, cursor: ReceiptCursor): Promise<void> {
    // Without `from`, its column is left alone: no null written, so no tombstone per cursor move.
    if (cursor.from === undefined) await this.write(this.q.setCursor, [cursor.delivered, cursor.read, conv, user]);
    else await this.write(this.q.setCursorFrom, [cursor.delivered, cursor.read, cursor.from, conv, user]);
  }

  // ---- inbox ----

  async inboxPut(device: DeviceKey, entry: InboxEntry): Promise<void> {
    const now = Date.now();
    const high = { query: this.q.inboxHigh, params: [maxRegisterTimestamp(entry.ptr), entry.ptr, device] };
    if (entry.expiresAt <= now) {
      // Already expired: nothing to keep, but the pointer was still used.
      await this.batch([high]);
      return;
    }
    await this.batch([
      {
        query: this.q.inboxInsert,
        params: [device, entry.ptr, entry.conv, entry.seq, Buffer.from(entry.packed), entry.expiresAt, ttlUntil(entry.expiresAt, now)],
      },
      high,
    ]);
  }

  async inboxRange(device: DeviceKey, after: number, limit: number): Promise<InboxEntry[]> {
    const out: InboxEntry[] = [];
    if (!(limit > 0)) return out;
    const now = Date.now();
    let pageState: string | undefined;
    do {
      const rs = await this.exec(this.q.inboxRange, [device, after], {
        idempotent: true, fetchSize: Math.min(Math.max(limit - out.length, 1), PAGE), ...(pageState ? { pageState } : {}),
      });
      for (const row of rs.rows) {
        const ptr = num(row.get('ptr'));
        if (ptr === undefined) continue; // the static high-water row of an otherwise empty partition
        const expiresAt = num(row.get('expires_at'))!;
        if (expiresAt <= now) continue; // TTLs are whole seconds: the clock decides the last one
        out.push({ ptr, conv: row.get('conv'), seq: num(row.get('seq'))!, packed: bytes(row.get('packed')), expiresAt });
        if (out.length >= limit) return out;
      }
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    return out;
  }

  async inboxLastPtr(device: DeviceKey): Promise<number> {
    const rs = await this.read(this.q.inboxLastPtr, [device]);
    return rs.rowLength ? num(rs.first().get('last_ptr')) ?? 0 : 0;
  }

  async inboxReserve(device: DeviceKey, ptr: number): Promise<void> {
    await this.write(this.q.inboxHigh, [maxRegisterTimestamp(ptr), ptr, device]);
  }

  /** One range tombstone, whatever `held` says. */
  async inboxDeleteUpTo(device: DeviceKey, ptr: number): Promise<void> {
    await this.write(this.q.inboxDeleteUpTo, [device, ptr]);
  }

  /**
   * One partition tombstone: entries and the static high-water mark. Inbox writes issued before it carry
   * earlier client timestamps (and last_ptr's are tiny: see inboxHigh), so none of them outlives it, in
   * whatever order they reach the replicas.
   */
  async inboxDrop(device: DeviceKey): Promise<void> {
    await this.write(this.q.inboxDrop, [device]);
  }

  // ---- accounts ----

  async createUser(user: UserRecord): Promise<UserRecord> {
    // The user row goes first, under its fresh id; then the phone is claimed. Whoever wins the claim has
    // therefore already written its row, so a loser can always read the winner back.
    await this.write(this.q.insertUser, [user.id, user.phone, user.name, user.avatar ?? null, user.createdAt, user.lastSeenPrivacy]);
    let holder: UserId | undefined;
    try {
      const rs = await this.track(this.client.execute(this.q.claimPhone, [user.phone, user.id], {
        prepare: true, consistency: this.cl, serialConsistency: this.serialCl, isIdempotent: false,
      }));
      const row = rs.first();
      holder = row.get(LWT_APPLIED) ? user.id : row.get('user_id');
    } catch (err) {
      const mapped = storeError(err);
      if (!(mapped instanceof ParleyError)) throw mapped;
      // The outcome is unknown (a Paxos round timed out): a serial read finishes any round in progress.
      holder = await this.serialPhoneHolder(user.phone).catch(() => {
        throw mapped;
      });
      if (holder === undefined) throw mapped;
    }
    if (holder === user.id) return user;
    await this.write(this.q.deleteUser, [user.id]).catch(() => undefined); // an orphan nobody can reach
    const winner = await this.getUser(holder!);
    if (!winner) throw new ParleyError('store_unavailable', 'the phone number is held by a user not yet readable; try again');
    return winner;
  }

  private async serialPhoneHolder(phone: string): Promise<UserId | undefined> {
    try {
      const rs = await this.track(this.client.execute(this.q.userByPhone, [phone], { prepare: true, consistency: this.serialCl, isIdempotent: true }));
      return rs.rowLength ? rs.first().get('user_id') : undefined;
    } catch (err) {
      throw storeError(err);
    }
  }

  async userByPhone(phone: string): Promise<UserId | undefined> {
    const rs = await this.read(this.q.userByPhone, [phone]);
    return rs.rowLength ? rs.first().get('user_id') ?? undefined : undefined;
  }

  async getUser(id: UserId): Promise<UserRecord | undefined> {
    const rs = await this.read(this.q.getUser, [id]);
    if (!rs.rowLength) return undefined;
    const r = rs.first();
    const u: UserRecord = {
      id, phone: r.get('phone'), name: r.get('name'), createdAt: num(r.get('created_at'))!,
      lastSeenPrivacy: r.get('last_seen_privacy') as LastSeenPrivacy,
    };
    if (r.get('avatar') != null) u.avatar = r.get('avatar');
    return u;
  }

  async updateUser(id: UserId, patch: Partial<Pick<UserRecord, 'name' | 'avatar' | 'lastSeenPrivacy'>>): Promise<void> {
    // Users are never deleted, so checking first is race-free; an UPDATE alone would conjure a partial row.
    const exists = await this.read(this.q.userExists, [id]);
    if (!exists.rowLength) throw new ParleyError('not_found', 'no such user');
    const sets: string[] = [];
    const params: Params = [];
    if (patch.name !== undefined) { sets.push('name = ?'); params.push(patch.name); }
    if (patch.avatar !== undefined) { sets.push('avatar = ?'); params.push(patch.avatar); }
    if (patch.lastSeenPrivacy !== undefined) { sets.push('last_seen_privacy = ?'); params.push(patch.lastSeenPrivacy); }
    if (!sets.length) return;
    await this.write(`UPDATE ${this.ks}.users SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
  }

  async putDevice(d: DeviceRecord): Promise<void> {
    await this.batch([
      {
        query: this.q.insertDevice,
        params: [d.user, d.id, d.name, d.platform, d.createdAt, ...pushCells(d.push)],
      },
      { query: this.q.deviceAcked, params: [maxRegisterTimestamp(d.acked), d.acked, d.user, d.id] },
    ]);
  }

  async getDevice(user: UserId, device: DeviceId): Promise<DeviceRecord | undefined> {
    const rs = await this.read(this.q.getDevice, [user, device]);
    return rs.rowLength ? toDevice(user, rs.first()) : undefined;
  }

  async listDevices(user: UserId): Promise<DeviceRecord[]> {
    const out: DeviceRecord[] = [];
    for (const row of await this.readAll(this.q.listDevices, [user])) {
      const d = toDevice(user, row);
      if (d) out.push(d);
    }
    return out;
  }

  async setDeviceAcked(user: UserId, device: DeviceId, ptr: number): Promise<void> {
    // A max-register: a lower or late ack never moves it back. On an unknown device this writes a lone
    // cell that no read treats as a device (a device is a row with created_at).
    await this.write(this.q.deviceAcked, [maxRegisterTimestamp(ptr), ptr, user, device]);
  }

  async setDevicePush(user: UserId, device: DeviceId, push: PushRegistration | undefined): Promise<void> {
    const rs = await this.read(this.q.getDevice, [user, device]);
    if (!rs.rowLength || !toDevice(user, rs.first())) return;
    await this.write(this.q.devicePush, [...pushCells(push), user, device]);
  }

  /** Lightweight transactions only, so two claims of one token are serial and each learns whom it replaced. */
  async claimPushToken(token: string, owner: DeviceKey): Promise<DeviceKey | undefined> {
    try {
      for (let round = 0; round < FENCE_CAS_ROUNDS; round++) {
        const created = await this.lwt(this.q.pushTokenCreate, [token, owner]);
        if (created.first().get(LWT_APPLIED)) return undefined;
        const holder = created.first().get('device') as DeviceKey | null;
        if (holder === owner) return undefined;
        if (holder == null) continue; // released meanwhile
        const moved = await this.lwt(this.q.pushTokenMove, [owner, token, holder]);
        if (moved.first().get(LWT_APPLIED)) return holder;
      }
    } catch (err) {
      throw storeError(err);
    }
    throw new ParleyError('store_unavailable', 'this push token is being registered too often; try again');
  }

  async releasePushToken(token: string, owner: DeviceKey): Promise<void> {
    try {
      await this.lwt(this.q.pushTokenRelease, [token, owner]);
    } catch (err) {
      throw storeError(err);
    }
  }

  async putPushMark(device: DeviceKey, mark: PushMark): Promise<void> {
    await this.write(this.q.putPushMark, [device, Buffer.from(pack(mark))]);
  }

  async deletePushMark(device: DeviceKey): Promise<void> {
    await this.write(this.q.deletePushMark, [device]);
  }

  /** A scan of a small table, once at start. */
  async listPushMarks(): Promise<PushMark[]> {
    return (await this.readAll(this.q.listPushMarks, [])).map((r) => unpack(bytes(r.get('mark'))) as PushMark);
  }

  async getMutes(user: UserId): Promise<Map<ConversationId, number>> {
    const out = new Map<ConversationId, number>();
    for (const r of await this.readAll(this.q.getMutes, [user])) out.set(r.get('conv') as ConversationId, num(r.get('until'))!);
    return out;
  }

  async setMute(user: UserId, conv: ConversationId, until: number): Promise<void> {
    await (until > 0 ? this.write(this.q.setMute, [user, conv, until]) : this.write(this.q.deleteMute, [user, conv]));
  }

  async setDeviceActive(user: UserId, device: DeviceId, at: number): Promise<void> {
    // A max-register like acked; on an unknown (or deleted) device, a lone cell no read treats as a device.
    await this.write(this.q.deviceActive, [maxRegisterTimestamp(at), at, user, device]);
  }

  /**
   * A row tombstone at the current (client) time: it shadows the device's cells whenever they were written,
   * since acked and last_active are written with register timestamps far below it (buckets.ts), and ids are
   * never reused.
   */
  async deleteDevice(user: UserId, device: DeviceId): Promise<void> {
    await this.write(this.q.deleteDevice, [user, device]);
  }

  async getOtp(phone: string): Promise<OtpRecord | undefined> {
    return liveOtp((await this.readOtp(phone, this.cl)).record);
  }

  /**
   * Group commit per phone, over a compare-and-set on the row's `rev`: the steps this process has queued for
   * a phone run in order on one read of the row (each sees what the one before decided, as in LMDB's write
   * batch), and what they leave is written with one lightweight transaction; if another node wrote first, all
   * of them run again on its row. One batch per phone is in flight at a time, so Paxos only arbitrates between
   * nodes: 2,000 concurrent lightweight transactions on one partition mostly fail with contention timeouts.
   */
  otpUpdate<T>(phone: string, step: (cur: OtpRecord | undefined) => OtpStep<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let q = this.otpQueues.get(phone);
      if (!q) this.otpQueues.set(phone, (q = []));
      q.push({ step, resolve: resolve as (v: unknown) => void, reject });
      if (q.length === 1) void this.drainOtp(phone, q);
    });
  }

  // ---- fences: every change a lightweight transaction (one per activation, one per reserved block) ----

  async claimEpoch(key: FenceKey, atLeast = 0): Promise<FenceClaim> {
    const owner = randomBytes(8).toString('hex');
    let row = await this.readFence(key);
    for (let round = 0; round < FENCE_CAS_ROUNDS; round++) {
      const claim: FenceClaim = { epoch: Math.max((row?.epoch ?? 0) + 1, atLeast), reserved: row?.reserved ?? 0 };
      try {
        const rs = row
          ? await this.lwt(this.q.fenceClaim, [claim.epoch, owner, key, row.epoch, row.reserved])
          : await this.lwt(this.q.fenceCreate, [key, claim.epoch, owner]);
        if (rs.first().get(LWT_APPLIED)) return claim;
      } catch (err) {
        const mapped = storeError(err);
        if (!(mapped instanceof ParleyError) || neverSent(err)) throw mapped;
        // The outcome is unknown (a Paxos round timed out): a serial read completes any round in flight.
        const now = await this.readFence(key).catch(() => { throw mapped; });
        if (now?.owner === owner) return { epoch: now.epoch, reserved: claim.reserved };
        throw mapped;
      }
      // Lost to another claim or reservation: read again, after a short random pause so racers drift apart.
      await new Promise((r) => setTimeout(r, randomInt(0, Math.min(OTP_CAS_BACKOFF_MS, 2 ** round) + 1)));
      row = await this.readFence(key);
    }
    throw new ParleyError('store_unavailable', `${key} is being claimed too often; try again`);
  }

  async reserve(key: FenceKey, epoch: number, upTo: number): Promise<void> {
    await this.fenced(this.q.fenceReserve, [upTo, key, epoch, upTo], key, epoch);
  }

  async release(key: FenceKey, epoch: number, upTo: number): Promise<void> {
    await this.fenced(this.q.fenceRelease, [upTo, key, epoch], key, epoch);
  }

  /** A conditional write on the key's epoch: not applied under the same epoch is fine (the mark was higher). */
  private async fenced(query: string, params: Params, key: FenceKey, epoch: number): Promise<void> {
    let rs: types.ResultSet;
    try {
      rs = await this.lwt(query, params);
    } catch (err) {
      throw storeError(err); // reserve and release may be sent again: both are idempotent
    }
    const r = rs.first();
    if (r.get(LWT_APPLIED)) return;
    const seen = r.get('epoch') == null ? (await this.readFence(key))?.epoch : num(r.get('epoch'));
    if (seen !== epoch) throw new ParleyError('stale_owner', `${key}: epoch ${epoch} is no longer its owner's (now ${seen ?? 'none'}); send it again`);
  }

  private async readFence(key: FenceKey): Promise<{ epoch: number; reserved: number; owner?: string } | undefined> {
    let rs: types.ResultSet;
    try {
      rs = await this.track(this.client.execute(this.q.fenceGet, [key], { prepare: true, consistency: this.serialCl, isIdempotent: true }));
    } catch (err) {
      throw storeError(err);
    }
    const r = rs.first();
    if (!r) return undefined;
    return { epoch: num(r.get('epoch')) ?? 0, reserved: num(r.get('reserved')) ?? 0, owner: r.get('owner') ?? undefined };
  }

  private async drainOtp(phone: string, q: OtpWaiter[]): Promise<void> {
    while (q.length) {
      const batch = q.slice(0, OTP_BATCH_MAX);
      try {
        const results = await this.casOtp(phone, batch.map((w) => w.step));
        batch.forEach((w, i) => w.resolve(results[i]));
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
      q.splice(0, batch.length);
    }
    this.otpQueues.delete(phone);
  }

  private async casOtp(phone: string, steps: OtpWaiter['step'][]): Promise<unknown[]> {
    // The first read is a plain quorum read: it sees every completed change, and a decision to write is
    // checked by the condition anyway. After a lost round the serial read also completes any round in flight.
    let row = await this.readOtp(phone, this.cl);
    const mine = new Map<string, unknown[]>(); // op id of each write this batch sent → its answers
    for (let round = 0; round < OTP_CAS_ROUNDS; round++) {
      if (row.op !== undefined && mine.has(row.op)) return mine.get(row.op)!;
      let cur = liveOtp(row.record);
      let last: OtpRecord | undefined;
      const results = steps.map((step) => {
        const { next, result } = step(cur);
        if (next) cur = liveOtp((last = next));
        return result;
      });
      if (!last) return results;
      const op = randomBytes(8).toString('hex');
      mine.set(op, results);
      const cells = [
        last.codeHash ?? null, last.codeExpiresAt, last.attempts, last.sentAt, last.sends,
        last.guesses, last.guessWindow, last.guessers, last.expiresAt,
      ];
      try {
        // An UPDATE even for a new row (IF rev = null holds for a missing row): an INSERT's row marker would
        // outlive the cells and leave an empty row behind. A new row's rev starts anywhere, so a writer that
        // read the row before it expired can't match the rev of the one that replaced it.
        const rev = row.rev === undefined ? randomInt(1, 2 ** 30) : row.rev + 1;
        const rs = await this.lwt(this.q.otpUpdate, [ttlUntil(last.expiresAt), rev, op, ...cells, phone, row.rev ?? null]);
        if (rs.first().get(LWT_APPLIED)) return results;
      } catch (err) {
        const mapped = storeError(err);
        if (!(mapped instanceof ParleyError) || neverSent(err)) throw mapped;
        // The outcome is unknown (a Paxos round timed out): a serial read settles it, and the answers are that
        // write's if it landed. If it did not, the callers are told to try again rather than have it retried
        // here against a database that just failed to answer.
        row = await this.readOtp(phone, this.serialCl).catch(() => { throw mapped; });
        if (row.op !== undefined && mine.has(row.op)) return mine.get(row.op)!;
        throw mapped;
      }
      // Lost to another node's write: a random pause, growing, so two nodes that keep colliding drift apart.
      await new Promise((r) => setTimeout(r, randomInt(0, Math.min(OTP_CAS_BACKOFF_MS, 2 ** round) + 1)));
      row = await this.readOtp(phone, this.serialCl);
    }
    throw new ParleyError('store_unavailable', 'this number\'s one-time code is changing too often; try again');
  }

  private async readOtp(phone: string, cl: number): Promise<{ rev?: number; op?: string; record?: OtpRecord }> {
    let rs: types.ResultSet;
    try {
      rs = await this.track(this.client.execute(this.q.otpGet, [phone], { prepare: true, consistency: cl, isIdempotent: true }));
    } catch (err) {
      throw storeError(err);
    }
    const r = rs.first();
    if (!r || r.get('rev') == null) return {};
    const record: OtpRecord = {
      codeExpiresAt: num(r.get('code_expires_at')) ?? 0, attempts: r.get('attempts') ?? 0,
      sentAt: num(r.get('sent_at')) ?? 0, sends: r.get('sends') ?? 0,
      guesses: r.get('guesses') ?? 0, guessWindow: num(r.get('guess_window')) ?? 0,
      guessers: { ...((r.get('guessers') ?? {}) as Record<string, number>) }, expiresAt: num(r.get('expires_at')) ?? 0,
    };
    const hash = r.get('code_hash') as string | null;
    if (hash != null) record.codeHash = hash;
    return { rev: r.get('rev'), op: r.get('op') ?? undefined, record };
  }

  /** A lightweight transaction: never retried by the driver (a second round could apply it twice). */
  private lwt(query: string, params: Params): Promise<types.ResultSet> {
    return this.track(this.client.execute(query, params, {
      prepare: true, consistency: this.cl, serialConsistency: this.serialCl, isIdempotent: false,
    }));
  }

  async getContacts(user: UserId): Promise<UserId[]> {
    return (await this.readAll(this.q.getContacts, [user])).map((r) => r.get('contact') as UserId);
  }

  async setContacts(user: UserId, add: UserId[], remove: UserId[]): Promise<void> {
    if (!add.length && !remove.length) return;
    // The reverse index is a superset of the contacts: its adds land before, its removes after.
    const gone = remove.filter((c) => !add.includes(c));
    await Promise.all(add.filter((c) => !remove.includes(c)).map((c) => this.write(this.q.addContactRev, [c, user])));
    // One partition, one batch, one timestamp: a contact both added and removed ends up removed.
    await this.batch([
      ...add.map((c) => ({ query: this.q.addContact, params: [user, c] })),
      ...remove.map((c) => ({ query: this.q.removeContact, params: [user, c] })),
    ]);
    await Promise.all(gone.map((c) => this.write(this.q.removeContactRev, [c, user])));
  }

  async setLastSeen(user: UserId, ts: number): Promise<void> {
    await this.write(this.q.setLastSeen, [user, ts]);
  }

  async getLastSeen(user: UserId): Promise<number | undefined> {
    const rs = await this.read(this.q.getLastSeen, [user]);
    return rs.rowLength ? num(rs.first().get('ts')) : undefined;
  }

  // ---- groups ----

  async putGroup(g: GroupRecord): Promise<void> {
    const before = await this.getGroup(g.id);
    const was = new Set(Object.keys(before?.members ?? {}));
    const now = Object.keys(g.members);
    // New members' user → group rows first, then the group row, then the departed members' rows: a crash
    // part way leaves at most a stale user → group row (readers check the group), never a missing one.
    await Promise.all(now.filter((u) => !was.has(u)).map((u) => this.write(this.q.addUserGroup, [u, g.id])));
    await this.write(this.q.putGroup, [g.id, g.name, g.createdBy, g.createdAt, g.members]);
    await Promise.all([...was].filter((u) => !(u in g.members)).map((u) => this.write(this.q.removeUserGroup, [u, g.id])));
  }

  async getGroup(id: GroupId): Promise<GroupRecord | undefined> {
    const rs = await this.read(this.q.getGroup, [id]);
    if (!rs.rowLength) return undefined;
    const r = rs.first();
    const members: Record<UserId, GroupRole> = {};
    for (const [u, role] of Object.entries((r.get('members') ?? {}) as Record<string, string>)) members[u] = role as GroupRole;
    return { id, name: r.get('name'), createdBy: r.get('created_by'), createdAt: num(r.get('created_at'))!, members };
  }

  async userGroups(user: UserId): Promise<GroupId[]> {
    return (await this.readAll(this.q.userGroups, [user])).map((r) => r.get('group_id') as GroupId);
  }

  // ---- media ----

  async putMedia(m: MediaRecord): Promise<void> {
    // Who uploaded it, before the record: the index is never behind the media.
    await this.write(this.q.addUpload, [m.owner, m.id]);
    // Content-addressed ids: the first upload of some bytes owns the metadata.
    try {
      await this.track(this.client.execute(this.q.putMedia, [m.id, m.mime, m.size, m.owner, m.createdAt], {
        prepare: true, consistency: this.cl, serialConsistency: this.serialCl, isIdempotent: false,
      }));
    } catch (err) {
      throw storeError(err);
    }
  }

  async getMedia(id: string): Promise<MediaRecord | undefined> {
    const rs = await this.read(this.q.getMedia, [id]);
    if (!rs.rowLength) return undefined;
    const r = rs.first();
    return { id, mime: r.get('mime'), size: num(r.get('size'))!, owner: r.get('owner'), createdAt: num(r.get('created_at'))! };
  }

  async putMediaRefs(media: string, refs: MediaRef[]): Promise<void> {
    // A conversation holder's seq is a max-register (timestamp = seq); the others are written at the time,
    // so a later delete of them (an account's data) is not shadowed forever by a tiny timestamp.
    const now = Date.now() * 1000;
    const queries = refs.map((r) => ({
      query: this.q.putMediaRef, params: [media, r.holder, r.seq, r.holder.startsWith('c:') ? maxRegisterTimestamp(r.seq) : now],
    }));
    if (queries.length === 1) await this.write(queries[0]!.query, queries[0]!.params);
    else if (queries.length > 1) await this.batch(queries); // one partition: one mutation
  }

  async getMediaRefs(media: string, holders: MediaHolder[]): Promise<MediaRef[]> {
    const all = [...new Set(holders)];
    const chunks: MediaHolder[][] = [];
    // ScyllaDB refuses more than 100 values in one IN restriction (max_clustering_key_restrictions_per_query).
    for (let i = 0; i < all.length; i += MEDIA_IN_MAX) chunks.push(all.slice(i, i + MEDIA_IN_MAX));
    const results = await Promise.all(chunks.map((c) => this.read(this.q.getMediaRefs, [media, c])));
    return results.flatMap((rs) => rs.rows.map((r) => ({ holder: r.get('holder') as MediaHolder, seq: num(r.get('seq')) ?? 0 })));
  }

  // ---- journal and snapshots ----

  private journalPartition(seq: number): number {
    return Math.floor((seq - 1) / this.journalPartitionEvents);
  }

  async journalAppend(key: string, event: JournalEvent): Promise<void> {
    if (!Number.isSafeInteger(event.seq) || event.seq < 1) throw new ParleyError('invalid', `seq must be an integer >= 1, got ${event.seq}`);
    const partition = this.journalPartition(event.seq);
    // The partition index first, so every stored event is reachable by a replay.
    const indexed = `${key}\u0000${partition}`;
    if (!this.journalPartitionsWritten.has(indexed)) {
      await this.write(this.q.journalIndex, [key, partition]);
      this.journalPartitionsWritten.add(indexed);
      if (this.journalPartitionsWritten.size > BUCKET_CACHE_MAX) this.journalPartitionsWritten.delete(this.journalPartitionsWritten.values().next().value!);
    }
    // IF NOT EXISTS: two activations of one key (a takeover) can't replace each other's events. A lightweight
    // transaction per journaled event (a group change), never per chat message.
    const data = Buffer.from(pack(event.data));
    let rs: types.ResultSet;
    try {
      rs = await this.lwt(this.q.journalInsert, [key, partition, event.seq, data, [...event.tags], event.createdAt]);
    } catch (err) {
      throw storeError(err); // a retry compares with what landed
    }
    const r = rs.first();
    if (r.get(LWT_APPLIED)) return;
    const same = num(r.get('created_at')) === event.createdAt && Buffer.isBuffer(r.get('data')) && (r.get('data') as Buffer).equals(data);
    if (!same) throw new ParleyError('stale_owner', `event ${event.seq} of ${key} was written by another activation; replay and try again`);
  }

  async journalRead(key: string, afterSeq: number, limit: number): Promise<JournalEvent[]> {
    const out: JournalEvent[] = [];
    if (!(limit > 0)) return out;
    const after = Math.max(0, Math.floor(afterSeq));
    let pageState: string | undefined;
    const partitions: number[] = [];
    do {
      const rs = await this.exec(this.q.journalPartitions, [key, this.journalPartition(after + 1)], {
        idempotent: true, fetchSize: PAGE, ...(pageState ? { pageState } : {}),
      });
      for (const row of rs.rows) partitions.push(num(row.get('partition_nr'))!);
      pageState = rs.pageState ?? undefined;
    } while (pageState);
    for (const partition of partitions) {
      let rowsState: string | undefined;
      do {
        const rs = await this.exec(this.q.journalRange, [key, partition, after], {
          idempotent: true, fetchSize: Math.min(Math.max(limit - out.length, 1), PAGE), ...(rowsState ? { pageState: rowsState } : {}),
        });
        for (const row of rs.rows) {
          out.push({
            seq: num(row.get('seq'))!, data: unpack(row.get('data') as Buffer), tags: (row.get('tags') as string[] | null) ?? [],
            createdAt: num(row.get('created_at'))!,
          });
          if (out.length >= limit) return out;
        }
        rowsState = rs.pageState ?? undefined;
      } while (rowsState);
    }
    return out;
  }

  async snapshotPut(key: string, snapshot: SnapshotRecord): Promise<void> {
    if (!Number.isSafeInteger(snapshot.seq) || snapshot.seq < 0) throw new ParleyError('invalid', `seq must be an integer >= 0, got ${snapshot.seq}`);
    // One partition, one batch: the new snapshot and a range tombstone over the older ones.
    await this.batch([
      { query: this.q.snapshotInsert, params: [key, snapshot.seq, Buffer.from(pack(snapshot.data)), snapshot.createdAt] },
      { query: this.q.snapshotPrune, params: [key, snapshot.seq] },
    ]);
  }

  async snapshotLatest(key: string): Promise<SnapshotRecord | undefined> {
    const rs = await this.read(this.q.snapshotLatest, [key]);
    if (!rs.rowLength) return undefined;
    const r = rs.first();
    return { seq: num(r.get('seq'))!, data: unpack(r.get('data') as Buffer), createdAt: num(r.get('created_at'))! };
  }

  // ---- privacy ----

  async noteDirectConversation(conv: ConversationId, users: readonly UserId[]): Promise<void> {
    await Promise.all(users.map((u) => this.write(this.q.addUserConv, [u, conv])));
  }

  async directConversations(user: UserId): Promise<ConversationId[]> {
    return (await this.readAll(this.q.userConvs, [user])).map((r) => r.get('conv') as ConversationId);
  }

  async contactOf(user: UserId): Promise<UserId[]> {
    return (await this.readAll(this.q.contactsRev, [user])).map((r) => r.get('user_id') as UserId);
  }

  async uploadsOf(user: UserId): Promise<string[]> {
    return (await this.readAll(this.q.uploadsOf, [user])).map((r) => r.get('media') as string);
  }

  async listMediaRefs(media: string): Promise<MediaRef[]> {
    return (await this.readAll(this.q.listMediaRefs, [media])).map((r) => ({ holder: r.get('holder') as MediaHolder, seq: num(r.get('seq')) ?? 0 }));
  }

  async removeMediaRefs(media: string, holders: readonly MediaHolder[]): Promise<void> {
    // Later than every ref write (those carry the time, or a seq far below it).
    await Promise.all(holders.map((h) => this.write(this.q.removeMediaRef, [media, h])));
  }

  async deleteMedia(media: string): Promise<void> {
    await this.write(this.q.dropMediaRefs, [media]);
    await this.write(this.q.deleteMedia, [media]);
  }

  async setMediaOwner(media: string, owner: UserId): Promise<void> {
    if (await this.getMedia(media)) await this.write(this.q.setMediaOwner, [owner, media]);
  }

  async replaceMessage(m: Message): Promise<void> {
    await this.inFlight.get(`${m.conv}\u0000${m.seq}`)?.catch(() => undefined);
    const bucket = await this.bucketForSeq(m.conv, m.seq);
    if (bucket === undefined) return;
    if (!(await this.read(this.q.getMessage, [m.conv, bucket, m.seq])).rowLength) return; // gone (retention): nothing to replace
    // Timestamped like the appends: later than the write it replaces. The whole row, so no cell of the old one stays.
    await this.write(this.q.insertMessage, [
      m.conv, bucket, m.seq, m.from, m.dev, m.cid, m.kind, m.ts,
      m.body === undefined ? null : Buffer.from(pack(m.body)), m.reply ?? null, m.target ?? null, this.messageTtl, this.writeTimestamp(),
    ]);
  }

  async dropClientIds(conv: ConversationId, from: UserId, cids: readonly string[]): Promise<void> {
    await inParallelSlices(cids, (cid) => this.write(this.q.dropClientId, [conv, from, cid]));
  }

  async deleteMessagesUpTo(conv: ConversationId, seq: number): Promise<void> {
    await this.settled(conv);
    // Oldest bucket first; one range tombstone per bucket, stopping at the first bucket starting above seq.
    const ts = this.writeTimestamp();
    for await (const bucket of this.buckets(conv, Number.MIN_SAFE_INTEGER, true)) {
      const first = await this.read(this.q.bucketFirstSeq, [conv, bucket]);
      if ((num(first.first()?.get('first_seq')) ?? 0) > seq) break;
      await this.write(this.q.deleteMessagesUpTo, [ts, conv, bucket, seq]);
    }
  }

  async dropConversation(conv: ConversationId): Promise<void> {
    await this.settled(conv);
    for await (const bucket of this.buckets(conv, Number.MIN_SAFE_INTEGER, true)) {
      // The client ids of its messages first (their rows are keyed by sender and cid), then the partition.
      let pageState: string | undefined;
      do {
        const rs = await this.exec(this.q.bucketCids, [conv, bucket], { idempotent: true, fetchSize: PAGE, ...(pageState ? { pageState } : {}) });
        await Promise.all(rs.rows.map((r) => this.write(this.q.dropClientId, [conv, r.get('sender'), r.get('cid')])));
        pageState = rs.pageState ?? undefined;
      } while (pageState);
      await this.write(this.q.dropBucket, [this.writeTimestamp(), conv, bucket]);
    }
    await Promise.all([
      this.write(this.q.dropBuckets, [conv]),
      this.write(this.q.dropCursors, [conv]),
      this.write(this.q.dropFanoutMark, [conv]),
      this.write(this.q.forgetAll, [rememberShard(conv), conv]),
      this.write(this.q.dropFence, [`c/${conv}`]),
      ...(() => { const p = parseConversationId(conv); return p?.kind === 'direct' ? p.users.map((u) => this.write(this.q.dropUserConv, [u, conv])) : []; })(),
    ]);
  }

  async deleteCursor(conv: ConversationId, user: UserId): Promise<void> {
    await this.write(this.q.deleteCursor, [conv, user]);
  }

  async dropFence(key: FenceKey): Promise<void> {
    await this.write(this.q.dropFence, [key]);
  }

  async journalReplace(key: string, event: JournalEvent): Promise<void> {
    // Events are written by lightweight transactions: replaced by one too (IF EXISTS: none, nothing to do).
    try {
      await this.lwt(this.q.journalReplace, [Buffer.from(pack(event.data)), [...event.tags], event.createdAt, key, this.journalPartition(event.seq), event.seq]);
    } catch (err) {
      throw storeError(err);
    }
  }

  async deleteAccount(user: UserId, phone: string): Promise<void> {
    const contacts = await this.getContacts(user);
    await Promise.all(contacts.map((c) => this.write(this.q.removeContactRev, [c, user])));
    try {
      await this.lwt(this.q.releasePhone, [phone, user]);
      await this.lwt(this.q.dropOtp, [phone]);
    } catch (err) {
      throw storeError(err);
    }
    await Promise.all([
      this.write(this.q.deleteUser, [user]),
      this.write(this.q.dropLastSeen, [user]),
      this.write(this.q.dropContacts, [user]),
      this.write(this.q.dropContactsRev, [user]),
      this.write(this.q.dropMutes, [user]),
      this.write(this.q.dropUserConvs, [user]),
      this.write(this.q.dropUploads, [user]),
      this.write(this.q.dropUserGroups, [user]),
      this.write(this.q.dropDevOutbox, ['sms', phone]),
      this.write(this.q.dropDevOutbox, ['push', user]),
    ]);
  }

  async putErasure(e: ErasureRecord): Promise<void> {
    await this.write(this.q.putErasure, [e.user, e.phone, e.at, e.step]);
  }

  async getErasure(user: UserId): Promise<ErasureRecord | undefined> {
    const rs = await this.read(this.q.getErasure, [user]);
    return rs.rowLength ? toErasure(rs.first()) : undefined;
  }

  async listErasures(): Promise<ErasureRecord[]> {
    return (await this.readAll(this.q.listErasures, [])).map(toErasure);
  }

  async deleteErasure(user: UserId): Promise<void> {
    await this.write(this.q.deleteErasure, [user]);
  }

  /** Lets requests in flight finish (up to the request timeout), tries pending rollbacks once, disconnects. */
  // ---- dev outboxes ----

  async devOutboxAdd(box: DevOutbox, key: string, data: Uint8Array): Promise<void> {
    // `id` orders one node's entries of one millisecond (a monotonic clock, fixed width) and keeps nodes' apart.
    const id = `${process.hrtime.bigint().toString(16).padStart(16, '0')}${randomBytes(4).toString('hex')}`;
    await this.write(this.q.devOutboxAdd, [box, key, Date.now(), id, Buffer.from(data), Math.ceil(DEV_OUTBOX_TTL_MS / 1000)]);
  }

  /** The newest DEV_OUTBOX_KEEP rows (the TTL removes the rest), oldest first. */
  async devOutboxList(box: DevOutbox, key: string): Promise<DevOutboxEntry[]> {
    const rs = await this.read(this.q.devOutboxList, [box, key, DEV_OUTBOX_KEEP]);
    return rs.rows.map((r) => ({ at: num(r.get('at'))!, data: new Uint8Array(r.get('data') as Buffer) })).reverse();
  }

  async putAnalytics(period: string, source: string, data: Uint8Array): Promise<void> {
    await this.write(this.q.putAnalytics, [period, source, Buffer.from(data), Math.ceil(ANALYTICS_KEEP_MS / 1000)]);
  }

  /** A partition per period, read in parallel (a report reads at most ~414). */
  async analyticsRows(periods: readonly string[]): Promise<AnalyticsRow[]> {
    const per = await Promise.all([...new Set(periods)].map((p) => this.readAll(this.q.analyticsRows, [p])));
    return per.flat().map((r) => ({ period: r.get('period') as string, source: r.get('source') as string, data: new Uint8Array(r.get('data') as Buffer) }));
  }

  async close(): Promise<void> {
    this.blobs?.stop();
    if (this.rollbackTimer) clearInterval(this.rollbackTimer);
    this.rollbackTimer = undefined;
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<void>((res) => { timer = setTimeout(res, this.requestTimeoutMs + 1000); });
    await Promise.race([Promise.allSettled([...this.requests]), cap]);
    const pending = [...this.rollbacks.values()].flatMap((set) => [...set]);
    await Promise.race([Promise.allSettled(pending.map((r) => this.runRollback(r))), cap]);
    clearTimeout(timer);
    const left = [...this.rollbacks.values()].reduce((n, set) => n + set.size, 0);
    if (left) log('warn', 'closing the Scylla store with failed appends not yet rolled back', { count: left });
    await this.client.shutdown();
  }
}

/** Every statement, written once per keyspace and prepared by the driver on first use. */
function statements(ks: string) {
  return {
    insertMessage: `INSERT INTO ${ks}.messages (conv, bucket, seq, sender, dev, cid, kind, ts, body, reply, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?`,
    insertClientId: `INSERT INTO ${ks}.client_ids (conv, sender, cid, seq) VALUES (?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?`,
    undoMessage: `DELETE FROM ${ks}.messages USING TIMESTAMP ? WHERE conv = ? AND bucket = ? AND seq = ?`,
    undoClientId: `DELETE FROM ${ks}.client_ids USING TIMESTAMP ? WHERE conv = ? AND sender = ? AND cid = ?`,
    getClientId: `SELECT seq FROM ${ks}.client_ids WHERE conv = ? AND sender = ? AND cid = ?`,
    indexBucket: `UPDATE ${ks}.conv_buckets USING TTL ? AND TIMESTAMP ? SET first_seq = ? WHERE conv = ? AND bucket = ?`,
    bucketForSeq: `SELECT bucket FROM ${ks}.conv_buckets WHERE conv = ? AND first_seq <= ? LIMIT 1 ALLOW FILTERING`,
    bucketForTs: `SELECT bucket FROM ${ks}.conv_buckets WHERE conv = ? AND bucket <= ? LIMIT 1`,
    bucketsAsc: `SELECT bucket FROM ${ks}.conv_buckets WHERE conv = ? AND bucket >= ? ORDER BY bucket ASC`,
    bucketsDesc: `SELECT bucket FROM ${ks}.conv_buckets WHERE conv = ? AND bucket <= ?`,
    getMessage: `SELECT seq, sender, dev, cid, kind, ts, body, reply, target FROM ${ks}.messages WHERE conv = ? AND bucket = ? AND seq = ?`,
    rangeAsc: `SELECT seq, sender, dev, cid, kind, ts, body, reply, target FROM ${ks}.messages WHERE conv = ? AND bucket = ? AND seq >= ? AND seq <= ? ORDER BY seq ASC`,
    rangeDesc: `SELECT seq, sender, dev, cid, kind, ts, body, reply, target FROM ${ks}.messages WHERE conv = ? AND bucket = ? AND seq >= ? AND seq <= ?`,
    lastInBucket: `SELECT seq FROM ${ks}.messages WHERE conv = ? AND bucket = ? LIMIT 1`,
    redact: `DELETE body FROM ${ks}.messages USING TIMESTAMP ? WHERE conv = ? AND bucket = ? AND seq = ?`,

    getCursors: `SELECT user_id, delivered, read_upto, visible_from FROM ${ks}.receipt_cursors WHERE conv = ?`,
    getFanoutMark: `SELECT seq FROM ${ks}.fanout_marks WHERE conv = ?`,
    remember: `INSERT INTO ${ks}.remembered_convs (shard, conv) VALUES (?, ?) USING TIMESTAMP ?`,
    forget: `DELETE FROM ${ks}.remembered_convs USING TIMESTAMP ? WHERE shard = ? AND conv = ?`,
    remembered: `SELECT conv FROM ${ks}.remembered_convs WHERE shard = ?`,
    setFanoutMark: `UPDATE ${ks}.fanout_marks USING TIMESTAMP ? SET seq = ? WHERE conv = ?`,
    setCursor: `UPDATE ${ks}.receipt_cursors SET delivered = ?, read_upto = ? WHERE conv = ? AND user_id = ?`,
    setCursorFrom: `UPDATE ${ks}.receipt_cursors SET delivered = ?, read_upto = ?, visible_from = ? WHERE conv = ? AND user_id = ?`,

    inboxInsert: `INSERT INTO ${ks}.inbox (device, ptr, conv, seq, packed, expires_at) VALUES (?, ?, ?, ?, ?, ?) USING TTL ?`,
    inboxHigh: `UPDATE ${ks}.inbox USING TIMESTAMP ? SET last_ptr = ? WHERE device = ?`,
    inboxRange: `SELECT ptr, conv, seq, packed, expires_at FROM ${ks}.inbox WHERE device = ? AND ptr > ?`,
    inboxLastPtr: `SELECT last_ptr FROM ${ks}.inbox WHERE device = ? LIMIT 1`,
    inboxDeleteUpTo: `DELETE FROM ${ks}.inbox WHERE device = ? AND ptr <= ?`,
    inboxDrop: `DELETE FROM ${ks}.inbox WHERE device = ?`,

    insertUser: `INSERT INTO ${ks}.users (id, phone, name, avatar, created_at, last_seen_privacy) VALUES (?, ?, ?, ?, ?, ?)`,
    deleteUser: `DELETE FROM ${ks}.users WHERE id = ?`,
    getUser: `SELECT phone, name, avatar, created_at, last_seen_privacy FROM ${ks}.users WHERE id = ?`,
    userExists: `SELECT id FROM ${ks}.users WHERE id = ?`,
    claimPhone: `INSERT INTO ${ks}.phones (phone, user_id) VALUES (?, ?) IF NOT EXISTS`,
    userByPhone: `SELECT user_id FROM ${ks}.phones WHERE phone = ?`,

    insertDevice: `INSERT INTO ${ks}.devices (user_id, id, name, platform, created_at, ${PUSH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    deviceAcked: `UPDATE ${ks}.devices USING TIMESTAMP ? SET acked = ? WHERE user_id = ? AND id = ?`,
    devicePush: `UPDATE ${ks}.devices SET ${PUSH_COLUMNS.split(', ').map((c) => `${c} = ?`).join(', ')} WHERE user_id = ? AND id = ?`,
    pushTokenCreate: `INSERT INTO ${ks}.push_tokens (token_hash, device) VALUES (?, ?) IF NOT EXISTS`,
    pushTokenMove: `UPDATE ${ks}.push_tokens SET device = ? WHERE token_hash = ? IF device = ?`,
    pushTokenRelease: `DELETE FROM ${ks}.push_tokens WHERE token_hash = ? IF device = ?`,
    getMutes: `SELECT conv, until FROM ${ks}.mutes WHERE user_id = ?`,
    putPushMark: `INSERT INTO ${ks}.push_marks (device, mark) VALUES (?, ?)`,
    deletePushMark: `DELETE FROM ${ks}.push_marks WHERE device = ?`,
    devOutboxAdd: `INSERT INTO ${ks}.dev_outbox (box, key, at, id, data) VALUES (?, ?, ?, ?, ?) USING TTL ?`,
    devOutboxList: `SELECT at, data FROM ${ks}.dev_outbox WHERE box = ? AND key = ? LIMIT ?`,
    dropDevOutbox: `DELETE FROM ${ks}.dev_outbox WHERE box = ? AND key = ?`,
    putAnalytics: `INSERT INTO ${ks}.analytics (period, source, data) VALUES (?, ?, ?) USING TTL ?`,
    analyticsRows: `SELECT period, source, data FROM ${ks}.analytics WHERE period = ?`,
    listPushMarks: `SELECT device, mark FROM ${ks}.push_marks`,
    setMute: `INSERT INTO ${ks}.mutes (user_id, conv, until) VALUES (?, ?, ?)`,
    deleteMute: `DELETE FROM ${ks}.mutes WHERE user_id = ? AND conv = ?`,
    deviceActive: `UPDATE ${ks}.devices USING TIMESTAMP ? SET last_active = ? WHERE user_id = ? AND id = ?`,
    deleteDevice: `DELETE FROM ${ks}.devices WHERE user_id = ? AND id = ?`,
    getDevice: `SELECT id, name, platform, created_at, acked, ${PUSH_COLUMNS}, last_active FROM ${ks}.devices WHERE user_id = ? AND id = ?`,
    listDevices: `SELECT id, name, platform, created_at, acked, ${PUSH_COLUMNS}, last_active FROM ${ks}.devices WHERE user_id = ?`,

    fenceGet: `SELECT epoch, reserved, owner FROM ${ks}.fences WHERE entity = ?`,
    fenceCreate: `INSERT INTO ${ks}.fences (entity, epoch, reserved, owner) VALUES (?, ?, 0, ?) IF NOT EXISTS`,
    // On the reserved mark too: a claim between a read and a reservation of the old owner would miss it.
    fenceClaim: `UPDATE ${ks}.fences SET epoch = ?, owner = ? WHERE entity = ? IF epoch = ? AND reserved = ?`,
    fenceReserve: `UPDATE ${ks}.fences SET reserved = ? WHERE entity = ? IF epoch = ? AND reserved < ?`,
    fenceRelease: `UPDATE ${ks}.fences SET reserved = ? WHERE entity = ? IF epoch = ?`,

    otpGet: `SELECT rev, op, code_hash, code_expires_at, attempts, sent_at, sends, guesses, guess_window, guessers, expires_at FROM ${ks}.otp_state WHERE phone = ?`,
    otpUpdate: `UPDATE ${ks}.otp_state USING TTL ? SET rev = ?, op = ?, code_hash = ?, code_expires_at = ?, attempts = ?, sent_at = ?, sends = ?,
      guesses = ?, guess_window = ?, guessers = ?, expires_at = ? WHERE phone = ? IF rev = ?`,

    getContacts: `SELECT contact FROM ${ks}.contacts WHERE user_id = ?`,
    addContact: `INSERT INTO ${ks}.contacts (user_id, contact) VALUES (?, ?)`,
    removeContact: `DELETE FROM ${ks}.contacts WHERE user_id = ? AND contact = ?`,

    setLastSeen: `INSERT INTO ${ks}.last_seen (user_id, ts) VALUES (?, ?)`,
    getLastSeen: `SELECT ts FROM ${ks}.last_seen WHERE user_id = ?`,

    putGroup: `INSERT INTO ${ks}.chat_groups (id, name, created_by, created_at, members) VALUES (?, ?, ?, ?, ?)`,
    getGroup: `SELECT name, created_by, created_at, members FROM ${ks}.chat_groups WHERE id = ?`,
    addUserGroup: `INSERT INTO ${ks}.user_groups (user_id, group_id) VALUES (?, ?)`,
    removeUserGroup: `DELETE FROM ${ks}.user_groups WHERE user_id = ? AND group_id = ?`,
    userGroups: `SELECT group_id FROM ${ks}.user_groups WHERE user_id = ?`,

    putMedia: `INSERT INTO ${ks}.media (id, mime, size, owner, created_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS`,
    getMedia: `SELECT mime, size, owner, created_at FROM ${ks}.media WHERE id = ?`,
    putMediaRef: `INSERT INTO ${ks}.media_refs (media, holder, seq) VALUES (?, ?, ?) USING TIMESTAMP ?`,
    getMediaRefs: `SELECT holder, seq FROM ${ks}.media_refs WHERE media = ? AND holder IN ?`,

    journalIndex: `INSERT INTO ${ks}.journal_partitions (key, partition_nr) VALUES (?, ?)`,
    journalInsert: `INSERT INTO ${ks}.journal (key, partition_nr, seq, data, tags, created_at) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    journalPartitions: `SELECT partition_nr FROM ${ks}.journal_partitions WHERE key = ? AND partition_nr >= ?`,
    journalRange: `SELECT seq, data, tags, created_at FROM ${ks}.journal WHERE key = ? AND partition_nr = ? AND seq > ?`,
    snapshotInsert: `INSERT INTO ${ks}.snapshots (key, seq, data, created_at) VALUES (?, ?, ?, ?)`,
    snapshotPrune: `DELETE FROM ${ks}.snapshots WHERE key = ? AND seq < ?`,
    snapshotLatest: `SELECT seq, data, created_at FROM ${ks}.snapshots WHERE key = ? LIMIT 1`,

    // ---- privacy (v12) ----
    addUserConv: `INSERT INTO ${ks}.user_convs (user_id, conv) VALUES (?, ?)`,
    userConvs: `SELECT conv FROM ${ks}.user_convs WHERE user_id = ?`,
    addContactRev: `INSERT INTO ${ks}.contacts_rev (contact, user_id) VALUES (?, ?)`,
    removeContactRev: `DELETE FROM ${ks}.contacts_rev WHERE contact = ? AND user_id = ?`,
    contactsRev: `SELECT user_id FROM ${ks}.contacts_rev WHERE contact = ?`,
    addUpload: `INSERT INTO ${ks}.uploads (user_id, media) VALUES (?, ?)`,
    uploadsOf: `SELECT media FROM ${ks}.uploads WHERE user_id = ?`,
    listMediaRefs: `SELECT holder, seq FROM ${ks}.media_refs WHERE media = ?`,
    removeMediaRef: `DELETE FROM ${ks}.media_refs WHERE media = ? AND holder = ?`,
    dropMediaRefs: `DELETE FROM ${ks}.media_refs WHERE media = ?`,
    deleteMedia: `DELETE FROM ${ks}.media WHERE id = ?`,
    setMediaOwner: `UPDATE ${ks}.media SET owner = ? WHERE id = ?`,
    dropClientId: `DELETE FROM ${ks}.client_ids WHERE conv = ? AND sender = ? AND cid = ?`,
    bucketFirstSeq: `SELECT first_seq FROM ${ks}.conv_buckets WHERE conv = ? AND bucket = ?`,
    deleteMessagesUpTo: `DELETE FROM ${ks}.messages USING TIMESTAMP ? WHERE conv = ? AND bucket = ? AND seq <= ?`,
    bucketCids: `SELECT sender, cid FROM ${ks}.messages WHERE conv = ? AND bucket = ?`,
    dropBucket: `DELETE FROM ${ks}.messages USING TIMESTAMP ? WHERE conv = ? AND bucket = ?`,
    dropBuckets: `DELETE FROM ${ks}.conv_buckets WHERE conv = ?`,
    dropCursors: `DELETE FROM ${ks}.receipt_cursors WHERE conv = ?`,
    deleteCursor: `DELETE FROM ${ks}.receipt_cursors WHERE conv = ? AND user_id = ?`,
    dropFanoutMark: `DELETE FROM ${ks}.fanout_marks WHERE conv = ?`,
    forgetAll: `DELETE FROM ${ks}.remembered_convs WHERE shard = ? AND conv = ?`,
    dropFence: `DELETE FROM ${ks}.fences WHERE entity = ?`,
    journalReplace: `UPDATE ${ks}.journal SET data = ?, tags = ?, created_at = ? WHERE key = ? AND partition_nr = ? AND seq = ? IF EXISTS`,
    releasePhone: `DELETE FROM ${ks}.phones WHERE phone = ? IF user_id = ?`,
    dropOtp: `DELETE FROM ${ks}.otp_state WHERE phone = ? IF EXISTS`,
    dropLastSeen: `DELETE FROM ${ks}.last_seen WHERE user_id = ?`,
    dropContacts: `DELETE FROM ${ks}.contacts WHERE user_id = ?`,
    dropContactsRev: `DELETE FROM ${ks}.contacts_rev WHERE contact = ?`,
    dropMutes: `DELETE FROM ${ks}.mutes WHERE user_id = ?`,
    dropUserConv: `DELETE FROM ${ks}.user_convs WHERE user_id = ? AND conv = ?`,
    dropUserConvs: `DELETE FROM ${ks}.user_convs WHERE user_id = ?`,
    dropUploads: `DELETE FROM ${ks}.uploads WHERE user_id = ?`,
    dropUserGroups: `DELETE FROM ${ks}.user_groups WHERE user_id = ?`,
    putErasure: `INSERT INTO ${ks}.erasures (user_id, phone, at, step) VALUES (?, ?, ?, ?)`,
    getErasure: `SELECT user_id, phone, at, step FROM ${ks}.erasures WHERE user_id = ?`,
    listErasures: `SELECT user_id, phone, at, step FROM ${ks}.erasures`,
    deleteErasure: `DELETE FROM ${ks}.erasures WHERE user_id = ?`,
  };
}

// ---- rows ----

const toErasure = (r: types.Row): ErasureRecord => ({ user: r.get('user_id'), phone: r.get('phone'), at: num(r.get('at'))!, step: num(r.get('step')) ?? 0 });

function num(v: unknown): number | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof types.Long) return v.toNumber();
  return Number(v);
}

function bytes(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function toMessage(conv: ConversationId, r: types.Row): Message {
  const m: Message = {
    conv, seq: num(r.get('seq'))!, from: r.get('sender'), dev: r.get('dev'), cid: r.get('cid'),
    kind: r.get('kind') as MessageKind, ts: num(r.get('ts'))!,
  };
  const body = r.get('body') as Buffer | null;
  if (body) m.body = unpack(body) as Message['body'];
  const reply = num(r.get('reply'));
  if (reply !== undefined) m.reply = reply;
  const target = num(r.get('target'));
  if (target !== undefined) m.target = target;
  return m;
}

/** A one-time-code record as callers see it: none once it expired (the row itself may outlive it by a second). */
function liveOtp(r: OtpRecord | undefined): OtpRecord | undefined {
  return r && r.expiresAt > Date.now() ? r : undefined;
}

/** The device row's push registration columns, in the order pushCells gives their values. */
const PUSH_COLUMNS = 'push_platform, push_token, push_p256dh, push_auth, push_app, push_previews';
const pushCells = (p: PushRegistration | undefined): (string | boolean | null)[] =>
  [p?.platform ?? null, p?.token ?? null, p?.p256dh ?? null, p?.auth ?? null, p?.app ?? null, p ? p.previews === true : null];

/** A device is a row written by putDevice; a row with only acked/push cells is not one. */
function toDevice(user: UserId, r: types.Row): DeviceRecord | undefined {
  const createdAt = num(r.get('created_at'));
  if (createdAt === undefined) return undefined;
  const d: DeviceRecord = {
    user, id: r.get('id'), name: r.get('name'), platform: r.get('platform'), createdAt, acked: num(r.get('acked')) ?? 0,
  };
  if (r.get('push_platform') != null && r.get('push_token') != null) {
    const push: PushRegistration = { platform: r.get('push_platform') as PushPlatform, token: r.get('push_token') };
    if (r.get('push_p256dh') != null) push.p256dh = r.get('push_p256dh');
    if (r.get('push_auth') != null) push.auth = r.get('push_auth');
    if (r.get('push_app') != null) push.app = r.get('push_app');
    if (r.get('push_previews') === true) push.previews = true;
    d.push = push;
  }
  const lastActive = num(r.get('last_active'));
  if (lastActive !== undefined) d.lastActive = lastActive;
  return d;
}

// ---- errors ----

const RETRYABLE_CODES = new Set<number>([
  types.responseErrorCodes.serverError,
  types.responseErrorCodes.unavailableException,
  types.responseErrorCodes.overloaded,
  types.responseErrorCodes.isBootstrapping,
  types.responseErrorCodes.truncateError,
  types.responseErrorCodes.writeTimeout,
  types.responseErrorCodes.readTimeout,
  types.responseErrorCodes.readFailure,
  types.responseErrorCodes.writeFailure,
  0x1700, // CAS write unknown (protocol v5)
]);

/** Connection-level failures the driver reports as plain Errors (seen while a node restarts). */
const CONNECTION_FAILURES = /^(No connection available|Connection closed|Connection was unable to STARTUP|The operation was already cancelled or timeout elapsed)/;
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN', 'EAI_AGAIN']);

/**
 * Availability failures become ParleyError('store_unavailable') (retryable for clients); anything else
 * (a bad statement: a bug) is passed through and surfaces as an internal error.
 */
export function storeError(err: unknown, context = 'the message store is unavailable'): Error {
  if (err instanceof ParleyError) return err;
  const e = err as Error & { isSocketError?: boolean; code?: unknown };
  const unavailable =
    err instanceof errors.NoHostAvailableError ||
    err instanceof errors.OperationTimedOutError ||
    err instanceof errors.BusyConnectionError ||
    (err instanceof errors.ResponseError && RETRYABLE_CODES.has(err.code)) ||
    (err instanceof errors.DriverError && !(err instanceof errors.ResponseError) && !(err instanceof errors.ArgumentError) &&
      !(err instanceof errors.AuthenticationError) && !(err instanceof errors.NotSupportedError)) ||
    (err instanceof Error && !(err instanceof errors.DriverError) && (
      e.isSocketError === true ||
      (typeof e.code === 'string' && SOCKET_CODES.has(e.code)) ||
      (e.constructor === Error && CONNECTION_FAILURES.test(e.message))
    ));
  if (!unavailable) return e instanceof Error ? e : new Error(String(err));
  const out = new ParleyError('store_unavailable', `${context}; try again`);
  (out as Error & { cause?: unknown }).cause = err;
  return out;
}

/**
 * True when the driver never put the request on a wire (every host was down, busy, or failed before the
 * request was written): then it certainly was not applied.
 */
export function neverSent(err: unknown): boolean {
  const e = err instanceof ParleyError ? (err as Error & { cause?: unknown }).cause : err;
  if (!(e instanceof errors.NoHostAvailableError)) return false;
  const tried = Object.values((e.innerErrors ?? {}) as Record<string, unknown>);
  return tried.length > 0 && tried.every((x) =>
    typeof x === 'string' || x instanceof errors.BusyConnectionError || (x as { requestNotWritten?: boolean } | null)?.requestNotWritten === true);
}

/** A consistency level by driver name (localQuorum), CQL name (LOCAL_QUORUM) or number. */
export function consistency(c: ConsistencyName | string | number): number {
  if (typeof c === 'number') return c;
  const wanted = c.replace(/_/g, '').toLowerCase();
  for (const [name, value] of Object.entries(types.consistencies)) {
    if (name.toLowerCase() === wanted) return value as number;
  }
  throw new Error(`unknown consistency level ${c}`);
}

/** A keyspace name nobody else uses, for tests. */
export const scratchKeyspace = (prefix = 'parley_test'): string => `${prefix}_${randomBytes(6).toString('hex')}`;
