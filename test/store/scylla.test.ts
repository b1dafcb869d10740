import t from 'tap';
import { Client, errors, types } from 'cassandra-driver';
import { ParleyError } from '../../src/protocol/errors.js';
import { ScyllaStore, consistency, scratchKeyspace, storeError } from '../../src/store/scylla/scylla-store.js';
import { DAY_MS, MIN_REGISTER_BASE, bucketOf, ttlUntil } from '../../src/store/scylla/buckets.js';
import { MIGRATIONS, SCHEMA_VERSION, migrate, replicationCql } from '../../src/store/scylla/schema.js';
import { runStoreConformance } from './conformance.js';
import { runE2eConformance } from './e2e-conformance.js';
import { setLogLevel } from '../../src/log.js';
import { DEV_OUTBOX_TTL_MS } from '../../src/store/store.js';

/**
 * The Store conformance suite against a real CQL server (ScyllaDB or Apache Cassandra), plus what only
 * this store has: the schema runner, TTLs in the database, error mapping.
 *
 *   scripts/cassandra start && npx tap dist/test/store/scylla.test.js
 *
 * PARLEY_CQL_CONTACT (default 127.0.0.1:9042) and PARLEY_CQL_DATACENTER (default datacenter1) say where.
 * Every run works in a keyspace of its own and drops it at the end.
 */
// The fault-injection test below makes the store warn on purpose.
setLogLevel('error');

const contact = process.env.PARLEY_CQL_CONTACT ?? '127.0.0.1:9042';
const localDataCenter = process.env.PARLEY_CQL_DATACENTER ?? 'datacenter1';
const keyspace = scratchKeyspace();
const opts = { contactPoints: [contact], localDataCenter, keyspace };

const admin = new Client({ contactPoints: [contact], localDataCenter });
t.before(async () => {
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`no CQL server at ${contact} (${(err as Error).message}); start one with: scripts/cassandra start`);
  }
});
t.teardown(async () => {
  await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
  await admin.shutdown();
});

t.test('pure helpers', async (t) => {
  t.equal(bucketOf(0), 0);
  t.equal(bucketOf(DAY_MS - 1), 0);
  t.equal(bucketOf(DAY_MS), DAY_MS);
  t.equal(bucketOf(Date.UTC(2024, 2, 1, 23, 59)), Date.UTC(2024, 2, 1));
  t.equal(bucketOf(7_250, 1000), 7_000, 'other widths');
  t.equal(ttlUntil(10_000, 0), 10);
  t.equal(ttlUntil(10_001, 0), 11, 'rounded up');
  t.equal(ttlUntil(5, 10), 1, 'at least 1: 0 would mean forever');
  t.equal(ttlUntil(Number.MAX_SAFE_INTEGER, 0), 630_720_000, 'capped at 20 years');
  t.ok(MIN_REGISTER_BASE * 1000 < Date.UTC(2010, 0, 1) * 1000 * 1000, 'min-register timestamps stay in the past');
  t.equal(replicationCql({ class: 'NetworkTopologyStrategy', dc1: 3, dc2: 3 }), "{'class': 'NetworkTopologyStrategy', 'dc1': '3', 'dc2': '3'}");
  t.equal(replicationCql("{'class': 'SimpleStrategy', 'replication_factor': 1}"), "{'class': 'SimpleStrategy', 'replication_factor': 1}");
  t.throws(() => replicationCql("{'class': 'x'}; DROP KEYSPACE y"));
  t.equal(consistency('LOCAL_QUORUM'), types.consistencies.localQuorum);
  t.equal(consistency('localSerial'), types.consistencies.localSerial);
  t.equal(consistency('ONE'), types.consistencies.one);
  t.throws(() => consistency('MOSTLY'));
  t.equal(SCHEMA_VERSION, MIGRATIONS[MIGRATIONS.length - 1]!.version);
});

t.test('driver errors map to store_unavailable; bugs pass through', async (t) => {
  const cases: [Error, boolean][] = [
    [new errors.NoHostAvailableError({}), true],
    [new errors.OperationTimedOutError('timed out'), true],
    [new errors.ResponseError(types.responseErrorCodes.unavailableException, 'not enough replicas'), true],
    [new errors.ResponseError(types.responseErrorCodes.writeTimeout, 'write timeout'), true],
    [new errors.ResponseError(types.responseErrorCodes.readTimeout, 'read timeout'), true],
    [new errors.ResponseError(types.responseErrorCodes.overloaded, 'overloaded'), true],
    [new errors.ResponseError(types.responseErrorCodes.syntaxError, 'line 1:0 no viable alternative'), false],
    [new errors.ResponseError(types.responseErrorCodes.invalid, 'Undefined column'), false],
    [new TypeError('not a bigint'), false],
    // connection-level failures the driver reports as plain Errors
    [new Error('No connection available'), true],
    [new Error('Connection closed'), true],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    [Object.assign(new Error('socket hang up'), { isSocketError: true }), true],
    [new Error('Unknown data type: 99'), false],
  ];
  for (const [err, unavailable] of cases) {
    const mapped = storeError(err);
    if (unavailable) {
      t.ok(mapped instanceof ParleyError, `${err.message}: ParleyError`);
      t.equal((mapped as ParleyError).code, 'store_unavailable');
      t.equal((mapped as ParleyError).retryable, true);
    } else {
      t.equal(mapped, err, `${err.message}: passed through`);
    }
  }
  const pe = new ParleyError('not_found', 'x');
  t.equal(storeError(pe), pe, 'ParleyErrors pass through');
});

t.test('no server: open fails with store_unavailable', async (t) => {
  await t.rejects(
    ScyllaStore.open({ contactPoints: ['127.0.0.1:1'], keyspace: scratchKeyspace(), connectTimeoutMs: 1000 }),
    { name: 'ParleyError', code: 'store_unavailable' },
  );
});

t.test('schema: created at open, idempotent, safe to run from many openers at once', async (t) => {
  const ks = scratchKeyspace();
  t.teardown(() => admin.execute(`DROP KEYSPACE IF EXISTS ${ks}`).then(() => undefined));
  const stores = await Promise.all([1, 2, 3].map(() => ScyllaStore.open({ ...opts, keyspace: ks })));
  const versions = await admin.execute(`SELECT version FROM ${ks}.schema_version WHERE scope = 'parley'`);
  t.strictSame(versions.rows.map((r) => r.get('version')), MIGRATIONS.map((m) => m.version).reverse(), 'each migration recorded once');
  t.equal(versions.rows[0]!.get('version'), SCHEMA_VERSION);
  const tables = await admin.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [ks]);
  const names = tables.rows.map((r) => r.get('table_name') as string).sort();
  t.strictSame(names, [
    'analytics', 'chat_groups', 'client_ids', 'contacts', 'contacts_rev', 'conv_buckets', 'dev_outbox', 'devices', 'erasures', 'fanout_marks', 'fences', 'group_epochs', 'inbox', 'journal', 'journal_partitions', 'key_devices', 'key_packages', 'last_seen',
    'media', 'media_blobs', 'media_chunks', 'media_refs', 'media_uploads', 'messages', 'mutes', 'otp_state', 'otps', 'phones', 'push_marks', 'push_tokens', 'receipt_cursors', 'remembered_convs', 'schema_lock', 'schema_version', 'snapshots',
    'uploads', 'user_convs', 'user_groups', 'users',
  ]);
  const lock = await admin.execute(`SELECT * FROM ${ks}.schema_lock`);
  t.equal(lock.rowLength, 0, 'the migration lock is released');
  await Promise.all(stores.map((s) => s.close()));
  const again = await ScyllaStore.open({ ...opts, keyspace: ks });
  t.equal(again.keyspace, ks);
  await again.close();
  const ksRow = await admin.execute('SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?', [ks]);
  t.match(ksRow.first().get('replication'), { class: /SimpleStrategy/, replication_factor: '1' });
});

t.test('schema: a migration cut short after its ALTER runs again cleanly', async (t) => {
  const ks = scratchKeyspace();
  t.teardown(() => admin.execute(`DROP KEYSPACE IF EXISTS ${ks}`).then(() => undefined));
  const first = await ScyllaStore.open({ ...opts, keyspace: ks });
  await first.close();
  // As if the node died between the ALTER and recording the version (so nothing after it ran either).
  await admin.execute(`DELETE FROM ${ks}.schema_version WHERE scope = 'parley' AND version >= 3`);
  const store = await ScyllaStore.open({ ...opts, keyspace: ks });
  t.teardown(() => store.close());
  const versions = await admin.execute(`SELECT version FROM ${ks}.schema_version WHERE scope = 'parley'`);
  t.strictSame(versions.rows.map((r) => r.get('version')), MIGRATIONS.map((m) => m.version).reverse(), 'version 3 and those after it recorded again');
  await store.setCursor('g.abc', 'u1', { delivered: 1, read: 1, from: 2 });
  t.strictSame((await store.getCursors('g.abc')).get('u1'), { delivered: 1, read: 1, from: 2 });
  await store.putDevice({ user: 'u1', id: 'aaaaaaaa', name: 'x', platform: 'y', createdAt: 1, acked: 0 });
  await store.setDeviceActive('u1', 'aaaaaaaa', 5);
  t.equal((await store.getDevice('u1', 'aaaaaaaa'))?.lastActive, 5, 'the columns the ALTERs added work');
});

t.test('schema: a keyspace at version 1 is migrated on open, its data kept', async (t) => {
  const ks = scratchKeyspace();
  t.teardown(() => admin.execute(`DROP KEYSPACE IF EXISTS ${ks}`).then(() => undefined));
  const v1 = MIGRATIONS.filter((m) => m.version === 1);
  const cl = types.consistencies.localQuorum;
  t.strictSame(await migrate(admin, { keyspace: ks, replication: { class: 'SimpleStrategy', replication_factor: 1 }, consistency: cl, serialConsistency: types.consistencies.localSerial, migrations: v1 }), { from: 0, to: 1 });
  await admin.execute(`INSERT INTO ${ks}.users (id, phone, name, created_at, last_seen_privacy) VALUES ('olduser', '+15550000000', 'Old', 1, 'everyone')`);
  const before = await admin.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [ks]);
  t.notOk(before.rows.some((r) => r.get('table_name') === 'journal'), 'no journal at version 1');
  const store = await ScyllaStore.open({ ...opts, keyspace: ks });
  t.teardown(() => store.close());
  const versions = await admin.execute(`SELECT version FROM ${ks}.schema_version WHERE scope = 'parley'`);
  t.strictSame(versions.rows.map((r) => r.get('version')), MIGRATIONS.map((m) => m.version).reverse(), 'every later version applied on top');
  t.equal((await store.getUser('olduser'))?.name, 'Old', 'data from before the migration');
  await store.journalAppend('k', { seq: 1, data: 'x', tags: [], createdAt: 1 });
  t.strictSame(await store.journalRead('k', 0, 10), [{ seq: 1, data: 'x', tags: [], createdAt: 1 }], 'the new tables work');
});

t.test('journal: bounded partitions, indexed; snapshots keep only the latest row', async (t) => {
  const store = await ScyllaStore.open({ ...opts, journalPartitionEvents: 4 });
  t.teardown(() => store.close());
  const key = `bounded-${scratchKeyspace('k')}`;
  for (let seq = 1; seq <= 10; seq++) await store.journalAppend(key, { seq, data: { seq }, tags: ['t'], createdAt: seq });
  await store.journalAppend(key, { seq: 30, data: { seq: 30 }, tags: [], createdAt: 30 });
  const parts = await admin.execute(`SELECT partition_nr FROM ${keyspace}.journal_partitions WHERE key = ?`, [key], { prepare: true });
  t.strictSame(parts.rows.map((r) => Number(r.get('partition_nr'))), [0, 1, 2, 7], 'one index row per partition, gaps skipped');
  for (const [p, want] of [[0, [1, 2, 3, 4]], [1, [5, 6, 7, 8]], [2, [9, 10]], [7, [30]]] as const) {
    const rows = await admin.execute(`SELECT seq FROM ${keyspace}.journal WHERE key = ? AND partition_nr = ?`, [key, p], { prepare: true });
    t.strictSame(rows.rows.map((r) => Number(r.get('seq'))), want, `partition ${p} holds at most 4 events`);
  }
  t.strictSame((await store.journalRead(key, 2, 100)).map((e) => e.seq), [3, 4, 5, 6, 7, 8, 9, 10, 30]);
  t.strictSame((await store.journalRead(key, 8, 2)).map((e) => e.seq), [9, 10]);
  // Another process (no partition cache) reads and appends the same journal.
  const other = await ScyllaStore.open({ ...opts, journalPartitionEvents: 4 });
  t.teardown(() => other.close());
  await other.journalAppend(key, { seq: 31, data: 31, tags: [], createdAt: 31 });
  t.strictSame((await store.journalRead(key, 10, 100)).map((e) => e.seq), [30, 31]);

  for (let seq = 1; seq <= 5; seq++) await store.snapshotPut(key, { seq: seq * 10, data: { seq }, createdAt: seq });
  const snaps = await admin.execute(`SELECT seq FROM ${keyspace}.snapshots WHERE key = ?`, [key], { prepare: true });
  t.strictSame(snaps.rows.map((r) => Number(r.get('seq'))), [50], 'older snapshots are deleted with each new one');
  t.strictSame(await store.snapshotLatest(key), { seq: 50, data: { seq: 5 }, createdAt: 5 });
});

t.test('a failed append is rolled back, even when its writes landed (or land late)', async (t) => {
  const store = await ScyllaStore.open(opts);
  t.teardown(() => store.close());
  // Fault injection at the driver: fail chosen statements the way an unreachable replica does, optionally
  // after they were sent (the outcome the client never learns).
  const client = (store as unknown as { client: Client }).client;
  const execute = client.execute.bind(client);
  const seen: { query: string; params: unknown[] }[] = [];
  let fail: (query: string) => 'before' | 'after' | undefined = () => undefined;
  client.execute = (async (query: string, params: unknown[], o: unknown) => {
    seen.push({ query, params });
    const mode = fail(query);
    if (mode === 'before') throw new errors.NoHostAvailableError({ '127.0.0.1:9042': 'Host considered as DOWN' });
    const rs = await execute(query, params as never, o as never);
    if (mode === 'after') throw new errors.OperationTimedOutError('the replica never answered');
    return rs;
  }) as typeof client.execute;
  t.teardown(() => { client.execute = execute as typeof client.execute; });

  const conv = 'd.rbaaaaaa.rbbbbbbb';
  const m = (seq: number, cid: string) => ({ conv, seq, from: 'rbaaaaaa', dev: 'd', cid, kind: 'text' as const, ts: Date.now(), body: { text: cid } });
  await store.appendMessage(m(1, 'ok-1'));
  const pending = () => [...(store as unknown as { rollbacks: Map<string, Set<unknown>> }).rollbacks.values()].reduce((n, x) => n + x.size, 0);

  // 0. Never sent (the host was known to be down): nothing can have landed, nothing to roll back.
  fail = (q) => (q.includes('messages') && q.startsWith('INSERT') ? 'before' : undefined);
  await t.rejects(store.appendMessage(m(2, 'not-sent')), { code: 'store_unavailable' });
  t.equal(pending(), 0, 'no rollback queued');
  fail = () => undefined;

  // 1. Both writes applied, but the client id's answer was lost.
  fail = (q) => (q.includes('client_ids') && q.startsWith('INSERT') ? 'after' : undefined);
  await t.rejects(store.appendMessage(m(2, 'lost-answer')), { code: 'store_unavailable' });
  fail = () => undefined;
  t.equal(await store.seqForClientId(conv, 'rbaaaaaa', 'lost-answer'), undefined, 'the client id is gone: a resend gets a new seq');
  t.equal(await store.getMessage(conv, 2), undefined, 'so is the message');
  t.equal(await store.lastSeq(conv), 1);

  // 2. While the database stays away, reads of the conversation fail (retryable) rather than answer stale.
  fail = (q) => (q.includes('client_ids') && q.startsWith('INSERT') ? 'after' : q.startsWith('DELETE') ? 'before' : undefined);
  await t.rejects(store.appendMessage(m(3, 'away')), { code: 'store_unavailable' });
  t.equal(pending(), 1, 'a rollback waits for the database');
  await t.rejects(store.seqForClientId(conv, 'rbaaaaaa', 'away'), { code: 'store_unavailable' }, 'no answer until rolled back');
  await t.rejects(store.getMessages(conv, { limit: 10 }), { code: 'store_unavailable' });
  t.equal(await store.seqForClientId('d.rbaaaaaa.rbcccccc', 'rbaaaaaa', 'away'), undefined, 'other conversations are not held up');
  fail = () => undefined;
  t.equal(await store.seqForClientId(conv, 'rbaaaaaa', 'away'), undefined, 'rolled back once it answers');
  t.equal(pending(), 0);
  t.strictSame((await store.getMessages(conv, { limit: 10 })).map((x) => x.seq), [1]);

  // 3. A write that reaches the database after its rollback (it sat in a socket buffer) stays invisible.
  const late = seen.filter((x) => x.query.startsWith('INSERT') && (x.params as unknown[]).includes('away'));
  t.equal(late.length, 2, 'the message and client id writes of the failed attempt');
  for (const x of late) await execute(x.query, x.params as never, { prepare: true });
  t.equal(await store.seqForClientId(conv, 'rbaaaaaa', 'away'), undefined, 'the late client id write is shadowed');
  t.equal(await store.getMessage(conv, 3), undefined, 'the late message write is shadowed');

  // 4. The resend: stored under a new seq, and nothing later is touched by the old tombstones.
  await store.appendMessage(m(4, 'away'));
  t.equal(await store.seqForClientId(conv, 'rbaaaaaa', 'away'), 4);
  await store.appendMessage(m(5, 'ok-5'));
  await store.redactMessage(conv, 5);
  t.strictSame((await store.getMessages(conv, { limit: 10 })).map((x) => [x.seq, x.body]), [[1, { text: 'ok-1' }], [4, { text: 'away' }], [5, undefined]]);
});

t.test('otpUpdate: a compare-and-set whose answer was lost is settled by a serial read', async (t) => {
  const store = await ScyllaStore.open(opts);
  t.teardown(() => store.close());
  const client = (store as unknown as { client: Client }).client;
  const execute = client.execute.bind(client);
  let fail: 'before' | 'after' | 'lost' | undefined;
  client.execute = (async (query: string, params: unknown[], o: unknown) => {
    const mode = query.includes('otp_state') && query.startsWith('UPDATE') ? fail : undefined;
    if (mode === 'before') throw new errors.NoHostAvailableError({ '127.0.0.1:9042': 'Host considered as DOWN' });
    if (mode === 'lost') throw new errors.OperationTimedOutError('the coordinator never answered');
    const rs = await execute(query, params as never, o as never);
    if (mode === 'after') throw new errors.OperationTimedOutError('the answer was lost');
    return rs;
  }) as typeof client.execute;
  t.teardown(() => { client.execute = execute as typeof client.execute; });

  const phone = '+15550009876';
  const now = Date.now();
  const rec = { codeHash: 'h', codeExpiresAt: now + 60_000, attempts: 0, sentAt: now, sends: 1, guesses: 0, guessWindow: 0, guessers: {}, expiresAt: now + 60_000 };
  fail = 'after';
  t.equal(await store.otpUpdate(phone, () => ({ next: rec, result: 'landed' })), 'landed', 'the write landed: its answer is given');
  t.strictSame(await store.getOtp(phone), rec);
  t.equal(await store.otpUpdate(phone, (cur) => ({ next: { ...cur!, attempts: 1 }, result: 'again' })), 'again', 'on an existing row too');
  fail = 'before';
  await t.rejects(store.otpUpdate(phone, (cur) => ({ next: { ...cur!, attempts: 2 }, result: 'x' })), { code: 'store_unavailable' }, 'never sent: retryable');
  fail = 'lost';
  await t.rejects(store.otpUpdate(phone, (cur) => ({ next: { ...cur!, attempts: 3 }, result: 'x' })), { code: 'store_unavailable' }, 'sent, did not land: retryable');
  fail = undefined;
  t.equal((await store.getOtp(phone))!.attempts, 1, 'neither failed write changed anything');
});

t.test('the database expires inbox entries, OTPs and client ids (TTL, not a sweeper)', async (t) => {
  const store = await ScyllaStore.open(opts);
  t.teardown(() => store.close());
  const now = Date.now();
  await store.inboxPut('ttl.dev', { ptr: 1, conv: 'd.aaaa.bbbb', seq: 1, packed: new Uint8Array([1]), expiresAt: now + 3_600_000 });
  await store.otpUpdate('+15550000001', () => ({
    next: { codeHash: 'h', codeExpiresAt: now + 300_000, attempts: 0, sentAt: now, sends: 1, guesses: 0, guessWindow: 0, guessers: {}, expiresAt: now + 300_000 },
    result: null,
  }));
  await store.appendMessage({ conv: 'd.aaaa.cccc', seq: 1, from: 'aaaa', dev: 'd', cid: 'ttl-cid', kind: 'text', ts: now });
  const ttl = async (q: string, p: unknown[]) => Number((await admin.execute(q, p, { prepare: true })).first().get(0));
  const inboxTtl = await ttl(`SELECT TTL(packed) FROM ${keyspace}.inbox WHERE device = ? AND ptr = 1`, ['ttl.dev']);
  t.ok(inboxTtl > 3590 && inboxTtl <= 3600, `inbox TTL ${inboxTtl}`);
  const otpTtl = await ttl(`SELECT TTL(code_hash) FROM ${keyspace}.otp_state WHERE phone = ?`, ['+15550000001']);
  t.ok(otpTtl > 290 && otpTtl <= 300, `otp TTL ${otpTtl}`);
  const cidTtl = await ttl(`SELECT TTL(seq) FROM ${keyspace}.client_ids WHERE conv = ? AND sender = ? AND cid = ?`, ['d.aaaa.cccc', 'aaaa', 'ttl-cid']);
  t.ok(cidTtl > 7 * 86_400 - 60 && cidTtl <= 7 * 86_400, `client id TTL ${cidTtl}`);
  const highTtl = await admin.execute(`SELECT TTL(last_ptr) FROM ${keyspace}.inbox WHERE device = ? LIMIT 1`, ['ttl.dev'], { prepare: true });
  t.equal(highTtl.first().get(0), null, 'the inbox high-water mark never expires');
  await store.devOutboxAdd('sms', '+15550000001', new Uint8Array([1]));
  const outboxTtl = await ttl(`SELECT TTL(data) FROM ${keyspace}.dev_outbox WHERE box = 'sms' AND key = ? LIMIT 1`, ['+15550000001']);
  t.ok(outboxTtl > DEV_OUTBOX_TTL_MS / 1000 - 10 && outboxTtl <= DEV_OUTBOX_TTL_MS / 1000, `dev outbox TTL ${outboxTtl}`);
});

t.test('messages land in day buckets with an index', async (t) => {
  const store = await ScyllaStore.open(opts);
  t.teardown(() => store.close());
  const conv = 'd.bktaaaa.bktbbbb';
  const day0 = Date.UTC(2024, 5, 1);
  for (let seq = 1; seq <= 9; seq++) {
    await store.appendMessage({ conv, seq, from: 'bktaaaa', dev: 'd', cid: `b${seq}`, kind: 'text', ts: day0 + Math.floor((seq - 1) / 3) * 2 * DAY_MS + seq });
  }
  const idx = await admin.execute(`SELECT bucket, first_seq FROM ${keyspace}.conv_buckets WHERE conv = ?`, [conv], { prepare: true });
  t.strictSame(idx.rows.map((r) => [Number(r.get('bucket')), Number(r.get('first_seq'))]), [
    [day0 + 4 * DAY_MS, 7], [day0 + 2 * DAY_MS, 4], [day0, 1],
  ], 'one index row per bucket with its first seq, newest first');
  const part = await admin.execute(`SELECT seq FROM ${keyspace}.messages WHERE conv = ? AND bucket = ?`, [conv, day0 + 2 * DAY_MS], { prepare: true });
  t.strictSame(part.rows.map((r) => Number(r.get('seq'))), [6, 5, 4], 'a bucket partition holds its day, newest first');
  // A second store (another node) appending to the same bucket out of order still keeps the lowest first seq.
  const other = await ScyllaStore.open(opts);
  t.teardown(() => other.close());
  await other.appendMessage({ conv, seq: 11, from: 'bktaaaa', dev: 'd', cid: 'b11', kind: 'text', ts: day0 + 6 * DAY_MS + 5 });
  await store.appendMessage({ conv, seq: 10, from: 'bktaaaa', dev: 'd', cid: 'b10', kind: 'text', ts: day0 + 6 * DAY_MS + 1 });
  const first = await admin.execute(`SELECT first_seq FROM ${keyspace}.conv_buckets WHERE conv = ? AND bucket = ?`, [conv, day0 + 6 * DAY_MS], { prepare: true });
  t.equal(Number(first.first().get('first_seq')), 10, 'first_seq is a min-register');
  t.equal(await other.lastSeq(conv), 11);
  t.strictSame((await other.getMessages(conv, { after: 8, limit: 10 })).map((m) => m.seq), [9, 10, 11]);
});

runStoreConformance(t, 'scylla', () => ScyllaStore.open(opts), () => ScyllaStore.open(opts));
runE2eConformance(t, 'scylla', () => ScyllaStore.open(opts), () => ScyllaStore.open(opts));
