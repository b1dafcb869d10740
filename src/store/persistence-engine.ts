import type { EventStream, PersistedEvent, PersistedSnapshot, PersistenceEngine } from 'nact';
import type { JournalEvent, Store } from './store.js';

export interface StorePersistenceOptions {
  /** Events read from the store per round trip while replaying. Default 500. */
  pageSize?: number;
}

/**
 * nact's PersistenceEngine over the Store's journal and snapshots, so persistent actors (spawnPersistent)
 * keep their events and snapshots in the node's own store, LMDB or ScyllaDB:
 *
 *   const system = start(configurePersistence(new StorePersistenceEngine(store)));
 *   spawnPersistent(system, f, `group:${id}`, id, { snapshotEvery: 100 });
 *
 * On (re)spawn nact reads the latest snapshot, then replays the events after it through the actor's
 * function. The replay streams page by page: a page is read only once the events before it are reduced,
 * so an entity with a long journal never has it all in memory. Store failures reject as
 * ParleyError('store_unavailable'): nact's supervision then decides (a failed recovery is a crash).
 */
export class StorePersistenceEngine implements PersistenceEngine {
  private readonly pageSize: number;

  constructor(private readonly store: Store, opts: StorePersistenceOptions = {}) {
    this.pageSize = opts.pageSize ?? 500;
    if (!Number.isInteger(this.pageSize) || this.pageSize <= 0) throw new Error('pageSize must be a positive integer');
  }

  /**
   * The events of `key` with sequenceNumber > offset, ascending, at most `limit`, and (when tags are given)
   * only those carrying every one of them. Both awaitable (an array) and reducible, as nact's
   * persistent actor and persistent query use it.
   */
  events(persistenceKey: string, offset = 0, limit = Number.POSITIVE_INFINITY, tags?: string[]): EventStream {
    const reduce = async <U>(f: (acc: U, event: PersistedEvent, index: number) => U, initial: U): Promise<U> => {
      let acc = initial;
      let index = 0;
      let after = offset;
      let left = limit;
      while (left > 0) {
        const want = Math.min(this.pageSize, left);
        const page = await this.store.journalRead(persistenceKey, after, want);
        for (const e of page) {
          if (tags?.length && !tags.every((t) => e.tags.includes(t))) continue;
          acc = f(acc, toPersistedEvent(persistenceKey, e), index++);
          if (--left <= 0) break;
        }
        if (page.length < want) break;
        after = page[page.length - 1]!.seq;
        // nact's reducer returns a promise per event: let the page settle before fetching the next one.
        await acc;
      }
      return acc;
    };
    const all = (): Promise<PersistedEvent[]> => reduce<PersistedEvent[]>((list, e) => (list.push(e), list), []);
    const stream = {
      reduce,
      then<A = PersistedEvent[], B = never>(
        onFulfilled?: ((v: PersistedEvent[]) => A | PromiseLike<A>) | null,
        onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
      ): Promise<A | B> {
        return all().then(onFulfilled, onRejected);
      },
    };
    // nact's typings name the element type of the awaited array `Event` (the DOM's, by accident).
    return stream as unknown as EventStream;
  }

  /** The latest snapshot, or undefined (nact checks for a falsy value) when the key has none. */
  async latestSnapshot(persistenceKey: string): Promise<PersistedSnapshot> {
    const s = await this.store.snapshotLatest(persistenceKey);
    const snapshot: PersistedSnapshot | undefined = s && { data: s.data, sequenceNumber: s.seq, key: persistenceKey, createdAt: s.createdAt };
    return snapshot as PersistedSnapshot;
  }

  async takeSnapshot(s: PersistedSnapshot): Promise<void> {
    await this.store.snapshotPut(s.key, { seq: s.sequenceNumber, data: s.data, createdAt: s.createdAt });
  }

  async persist(e: PersistedEvent): Promise<void> {
    await this.store.journalAppend(e.key, { seq: e.sequenceNumber, data: e.data, tags: e.tags ?? [], createdAt: e.createdAt });
  }
}

function toPersistedEvent(key: string, e: JournalEvent): PersistedEvent {
  return { data: e.data, sequenceNumber: e.seq, key, createdAt: e.createdAt, isDeleted: false, tags: e.tags };
}
