import t from 'tap';
import type { Client } from 'cassandra-driver';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { scanKeyspace } from '../helpers/store-scan.js';
import { e2eCases } from '../features/e2e-cases.js';

/** Issue #15, end-to-end encryption, on the Scylla store: every table of the node's keyspace scanned for plaintext. */

let f: Fixture;
let admin: Client;
const keyspace = testKeyspace('parley_e2e');
t.before(async () => {
  admin = await cqlAdmin();
  f = await Fixture.start(scyllaNodeEnv(keyspace));
});
t.teardown(async () => {
  await f?.destroy();
  await dropKeyspace(admin, keyspace).catch(() => undefined);
  await admin?.shutdown();
});

e2eCases(t, { f: () => f, scan: (fx, needles) => scanKeyspace(admin, fx, needles) });
