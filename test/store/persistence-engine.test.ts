import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'cassandra-driver';
import { configurePersistence, dispatch, query, spawnPersistent, start, stop, type Ref } from 'nact';
import { newId } from '../../src/protocol/ids.js';
import { LmdbStore } from '../../src/store/lmdb/lmdb-store.js';
import { ScyllaStore, scratchKeyspace } from '../../src/store/scylla/scylla-store.js';
import { StorePersistenceEngine } from '../../src/store/persistence-engine.js';
import type { Store } from '../../src/store/store.js';

/**
 * StorePersistenceEngine under real nact persistent actors, on LMDB and on a real CQL server
 * (PARLEY_CQL_CONTACT, default 127.0.0.1:9042; scripts/run-tests.js starts one for this file).
 */

type TapTest = typeof t;
type Add = { t: 'add'; n: number };
type Get = { t: 'get'; reply: Ref<Counter> };
type Msg = Add | Get;
interface Counter { total: number; count: number; seen: number[] }
const initialState: Counter = { total: 0, count: 0, seen: [] };

/** Spawns a persistent counter; events replayed during recovery are recorded in `replayed`. */
function spawnCounter(system: ReturnType<typeof start>, key: string, replayed: number[], snapshotEvery?: number): Ref<Msg> {
  const f = async (state: Counter, msg: Msg, ctx: { recovering?: boolean; persist(m: Msg): Promise<void> }): Promise<Counter> => {
    if (msg.t === 'get') {
      dispatch(msg.reply, state);
      return state;
    }
    if (ctx.recovering) replayed.push(msg.n);
    else await ctx.persist(msg);
    return { total: state.total + msg.n, count: state.count + 1, seen: [...state.seen, msg.n] };
  };
  return spawnPersistent(system, f as never, key, `counter-${newId(6)}`, { initialState, ...(snapshotEvery ? { snapshotEvery } : {}) } as never) as Ref<Msg>;
}

const get = (ref: Ref<Msg>): Promise<Counter> => query(ref, (reply: Ref<Counter>) => ({ t: 'get', reply }) as Msg, 10_000) as Promise<Counter>;
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

async function until<T>(f: () => Promise<T | undefined>, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function suite(parent: TapTest, name: string, open: () => Promise<Store>): void {
  parent.test(`${name}: StorePersistenceEngine`, async (t) => {
    let store = await open();
    t.teardown(() => store.close());

    t.test('events(): awaitable and reducible, after an offset, limited, filtered by tags, paged', async (t) => {
      const engine = new StorePersistenceEngine(store, { pageSize: 3 });
      const key = `ev:${newId(8)}`;
      for (const seq of range(1, 10)) {
        await engine.persist({ key, sequenceNumber: seq, data: { n: seq }, createdAt: 1000 + seq, isDeleted: false, tags: seq % 2 ? ['odd'] : ['even', 'x'] });
      }
      const all = (await engine.events(key)) as unknown as { sequenceNumber: number; data: unknown; key: string; tags: string[]; createdAt: number; isDeleted: boolean }[];
      t.strictSame(all.map((e) => e.sequenceNumber), range(1, 10), 'awaited: every event, in order, over several pages');
      t.strictSame(all[0], { data: { n: 1 }, sequenceNumber: 1, key, createdAt: 1001, isDeleted: false, tags: ['odd'] }, 'a PersistedEvent');
      const seqs = (offset: number, limit?: number, tags?: string[]) =>
        engine.events(key, offset, limit as number, tags as string[]).reduce((acc: number[], e) => [...acc, e.sequenceNumber], []);
      t.strictSame(await seqs(4), range(5, 10), 'after the offset');
      t.strictSame(await seqs(4, 4), [5, 6, 7, 8], 'limit');
      t.strictSame(await seqs(0, undefined, ['even']), [2, 4, 6, 8, 10], 'tags');
      t.strictSame(await seqs(0, 2, ['even', 'x']), [2, 4], 'every tag, and limit counts matching events');
      t.strictSame(await seqs(10), [], 'after the last');
      t.strictSame(await seqs(0, undefined, ['nope']), []);
      // nact reduces with an async function whose accumulator is a promise
      const viaPromises = await engine.events(key, 7).reduce(async (prev: Promise<number>, e) => (await prev) + e.sequenceNumber, Promise.resolve(0));
      t.equal(viaPromises, 8 + 9 + 10);
      t.strictSame([...(await engine.events(`ev:${newId(8)}`) as unknown as unknown[])], [], 'an unknown key has no events');
      t.equal(await engine.latestSnapshot(key), undefined, 'no snapshot yet');
      await engine.takeSnapshot({ key, sequenceNumber: 6, data: { total: 21 }, createdAt: 5 });
      t.strictSame(await engine.latestSnapshot(key), { key, sequenceNumber: 6, data: { total: 21 }, createdAt: 5 });
      await t.rejects(engine.events(key).reduce(() => { throw new Error('reducer failed'); }, 0), /reducer failed/, 'a failing reducer rejects');
    });

    t.test('a persistent actor recovers its state after a stop, from its snapshot and the events after it', async (t) => {
      const engine = new StorePersistenceEngine(store, { pageSize: 4 });
      const system = start(configurePersistence(engine));
      t.teardown(() => stop(system));
      const key = `counter:${newId(8)}`;

      const first: number[] = [];
      let ref = spawnCounter(system, key, first, 5);
      for (const n of range(1, 12)) dispatch(ref, { t: 'add', n });
      t.strictSame(await get(ref), { total: sum(range(1, 12)), count: 12, seen: range(1, 12) });
      t.strictSame(first, [], 'a new key replays nothing');
      const snap = await until(async () => {
        const s = await store.snapshotLatest(key);
        return s && s.seq === 10 ? s : undefined;
      }, 'the snapshot at seq 10');
      t.strictSame(snap.data, { total: sum(range(1, 10)), count: 10, seen: range(1, 10) }, 'snapshots every 5 events: the latest at 10');
      t.strictSame((await store.journalRead(key, 0, 100)).map((e) => e.data), range(1, 12).map((n) => ({ t: 'add', n })), 'every event is in the journal');
      stop(ref);

      const second: number[] = [];
      ref = spawnCounter(system, key, second, 5);
      t.strictSame(await get(ref), { total: sum(range(1, 12)), count: 12, seen: range(1, 12) }, 'state recovered');
      t.strictSame(second, [11, 12], 'recovery replayed only the events after the snapshot');

      // It goes on from there: new events get the next seqs and more snapshots follow.
      for (const n of range(13, 25)) dispatch(ref, { t: 'add', n });
      t.strictSame(await get(ref), { total: sum(range(1, 25)), count: 25, seen: range(1, 25) });
      t.strictSame((await store.journalRead(key, 0, 100)).map((e) => e.seq), range(1, 25), 'seqs continue without a gap or a duplicate');
      const later = await until(async () => {
        const s = await store.snapshotLatest(key);
        return s && s.seq >= 20 ? s : undefined;
      }, 'a snapshot at seq >= 20');
      stop(ref);

      const third: number[] = [];
      ref = spawnCounter(system, key, third, 5);
      t.strictSame(await get(ref), { total: sum(range(1, 25)), count: 25, seen: range(1, 25) }, 'recovered again');
      t.strictSame(third, range(later.seq + 1, 25), `replayed only the events after the snapshot at ${later.seq}`);
    });

    t.test('without snapshots the whole journal replays, page by page', async (t) => {
      const engine = new StorePersistenceEngine(store, { pageSize: 7 });
      const system = start(configurePersistence(engine));
      t.teardown(() => stop(system));
      const key = `counter:${newId(8)}`;
      let ref = spawnCounter(system, key, []);
      for (const n of range(1, 30)) dispatch(ref, { t: 'add', n });
      t.equal((await get(ref)).total, sum(range(1, 30)));
      stop(ref);
      const replayed: number[] = [];
      ref = spawnCounter(system, key, replayed);
      t.strictSame(await get(ref), { total: sum(range(1, 30)), count: 30, seen: range(1, 30) });
      t.strictSame(replayed, range(1, 30));
      t.equal(await store.snapshotLatest(key), undefined, 'no snapshot was taken');
    });

    t.test('state survives a restart of the store and the actor system (a node restart)', async (t) => {
      const key = `counter:${newId(8)}`;
      const system1 = start(configurePersistence(new StorePersistenceEngine(store)));
      const ref1 = spawnCounter(system1, key, [], 4);
      for (const n of range(1, 9)) dispatch(ref1, { t: 'add', n });
      t.equal((await get(ref1)).count, 9);
      await until(async () => ((await store.snapshotLatest(key))?.seq === 8 ? true : undefined), 'the snapshot at seq 8');
      stop(system1);
      await store.close();
      store = await open();
      const system2 = start(configurePersistence(new StorePersistenceEngine(store)));
      t.teardown(() => stop(system2));
      const replayed: number[] = [];
      const ref2 = spawnCounter(system2, key, replayed, 4);
      t.strictSame(await get(ref2), { total: sum(range(1, 9)), count: 9, seen: range(1, 9) });
      t.strictSame(replayed, [9]);
    });
  });
}

// ---- LMDB ----
const dir = mkdtempSync(join(tmpdir(), 'parley-pe-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
suite(t, 'lmdb', async () => new LmdbStore(join(dir, 'db')));

// ---- a CQL server ----
const contact = process.env.PARLEY_CQL_CONTACT ?? '127.0.0.1:9042';
const localDataCenter = process.env.PARLEY_CQL_DATACENTER ?? 'datacenter1';
const keyspace = scratchKeyspace('parley_pe');
const admin = new Client({ contactPoints: [contact], localDataCenter });
t.teardown(async () => {
  await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
  await admin.shutdown();
});
suite(t, 'scylla', async () => {
  try {
    return await ScyllaStore.open({ contactPoints: [contact], localDataCenter, keyspace });
  } catch (err) {
    throw new Error(`no CQL server at ${contact} (${(err as Error).message}); start one with: scripts/cassandra start`);
  }
});
