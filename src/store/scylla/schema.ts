import { randomBytes } from 'node:crypto';
import type { Client } from 'cassandra-driver';

/**
 * The CQL schema as data, and the runner that brings a keyspace up to date when a ScyllaStore opens.
 *
 * Every statement is portable CQL that ScyllaDB and Apache Cassandra (4.x, 5.x) both accept: no SAI,
 * no Cassandra-only options. `{ks}` is replaced by the (validated) keyspace name. A migration is applied
 * at most once per keyspace: applied versions are rows of `schema_version`; one opener at a time holds
 * `schema_lock` (a lightweight transaction with a TTL, so a crashed holder can't wedge it), and every
 * statement is also idempotent (IF NOT EXISTS) in case a holder died half way.
 *
 * Migrations are append-only: never edit one that has shipped, add the next version.
 */
export interface Migration {
  version: number;
  description: string;
  statements: string[];
  /**
   * An error a statement may meet if this migration ran before and was cut short (an ALTER has no IF NOT
   * EXISTS in every engine): the statement's work is already done.
   */
  done?: RegExp;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'initial schema',
    statements: [
      // ---- messages ----
      // One partition per conversation per time bucket (a day by default): bounded partitions however long
      // a conversation lives. Newest first, because history pages backwards from the end.
      `CREATE TABLE IF NOT EXISTS {ks}.messages (
        conv text, bucket bigint, seq bigint,
        sender text, dev text, cid text, kind text, ts bigint,
        body blob, reply bigint, target bigint,
        PRIMARY KEY ((conv, bucket), seq)
      ) WITH CLUSTERING ORDER BY (seq DESC)`,
      // Which buckets a conversation has, and the lowest seq in each (a min-register kept with write
      // timestamps). seq and ts grow together, so the bucket holding seq s is the newest one whose
      // first_seq <= s.
      `CREATE TABLE IF NOT EXISTS {ks}.conv_buckets (
        conv text, bucket bigint, first_seq bigint,
        PRIMARY KEY ((conv), bucket)
      ) WITH CLUSTERING ORDER BY (bucket DESC)`,
      // (conv, sender, client id) → seq for idempotent resends; expires on its own.
      `CREATE TABLE IF NOT EXISTS {ks}.client_ids (
        conv text, sender text, cid text, seq bigint,
        PRIMARY KEY ((conv, sender, cid))
      ) WITH default_time_to_live = 604800 AND gc_grace_seconds = 10800`,
      // Receipt cursors: one small partition per conversation, a row per member.
      `CREATE TABLE IF NOT EXISTS {ks}.receipt_cursors (
        conv text, user_id text, delivered bigint, read_upto bigint,
        PRIMARY KEY ((conv), user_id)
      )`,
      // ---- per-device transient inbox ----
      // Rows expire by TTL (set from expiresAt); acks delete a prefix with one range tombstone. last_ptr
      // (static: one per partition) is the high-water mark, a max-register that outlives deletes and TTLs.
      // Short gc_grace: a resurrected, already-acked entry is harmless (the device skips ptr <= acked).
      `CREATE TABLE IF NOT EXISTS {ks}.inbox (
        device text, ptr bigint,
        conv text, seq bigint, packed blob, expires_at bigint,
        last_ptr bigint static,
        PRIMARY KEY ((device), ptr)
      ) WITH CLUSTERING ORDER BY (ptr ASC) AND gc_grace_seconds = 10800`,
      // ---- accounts ----
      `CREATE TABLE IF NOT EXISTS {ks}.users (
        id text PRIMARY KEY, phone text, name text, avatar text, created_at bigint, last_seen_privacy text
      )`,
      // phone → user, claimed with INSERT ... IF NOT EXISTS (Paxos): the uniqueness constraint.
      `CREATE TABLE IF NOT EXISTS {ks}.phones (phone text PRIMARY KEY, user_id text)`,
      `CREATE TABLE IF NOT EXISTS {ks}.devices (
        user_id text, id text, name text, platform text, created_at bigint,
        acked bigint, push_platform text, push_token text,
        PRIMARY KEY ((user_id), id)
      )`,
      `CREATE TABLE IF NOT EXISTS {ks}.otps (
        phone text PRIMARY KEY, code_hash text, expires_at bigint, attempts int, sent_at bigint
      ) WITH gc_grace_seconds = 10800`,
      `CREATE TABLE IF NOT EXISTS {ks}.contacts (
        user_id text, contact text,
        PRIMARY KEY ((user_id), contact)
      )`,
      `CREATE TABLE IF NOT EXISTS {ks}.last_seen (user_id text PRIMARY KEY, ts bigint)`,
      // ---- groups: group → members in the group's row, user → groups in the user's partition ----
      `CREATE TABLE IF NOT EXISTS {ks}.chat_groups (
        id text PRIMARY KEY, name text, created_by text, created_at bigint,
        members frozen<map<text, text>>
      )`,
      `CREATE TABLE IF NOT EXISTS {ks}.user_groups (
        user_id text, group_id text,
        PRIMARY KEY ((user_id), group_id)
      )`,
      // ---- media metadata (content-addressed: the first upload of some bytes owns the id) ----
      `CREATE TABLE IF NOT EXISTS {ks}.media (
        id text PRIMARY KEY, mime text, size bigint, owner text, created_at bigint
      )`,
    ],
  },
  {
    version: 2,
    description: 'event journal and snapshots of persistent entities',
    statements: [
      // Events of one key (a persistent entity) in fixed-size runs of seqs: partition_nr = (seq - 1) / N,
      // N events per partition at most (journalPartitionEvents, 5,000 by default), so no partition grows
      // without bound however long the entity lives. Replays read forward, so oldest first.
      `CREATE TABLE IF NOT EXISTS {ks}.journal (
        key text, partition_nr bigint, seq bigint,
        data blob, tags frozen<list<text>>, created_at bigint,
        PRIMARY KEY ((key, partition_nr), seq)
      ) WITH CLUSTERING ORDER BY (seq ASC)`,
      // Which journal partitions a key has: a replay walks these, so gaps in seq (even a whole empty
      // partition) cost nothing. Written before the first event of each partition.
      `CREATE TABLE IF NOT EXISTS {ks}.journal_partitions (
        key text, partition_nr bigint,
        PRIMARY KEY ((key), partition_nr)
      ) WITH CLUSTERING ORDER BY (partition_nr ASC)`,
      // Snapshots, latest first. Writing one drops the older ones (a range tombstone in the same batch), so
      // the partition stays a row or two; short gc_grace to purge those tombstones.
      `CREATE TABLE IF NOT EXISTS {ks}.snapshots (
        key text, seq bigint, data blob, created_at bigint,
        PRIMARY KEY ((key), seq)
      ) WITH CLUSTERING ORDER BY (seq DESC) AND gc_grace_seconds = 10800`,
    ],
  },
  {
    version: 3,
    description: 'the first seq a group member may see',
    statements: [`ALTER TABLE {ks}.receipt_cursors ADD visible_from bigint`],
    done: /conflicts with an existing column|already exist/i,
  },
  {
    version: 4,
    description: 'one-time-code state changed by compare-and-set',
    statements: [
      // A phone's pending code and what outlives it (the cooldown streak, the wrong-code budget and who spent
      // it). Every change is a lightweight transaction on `rev` that rewrites the whole row with one TTL;
      // `op` names the change that wrote it, so a writer whose answer was lost can tell whether it landed.
      // Replaces `otps` (v1), which nothing reads any more; it stays until every node runs v4.
      `CREATE TABLE IF NOT EXISTS {ks}.otp_state (
        phone text PRIMARY KEY, rev int, op text,
        code_hash text, code_expires_at bigint, attempts int, sent_at bigint, sends int,
        guesses int, guess_window bigint, guessers frozen<map<text, int>>, expires_at bigint
      ) WITH gc_grace_seconds = 10800`,
    ],
  },
  {
    version: 5,
    description: 'when each device was last connected',
    statements: [`ALTER TABLE {ks}.devices ADD last_active bigint`],
    done: /conflicts with an existing column|already exist/i,
  },
  {
    version: 6,
    description: 'who may fetch a media',
    statements: [
      // One partition per media: a row per holder (a user, or a group conversation with the highest seq of
      // a message there naming it, a max-register kept with write timestamps). Fetches read the rows of the
      // caller's own holders only (holder IN …), so a media sent to many chats costs its readers nothing.
      `CREATE TABLE IF NOT EXISTS {ks}.media_refs (
        media text, holder text, seq bigint,
        PRIMARY KEY ((media), holder)
      )`,
    ],
  },
  {
    version: 7,
    description: 'fenced ownership: epochs and reservations per entity',
    statements: [
      // One row per entity that hands out numbers (c/<conv>, i/<device>), changed only by lightweight
      // transactions: a claim once per activation, a reservation once per block. `owner` is the claim's
      // random id, so a claim whose answer was lost is settled by a serial read.
      `CREATE TABLE IF NOT EXISTS {ks}.fences (
        entity text PRIMARY KEY, epoch bigint, reserved bigint, owner text
      )`,
    ],
  },
  {
    version: 8,
    description: 'push registrations (app, previews, Web Push keys), the push token index, push marks, muted conversations',
    statements: [
      `ALTER TABLE {ks}.devices ADD (push_app text, push_previews boolean, push_p256dh text, push_auth text)`,
      // Which device holds a push token (keyed by a hash of platform and token): a token registered again by
      // another device leaves the old one. Changed only by lightweight transactions, so claims are serial.
      `CREATE TABLE IF NOT EXISTS {ks}.push_tokens (token_hash text PRIMARY KEY, device text)`,
      // Devices owed a notification (the burst's first message), deleted once it is sent: read whole at
      // start, so a node that died with notifications waiting sends them. Small: bursts last a second.
      `CREATE TABLE IF NOT EXISTS {ks}.push_marks (device text PRIMARY KEY, mark blob) WITH gc_grace_seconds = 10800`,
      // A user's muted conversations, until when: one small partition, read when the user entity loads.
      `CREATE TABLE IF NOT EXISTS {ks}.mutes (
        user_id text, conv text, until bigint,
        PRIMARY KEY ((user_id), conv)
      )`,
    ],
    done: /conflicts with an existing column|already exist/i,
  },
  {
    version: 9,
    description: 'fan-out marks and remembered conversations: a new owner re-drives the log above the mark',
    statements: [
      // One row per conversation, a max register (written USING TIMESTAMP = the mark): no read, no LWT.
      `CREATE TABLE IF NOT EXISTS {ks}.fanout_marks (conv text PRIMARY KEY, seq bigint)`,
      // Conversations whose fan-out may be unfinished, spread over REMEMBER_SHARDS partitions (a node lists
      // them all when it starts; a cluster node, the shards it owns). Written and deleted with the activation's
      // epoch as the timestamp, no LWT. A forget is a tombstone per passivated conversation: gc_grace is short.
      `CREATE TABLE IF NOT EXISTS {ks}.remembered_convs (
        shard int, conv text, PRIMARY KEY ((shard), conv)
      ) WITH gc_grace_seconds = 10800`,
    ],
  },
  {
    version: 10,
    description: 'media bytes in the database: chunks, a blob row written last, uploads under way',
    statements: [
      // One partition per 256 KiB chunk of one upload (a random id, not the hash: the hash is known only at
      // the end), so a blob spreads over the cluster and a Range read fetches just the chunks it needs.
      `CREATE TABLE IF NOT EXISTS {ks}.media_chunks (upload text, n int, data blob, PRIMARY KEY ((upload, n)))`,
      // The blob under its SHA-256, naming the upload whose chunks hold it; inserted IF NOT EXISTS once every
      // chunk is stored, so a half-written upload is never visible and of two uploads of the same bytes one wins.
      `CREATE TABLE IF NOT EXISTS {ks}.media_blobs (
        id text PRIMARY KEY, upload text, size bigint, mime text, chunk_bytes int, chunks int, created_at bigint
      )`,
      // Uploads under way: written before their first chunk, given the hash before the blob row is tried,
      // deleted once settled. What a node that died mid-upload leaves here is swept (its chunks deleted)
      // by any node once a day old. Small: a row per upload in flight.
      `CREATE TABLE IF NOT EXISTS {ks}.media_uploads (upload text PRIMARY KEY, started_at bigint, id text) WITH gc_grace_seconds = 3600`,
    ],
  },
  {
    version: 11,
    description: 'dev outboxes for the cluster',
    statements: [
      // What a development node's SMS and push outboxes "sent", for any node to answer: one partition per
      // phone or user, newest first, each row with a TTL of 15 minutes (DEV_OUTBOX_TTL_MS); reads take the newest 50.
      `CREATE TABLE IF NOT EXISTS {ks}.dev_outbox (
        box text, key text, at bigint, id text, data blob,
        PRIMARY KEY ((box, key), at, id)
      ) WITH CLUSTERING ORDER BY (at DESC, id DESC) AND gc_grace_seconds = 3600`,
    ],
  },
  {
    version: 12,
    description: 'privacy: the indexes export and erasure walk, and erasure markers',
    statements: [
      // user → the 1:1 conversations it took part in (written once per conversation activation that stores).
      `CREATE TABLE IF NOT EXISTS {ks}.user_convs (user_id text, conv text, PRIMARY KEY ((user_id), conv))`,
      // contact → the users who have them as a contact: the reverse of contacts, so erasure removes both directions.
      `CREATE TABLE IF NOT EXISTS {ks}.contacts_rev (contact text, user_id text, PRIMARY KEY ((contact), user_id))`,
      // uploader → media: who uploaded what, also when the bytes were there already (media.owner is the first).
      `CREATE TABLE IF NOT EXISTS {ks}.uploads (user_id text, media text, PRIMARY KEY ((user_id), media))`,
      // Erasures in progress: a node that starts finishes each (read whole at start: a handful at a time).
      `CREATE TABLE IF NOT EXISTS {ks}.erasures (user_id text PRIMARY KEY, phone text, at bigint, step int)`,
    ],
  },
  {
    version: 13,
    description: 'end-to-end encryption: the key directory and MLS group epochs',
    statements: [
      // Per device: its identity (signature) key and last-resort KeyPackage, one partition per user.
      `CREATE TABLE IF NOT EXISTS {ks}.key_devices (
        user_id text, device text, identity blob, last_resort blob, published_at bigint,
        PRIMARY KEY ((user_id), device)
      )`,
      // One-time KeyPackages, a partition per device; a claim deletes one with DELETE ... IF EXISTS (Paxos),
      // so of two racing claims of one row exactly one is applied, and the loser tries the next row.
      `CREATE TABLE IF NOT EXISTS {ks}.key_packages (
        user_id text, device text, id text, key_package blob,
        PRIMARY KEY ((user_id, device), id)
      ) WITH gc_grace_seconds = 10800`,
      // Per conversation: the MLS epoch its accepted commits reached (src/actors/mls-fence.ts).
      `CREATE TABLE IF NOT EXISTS {ks}.group_epochs (
        conv text PRIMARY KEY, epoch bigint, users list<text>, pending_seq bigint, pending_users list<text>
      )`,
    ],
  },
  {
    version: 14,
    description: 'analytics: a row per period and node',
    statements: [
      // A period (a day YYYY-MM-DD or a month YYYY-MM) → each node's aggregate (counters, histogram, HyperLogLog
      // registers; src/analytics/aggregate.ts), replaced whole at each flush with a TTL of 400 days.
      `CREATE TABLE IF NOT EXISTS {ks}.analytics (period text, source text, data blob, PRIMARY KEY ((period), source))`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

const KEYSPACE_RE = /^[a-z][a-z0-9_]{0,47}$/;

export function checkKeyspace(ks: string): string {
  if (!KEYSPACE_RE.test(ks)) throw new Error(`invalid keyspace name ${JSON.stringify(ks)}: use [a-z][a-z0-9_]{0,47}`);
  return ks;
}

export type Replication = { class: string } & Record<string, string | number>;

/** A replication map as CQL: from an object, or a CQL map literal passed through after a sanity check. */
export function replicationCql(r: Replication | string): string {
  if (typeof r === 'string') {
    const s = r.trim();
    if (!/^\{[^;]*\}$/.test(s)) throw new Error(`replication must be a CQL map like {'class': 'SimpleStrategy', 'replication_factor': 1}, got ${r}`);
    return s;
  }
  const quote = (v: string | number) => `'${String(v).replace(/'/g, "''")}'`;
  return `{${Object.entries(r).map(([k, v]) => `${quote(k)}: ${quote(v)}`).join(', ')}}`;
}

export const ddl = (statement: string, ks: string): string => statement.replace(/\{ks\}/g, ks);

export interface MigrateOptions {
  keyspace: string;
  replication: Replication | string;
  /** Consistency for reading/writing schema_version (the store's own). */
  consistency: number;
  serialConsistency: number;
  /** How long to wait for another opener's migration. */
  lockWaitMs?: number;
  /** The migrations to bring the keyspace to (tests pass a prefix to build an older schema). Default all. */
  migrations?: readonly Migration[];
}

/** Creates the keyspace if missing and applies every migration it lacks. Safe to run from many nodes at once. */
export async function migrate(client: Client, o: MigrateOptions): Promise<{ from: number; to: number }> {
  const ks = checkKeyspace(o.keyspace);
  const q = { consistency: o.consistency, serialConsistency: o.serialConsistency };
  await client.execute(`CREATE KEYSPACE IF NOT EXISTS ${ks} WITH replication = ${replicationCql(o.replication)} AND durable_writes = true`);
  await client.execute(`CREATE TABLE IF NOT EXISTS ${ks}.schema_version (
    scope text, version int, description text, applied_at timestamp,
    PRIMARY KEY ((scope), version)
  ) WITH CLUSTERING ORDER BY (version DESC)`);
  await client.execute(`CREATE TABLE IF NOT EXISTS ${ks}.schema_lock (id text PRIMARY KEY, owner text)`);

  const current = async (): Promise<number> => {
    const rs = await client.execute(`SELECT version FROM ${ks}.schema_version WHERE scope = 'parley' LIMIT 1`, [], { ...q, prepare: true, isIdempotent: true });
    return rs.rowLength ? Number(rs.first().get('version')) : 0;
  };

  const migrations = o.migrations ?? MIGRATIONS;
  const target = migrations.length ? migrations[migrations.length - 1]!.version : 0;
  const from = await current();
  if (from >= target) return { from, to: from };

  const owner = randomBytes(8).toString('hex');
  const deadline = Date.now() + (o.lockWaitMs ?? 120_000);
  for (;;) {
    const rs = await client.execute(
      `INSERT INTO ${ks}.schema_lock (id, owner) VALUES ('migrations', ?) IF NOT EXISTS USING TTL 300`,
      [owner], { ...q, prepare: true },
    );
    if (rs.wasApplied()) break;
    // Someone else is migrating: wait for them to finish (or for their lock to expire).
    await new Promise((r) => setTimeout(r, 500));
    const now = await current();
    if (now >= target) return { from, to: now };
    if (Date.now() > deadline) throw new Error('timed out waiting for another node to finish migrating the schema');
  }
  try {
    let at = await current();
    for (const m of migrations) {
      if (m.version <= at) continue;
      for (const s of m.statements) {
        await client.execute(ddl(s, ks)).catch((err: unknown) => {
          if (!m.done?.test(String((err as Error)?.message))) throw err;
        });
      }
      await client.execute(
        `INSERT INTO ${ks}.schema_version (scope, version, description, applied_at) VALUES ('parley', ?, ?, toTimestamp(now()))`,
        [m.version, m.description], { ...q, prepare: true, isIdempotent: true },
      );
      at = m.version;
    }
    return { from, to: at };
  } finally {
    await client.execute(`DELETE FROM ${ks}.schema_lock WHERE id = 'migrations' IF owner = ?`, [owner], { ...q, prepare: true })
      .catch(() => undefined); // the TTL frees it anyway
  }
}
