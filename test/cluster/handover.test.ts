import t from 'tap';
import { device, type TestDevice } from '../helpers/clients.js';
import { clusterStatus, testCluster } from '../helpers/cluster.js';
import { Traffic } from '../helpers/traffic.js';
import { ADMIN_KEY, http } from '../helpers/fixture.js';

/**
 * Issue #13 §5: SIGTERM and a rolling restart under steady traffic. The stopping node hands its shards over
 * (stops taking their messages, lets their entities finish their writes, releases the leases, the next owner
 * activates them): no error reaches a client beyond a reconnect, nothing acked is lost or doubled, order holds.
 */

const c = testCluster(t, 'parley_cluster_handover');

/** What a client may see in a graceful handover: its socket closing under a request, then reconnecting. */
const RECONNECT_ONLY = ['disconnected', 'not_connected', 'connect_failed'];

t.test('SIGTERM of a node under traffic, then a new node joining: only reconnects, nothing lost or doubled', async (t) => {
  const url = (i: number) => c.nodes[i]!.url;
  const on = async (urls: string[]): Promise<TestDevice> => {
    const d = await device(urls[0]!, { reconnect: true, urls });
    t.teardown(() => d.close());
    return d;
  };
  const pairs = [
    ...(await Promise.all([0, 1, 2, 3].map(async (i) => Traffic.pair(await on(i % 2 ? [url(0), url(1)] : [url(1), url(0)]), await on(i % 2 ? [url(1), url(0)] : [url(0), url(1)]))))),
    Traffic.pair(await on([url(2), url(0)]), await on([url(2), url(1)])),
  ];
  const traffic = new Traffic(pairs, { pauseMs: 10, retryMs: 100, watchdogMs: 30_000, retryable: RECONNECT_ONLY });
  t.teardown(() => traffic.halt());
  traffic.start();
  await traffic.until(() => traffic.ackedSince(0, 20), 20_000, 'traffic under way');

  const leaving = c.nodes[2]!;
  const owned = (await clusterStatus(leaving.url)).shards.owned;
  const active = (await Promise.all(c.nodes.map((n) => clusterStatus(n.url)))).length;
  const entities = await liveEntities(leaving.url);
  const stoppedAt = Date.now();
  const code = await leaving.stop('SIGTERM');
  const handover = Date.now() - stoppedAt;
  t.equal(code, 0, 'the node exits cleanly');
  t.comment(`SIGTERM → exit with ${owned} shards and ${entities} live entities handed over: ${handover} ms (${active} nodes)`);
  await c.settled(2);
  let since = Date.now();
  await traffic.until(() => traffic.ackedSince(since, 20), 30_000, 'every pair acked after the handover');

  // A rolling restart's second half: a node joins and the ring moves shards to it, from both survivors.
  await c.add();
  await c.settled(3);
  since = Date.now();
  await traffic.until(() => traffic.ackedSince(since, 20), 30_000, 'every pair acked after the join');
  await traffic.stop();
  await traffic.verify(t);
});

t.test('no node logged an error', async (t) => {
  t.same(c.errorLogs(), []);
});

/** Entities live on a node, every kind (its supervision view). */
async function liveEntities(url: string): Promise<number> {
  const r = await http(url, '/v1/admin/actors', { headers: { 'x-admin-key': ADMIN_KEY } });
  return (r.json as { regions: { active: number }[] }).regions.reduce((n, x) => n + x.active, 0);
}
