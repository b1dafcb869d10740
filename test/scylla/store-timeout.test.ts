import t from 'tap';
import type { Client } from 'cassandra-driver';
import { Fixture } from '../helpers/fixture.js';
import { sleep } from '../helpers/clients.js';
import { FreezableProxy, cqlAdmin, cqlContact, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { Traffic, logSummary } from '../helpers/traffic.js';

/**
 * Issue #4's fault test, the timeout: the node reaches the CQL server (PARLEY_CQL_CONTACT) through a proxy
 * that freezes: requests get no answer (the driver times them out) and are delivered late, after the thaw,
 * so writes the node gave up on are applied anyway. Clients must get a clear retryable error within the
 * timeout, never silence; and afterwards every acked message is in history once and was delivered once,
 * while no message whose send failed shows up twice.
 */

t.setTimeout(5 * 60_000);

const keyspace = testKeyspace('parley_timeout');
let admin: Client;
let proxy: FreezableProxy;
let f: Fixture;
t.before(async () => {
  admin = await cqlAdmin();
  proxy = await FreezableProxy.start(cqlContact());
  f = await Fixture.start({
    ...scyllaNodeEnv(keyspace, proxy.contact),
    PARLEY_SCYLLA_REQUEST_TIMEOUT_MS: '1500',
    PARLEY_SCYLLA_RECONNECT_MAX_MS: '1000',
  });
});
t.teardown(async () => {
  await f?.destroy();
  await proxy?.close();
  if (admin) {
    await dropKeyspace(admin, keyspace);
    await admin.shutdown();
  }
});

t.test('a database that stops answering: timeouts become retryable errors; nothing acked is lost or doubled', async (t) => {
  const traffic = await Traffic.mixed(f, t);
  t.teardown(() => traffic.halt());
  traffic.start();
  await traffic.until(() => traffic.ackedSince(0, 20), 30_000, 'traffic before the freeze');

  proxy.freeze();
  const frozenAt = Date.now();
  await traffic.until(() => traffic.errorCount('store_unavailable', true).every((n) => n >= 2), 20_000, 'errors during the freeze');
  const firstErrorIn = Date.now() - frozenAt;
  t.ok(firstErrorIn < 10_000, `every sender to an online recipient got store_unavailable (twice) within ${firstErrorIn} ms of the freeze`);
  await sleep(8000);
  t.strictSame(traffic.newAcksBetween(frozenAt, Date.now()), [], 'no message sent during the freeze is acked while the database does not answer');

  proxy.thaw();
  const thawAt = Date.now();
  await traffic.until(() => traffic.ackedSince(thawAt, 1), 30_000, 'acks after the thaw');
  const recovered = traffic.recoveredAfter(thawAt);
  t.ok(recovered < 15_000, `every sender was acked again ${recovered} ms after the thaw`);
  await traffic.until(() => traffic.ackedSince(thawAt, 30), 60_000, 'traffic after the thaw');
  await traffic.stop();

  // A send during the freeze (over 11 s) is answered (an error, or the tick of a message stored just before
  // it) within a few request timeouts, not when the database is back.
  const waits = traffic.longestWait(frozenAt - 2000, thawAt);
  t.comment(`frozen for ${((thawAt - frozenAt) / 1000).toFixed(1)} s`);
  for (const i of traffic.pairs.keys()) {
    t.ok(waits[i]! <= 9000, `pair ${i}: every send during the freeze was answered within 9 s (longest ${waits[i]} ms)`);
  }
  await traffic.verify(t);
  // Whether an append was on the wire at the moment of the freeze is up to timing; when one was, its late
  // write was rolled back and the checks above show it stayed invisible. (scylla.test.ts forces the case.)
  t.comment(`${f.node.logs.filter((l) => /rolling it back/.test(l)).length} timed-out append(s) rolled back; node log: ${JSON.stringify(logSummary(f.node.logs))}`);
  t.strictSame(f.node.logs.filter((l) => /entity crashed/.test(l)), [], 'no entity crashed');
});
