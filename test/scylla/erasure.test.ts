import t from 'tap';
import type { Client } from 'cassandra-driver';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { erasureCases, type Hit } from '../features/erasure-cases.js';

/** Issue #15 §6 on the Scylla store: every table of the node's keyspace scanned after an erasure. */

let f: Fixture;
let admin: Client;
const keyspaces: string[] = [];
const start = async (env: Record<string, string>): Promise<Fixture> => {
  const ks = testKeyspace('parley_erasure');
  keyspaces.push(ks);
  return Fixture.start({ ...scyllaNodeEnv(ks), ...env });
};
t.before(async () => {
  admin = await cqlAdmin();
  f = await start({});
});
t.teardown(async () => {
  await f?.destroy();
  for (const ks of keyspaces) await dropKeyspace(admin, ks).catch(() => undefined);
  await admin?.shutdown();
});

/** Text for a cell: blobs are searched as bytes, everything else as its JSON (maps, lists, numbers). */
const cellText = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x));

/**
 * Every table of the keyspace, listed from the schema (system_schema.tables), read whole; a row's key is its
 * partition key's values.
 */
async function scanKeyspace(fx: Fixture, needles: string[]): Promise<Hit[]> {
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

erasureCases(t, { f: () => f, start, scan: scanKeyspace });
