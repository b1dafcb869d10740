import t from 'tap';
import { Fixture } from '../helpers/fixture.js';
import { signIn, sleep } from '../helpers/clients.js';
import { PrivateCassandra, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { Traffic, logSummary } from '../helpers/traffic.js';
import { HttpError } from '../../src/client/accounts-api.js';

/**
 * Issue #4's fault test, the unavailable replica: "a store timeout or an unavailable replica gives the
 * client a clear retryable error, never a silent drop; restarting Cassandra in the middle of traffic loses
 * no message that was acked as sent". (The timeout half is store-timeout.test.ts.)
 *
 * Senders keep sending to online recipients while the database is stopped (Cassandra drains and exits) and
 * started again; a send that fails with a retryable error is sent again with the same client id until it is
 * acked. At the end every acked message must be in history exactly once, under its acked seq, and have
 * reached its recipient exactly once; every error must have been a retryable store error, and every send
 * answered.
 *
 * The database is a Cassandra of this test's own (scripts/cassandra with its own data directory and ports):
 * stopping it disturbs no other test and nobody else's server.
 */

t.setTimeout(15 * 60_000);

let db: PrivateCassandra;
let f: Fixture;
t.before(async () => {
  db = await PrivateCassandra.create();
  const took = await db.start();
  t.comment(`a private Cassandra on ${db.contact}, up in ${took.toFixed(0)}s`);
  f = await Fixture.start({
    ...scyllaNodeEnv(testKeyspace('parley_cqlrestart'), db.contact),
    // Give up on a hung request after 4 s; reconnect within a second of the database coming back.
    PARLEY_SCYLLA_REQUEST_TIMEOUT_MS: '4000',
    PARLEY_SCYLLA_RECONNECT_MAX_MS: '1000',
  });
});
t.teardown(async () => {
  await f?.destroy();
  await db?.destroy();
});

t.test('restarting the database mid-traffic: retryable errors, then every acked message stored and delivered once', async (t) => {
  const traffic = await Traffic.mixed(f, t);
  t.teardown(() => traffic.halt());
  traffic.start();
  await traffic.until(() => traffic.ackedSince(0, 20), 30_000, 'traffic before the restart');

  const stopAt = Date.now();
  t.comment(`Cassandra stopped (drained) in ${(await db.stop()).toFixed(1)}s`);
  const downAt = Date.now();

  // While it is down: sends fail with a retryable store error (the senders count them), and so does a sign-in.
  await sleep(1500);
  const failing = traffic.errorCount('store_unavailable', true);
  t.ok(failing.every((n) => n > 0), `every sender to an online recipient got store_unavailable while the database was down (${failing.join(', ')})`);
  const signInError = await signIn(f.url).then(() => undefined, (e: unknown) => e);
  t.ok(signInError instanceof HttpError, 'a sign-in fails over HTTP');
  t.match(signInError, { status: 503, code: 'store_unavailable' }, 'with 503 store_unavailable');

  t.strictSame(traffic.newAcksBetween(downAt, Date.now()), [], 'no message first sent while the database was down was acked');
  t.comment(`Cassandra started again in ${(await db.start()).toFixed(1)}s`);
  const upAt = Date.now();
  await traffic.until(() => traffic.ackedSince(upAt, 1), 30_000, 'acks after the database came back');
  const recovered = traffic.recoveredAfter(upAt);
  t.ok(recovered < 15_000, `every sender was acked again ${recovered} ms after the database answered`);
  await traffic.until(() => traffic.ackedSince(upAt, 30), 60_000, 'traffic after the restart');
  await traffic.stop();
  t.ok(f.node.proc.exitCode === null && f.node.proc.signalCode === null, 'the node stayed up throughout');

  // While the database is away, a send is answered at once (store_unavailable: every host is down) or
  // within the request timeout, not when the database is back.
  const waits = traffic.longestWait(downAt, upAt);
  for (const i of traffic.pairs.keys()) {
    t.ok(waits[i]! <= 10_000, `pair ${i}: every send while the database was down was answered within 10 s (longest ${waits[i]} ms)`);
  }
  await traffic.verify(t);
  t.comment(`database away for ${((upAt - stopAt) / 1000).toFixed(0)}s; node log: ${JSON.stringify(logSummary(f.node.logs))}`);
  t.strictSame(f.node.logs.filter((l) => /entity crashed/.test(l)), [], 'no entity crashed');
});
