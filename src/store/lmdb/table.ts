import type { Database, RangeOptions } from 'lmdb';
import { pack, unpack } from '../../protocol/codec.js';

type Key = (string | number)[] | string;

/**
 * One LMDB database whose values are plain msgpack (our codec's, not lmdb-js's record encoding, which costs
 * several µs a write keeping its shared structures). Writes are synchronous: they run inside the store's
 * per-turn transaction (WriteBatch). Values read are decoded at once, since LMDB's buffers are reused.
 */
export class Table<V, K extends Key> {
  constructor(private readonly db: Database<Buffer, K>) {}

  get(key: K): V | undefined {
    const bytes = this.db.getBinaryFast(key);
    return bytes === undefined ? undefined : (unpack(bytes) as V);
  }

  put(key: K, value: V): void {
    this.db.putSync(key, pack(value) as Buffer);
  }

  /** Stores bytes that already are `value` packed (a message packed once for delivery and storage). */
  putPacked(key: K, packed: Uint8Array): void {
    this.db.putSync(key, packed as Buffer);
  }

  /** False when there was nothing to remove. */
  remove(key: K): boolean {
    return this.db.removeSync(key);
  }

  *values(range: RangeOptions): Generator<V> {
    for (const { value } of this.db.getRange(range)) yield unpack(value) as V;
  }

  *entries(range: RangeOptions): Generator<{ key: K; value: V }> {
    for (const { key, value } of this.db.getRange(range)) yield { key, value: unpack(value) as V };
  }

  keys(range: RangeOptions): Iterable<K> {
    return this.db.getKeys(range);
  }
}
