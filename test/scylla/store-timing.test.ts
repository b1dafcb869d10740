import t from 'tap';
import { Client } from 'cassandra-driver';
import { ScyllaStore, scratchKeyspace } from '../../src/store/scylla/scylla-store.js';
import { cqlContact, cqlDataCenter } from '../helpers/cql.js';
import { runStoreTiming } from '../store/timing-cases.js';

/** The store timing wrapper around the Scylla store on a real CQL server (the cases: test/store/timing-cases.ts). */
const keyspace = scratchKeyspace('parley_timing');
const opts = { contactPoints: [cqlContact()], localDataCenter: cqlDataCenter(), keyspace };
t.teardown(async () => {
  const admin = new Client({ contactPoints: opts.contactPoints, localDataCenter: opts.localDataCenter });
  await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch(() => undefined);
  await admin.shutdown();
});
runStoreTiming(t, () => ScyllaStore.open(opts));
