import t from 'tap';
import type { Client } from 'cassandra-driver';
import { Fixture } from '../helpers/fixture.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { MEDIA_CASES_ENV, mediaCases } from '../security/media-cases.js';

/**
 * The media cases (test/security/media-cases.ts) on the Scylla store, whose blobs are chunks in the database
 * (a real Cassandra 5): what an upload under way (or cut off) holds is chunks of an upload no blob row names.
 */
const keyspace = testKeyspace('parley_media_sec');
let f: Fixture;
let admin: Client;
t.before(async () => {
  admin = await cqlAdmin();
  f = await Fixture.start({ ...scyllaNodeEnv(keyspace), ...MEDIA_CASES_ENV });
});
t.teardown(async () => {
  await f?.destroy();
  await dropKeyspace(admin, keyspace);
  await admin?.shutdown();
});

/** Uploads with chunks stored that no blob names: in flight, or cut off and not yet removed. */
async function unfinishedUploads(): Promise<number> {
  const chunks = await admin.execute(`SELECT upload FROM ${keyspace}.media_chunks`);
  const blobs = await admin.execute(`SELECT upload FROM ${keyspace}.media_blobs`);
  const owned = new Set(blobs.rows.map((r) => String(r.get('upload'))));
  return new Set(chunks.rows.map((r) => String(r.get('upload'))).filter((u) => !owned.has(u))).size;
}

mediaCases(t, () => f, unfinishedUploads);
