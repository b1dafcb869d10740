import { open } from 'lmdb';
import { join } from 'node:path';
import type { Client } from 'cassandra-driver';
import type { Fixture } from './fixture.js';

/** A place a scan found one of the strings: which table, which key, which string. */
export interface Hit { where: string; key: string; found: string }

/**
 * Every named database of the node's LMDB environment, listed from the environment itself (the root
 * database's keys are the names), opened read-only beside the running node; keys as text, values as bytes.
 */
export async function scanLmdb(fx: Fixture, needles: string[]): Promise<Hit[]> {
  const root = open({ path: join(fx.node.dataDir, 'lmdb'), readOnly: true, maxDbs: 64 });
  const hits: Hit[] = [];
  try {
    const names = [...root.getKeys()].map(String);
    if (!names.includes('users.2')) throw new Error(`the environment lists no users table: ${names.join(', ')}`);
    for (const name of names) {
      const db = root.openDB<Buffer>({ name, encoding: 'binary' });
      for (const { key, value } of db.getRange({})) {
        const k = JSON.stringify(key);
        for (const n of needles) if (k.includes(n) || Buffer.from(value).includes(Buffer.from(n))) hits.push({ where: name, key: k, found: n });
      }
    }
  } finally {
    await root.close();
  }
  return hits;
}

/** Text for a cell: blobs are searched as bytes, everything else as its JSON (maps, lists, numbers). */
const cellText = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x));

/**
 * Every table of the keyspace, listed from the schema (system_schema.tables), read whole; a row's key is its
 * partition key's values.
 */
export async function scanKeyspace(admin: Client, fx: Fixture, needles: string[]): Promise<Hit[]> {
  const ks = fx.env.PARLEY_SCYLLA_KEYSPACE!;
  const tables = (await admin.execute('SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?', [ks], { prepare: true })).rows.map((r) => r.get('table_name') as string);
  if (!tables.includes('users')) throw new Error(`the keyspace lists no users table: ${tables.join(', ')}`);
  const hits: Hit[] = [];
  for (const table of tables) {
    const pk = (await admin.execute('SELECT column_name, kind FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?', [ks, table], { prepare: true }))
      .rows.filter((r) => r.get('kind') === 'partition_key').map((r) => r.get('column_name') as string);
    for await (const row of admin.stream(`SELECT * FROM ${ks}.${table}`, [], { prepare: false, fetchSize: 500 }) as unknown as AsyncIterable<{ keys(): string[]; get(c: string): unknown }>) {
      const key = cellText(pk.map((c) => row.get(c)));
      for (const col of row.keys()) {
        const v = row.get(col);
        for (const n of needles) {
          const found = Buffer.isBuffer(v) ? v.includes(Buffer.from(n)) : v !== null && v !== undefined && cellText(v).includes(n);
          if (found) hits.push({ where: table, key, found: n });
        }
      }
    }
  }
  return hits;
}

