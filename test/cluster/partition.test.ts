import t from 'tap';
import { device, type TestDevice } from '../helpers/clients.js';
import { testCluster } from '../helpers/cluster.js';
import { FreezableProxy } from '../helpers/cql.js';
import { Traffic } from '../helpers/traffic.js';
import { http } from '../helpers/fixture.js';

/**
 * Issue #13 §7: a node cut off from NATS (not from the store) under traffic. Once its leases lapse it stops
 * serving, refuses sockets and sends its clients elsewhere; the others take its shards over. No two owners
 * ever get a write accepted for one conversation (every acked message is in history once, under its seq).
 * When NATS is back it rejoins and takes its share again.
 */

const c = testCluster(t, 'parley_cluster_partition', { nodes: 2 });

t.test('a node cut off from NATS: it stops, the others take over, nothing acked lost or doubled, it rejoins', async (t) => {
  // A third node whose every NATS connection goes through a proxy the test can freeze.
  const proxies = await Promise.all(c.nats.urls.map((u) => FreezableProxy.start(`127.0.0.1:${new URL(u).port}`)));
  t.teardown(() => Promise.all(proxies.map((p) => p.close())));
  const cut = await c.add({ PARLEY_NATS_URLS: proxies.map((p) => `nats://127.0.0.1:${p.port}`).join(',') });
  await c.settled(3);

  const [a, b] = [c.nodes[0]!.url, c.nodes[1]!.url];
  const on = async (urls: string[]): Promise<TestDevice> => {
    const d = await device(urls[0]!, { reconnect: true, urls });
    t.teardown(() => d.close());
    return d;
  };
  const pairs = [
    Traffic.pair(await on([a, b]), await on([b, a])),
    Traffic.pair(await on([b, a]), await on([a, b])),
    Traffic.pair(await on([cut.url, a]), await on([cut.url, b])),
  ];
  const retryable = ['moving', 'disconnected', 'not_connected', 'connect_failed', 'timeout', 'stale_owner', 'internal', 'unavailable', 'store_unavailable'];
  const traffic = new Traffic(pairs, { pauseMs: 10, retryMs: 200, watchdogMs: 30_000, retryable });
  t.teardown(() => traffic.halt());
  traffic.start();
  await traffic.until(() => traffic.ackedSince(0, 20), 20_000, 'traffic under way');

  for (const p of proxies) p.freeze();
  await c.settled(2, 20_000).catch(() => undefined); // the cut node itself answers, but sees only stale state
  await waitHealth(cut.url, 503, 15_000);
  t.pass('the cut-off node says it is unavailable');
  const since = Date.now();
  await traffic.until(() => traffic.ackedSince(since, 20), 30_000, 'every pair acked while the node was cut off');

  for (const p of proxies) p.thaw();
  await waitHealth(cut.url, 200, 20_000);
  await c.settled(3, 20_000);
  t.pass('it rejoined');
  const back = Date.now();
  await traffic.until(() => traffic.ackedSince(back, 20), 30_000, 'every pair acked after it rejoined');
  await traffic.stop();
  // Messages the cut node ticked while its leases still held, whose fan-out could no longer leave it, are
  // re-driven by the conversation's next owner from the fan-out mark the cut node stored as it stopped.
  await traffic.verify(t);
});

async function waitHealth(url: string, status: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const r = await http(url, '/healthz').catch(() => undefined);
    if (r?.status === status) return;
    if (Date.now() > until) throw new Error(`${url}/healthz never answered ${status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
