import t from 'tap';
import type { Client } from 'cassandra-driver';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { erasureCases } from '../features/erasure-cases.js';
import { scanKeyspace } from '../helpers/store-scan.js';

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

erasureCases(t, { f: () => f, start, scan: (fx, needles) => scanKeyspace(admin, fx, needles) });
