import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { STORE_CASES_ENV, closeAgent, storeBackedOtpCases } from './otp-cases.js';

/**
 * The store-backed one-time-code cases of otp-cases.ts on the Scylla store (a real Cassandra 5): the count
 * of wrong guesses is a lightweight transaction there, and these are the cases where a read-then-write
 * would let parallel guesses through. Two nodes share the keyspace: the 2,000 guesses go through both, so
 * Paxos arbitrates between processes as well as within one. Runs on the CQL server PARLEY_CQL_CONTACT names.
 */
const keyspace = testKeyspace('parley_otp');
let a: Fixture;
let b: Fixture;
t.before(async () => {
  const admin = await cqlAdmin();
  await admin.shutdown();
  a = await Fixture.start({ ...scyllaNodeEnv(keyspace), ...STORE_CASES_ENV });
  b = await Fixture.start({ ...scyllaNodeEnv(keyspace), ...STORE_CASES_ENV });
});
t.teardown(async () => {
  closeAgent();
  await a?.destroy();
  await b?.destroy();
  const admin = await cqlAdmin();
  await dropKeyspace(admin, keyspace);
  await admin.shutdown();
});

storeBackedOtpCases(t, () => a, () => b);
