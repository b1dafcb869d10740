import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Client } from 'cassandra-driver';
import { Fixture, http } from '../helpers/fixture.js';
import { device, waitFor } from '../helpers/clients.js';
import { cqlAdmin, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { SHARED_SECRET } from '../features/ownership-cases.js';
import { chatThroughFailover } from '../helpers/failover.js';
import { devCert } from '../helpers/tls.js';
import { haproxyClusterConfig } from '../../src/ops/haproxy-config.js';

/**
 * Issue #13 point 8: one address for the cluster. A real HAProxy (Debian's, scripts/haproxy ensure) with the
 * generated configuration (src/ops/haproxy-config.ts) in front of two nodes on one keyspace of a real
 * Cassandra 5. A client connects through it; the node holding its socket is killed (SIGKILL); the client
 * reconnects through HAProxy, lands on the other node and resumes from its pointer, missing nothing.
 */
const ROOT = resolve(__dirname, '../../..');
const ensured = spawnSync(join(ROOT, 'scripts', 'haproxy'), ['ensure'], { encoding: 'utf8' });
if (ensured.status !== 0) throw new Error(`scripts/haproxy ensure failed: ${ensured.stderr}`);
const haproxyBin = ensured.stdout.trim().split('\n').pop()!;

const keyspace = testKeyspace('parley_haproxy');
const dir = mkdtempSync(join(tmpdir(), 'parley-haproxy-cluster-'));
let a: Fixture;
let b: Fixture;
let admin: Client;
let haproxy: ChildProcess;
const haproxyLog: string[] = [];
let edge = '';

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = net.createServer().once('error', fail).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => done(port));
    });
  });
}

t.before(async () => {
  admin = await cqlAdmin();
  const env = { ...scyllaNodeEnv(keyspace), PARLEY_SECRET: SHARED_SECRET, PARLEY_TRUST_PROXY: '127.0.0.1' };
  a = await Fixture.start(env);
  b = await Fixture.start(env);
  const port = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyClusterConfig({ bind: `127.0.0.1:${port}`, nodes: [`127.0.0.1:${a.node.port}`, `127.0.0.1:${b.node.port}`], checkMs: 500 }));
  haproxy = spawn(haproxyBin, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const out of [haproxy.stdout!, haproxy.stderr!]) createInterface({ input: out }).on('line', (l) => haproxyLog.push(l));
  edge = `http://127.0.0.1:${port}`;
  const until = Date.now() + 15_000;
  for (;;) {
    if (haproxy.exitCode !== null) throw new Error(`haproxy exited with ${haproxy.exitCode}:\n${haproxyLog.join('\n')}`);
    if ((await http(edge, '/healthz').catch(() => undefined))?.status === 200) break;
    if (Date.now() > until) throw new Error(`haproxy did not come up:\n${haproxyLog.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});
t.teardown(async () => {
  if (haproxy && haproxy.exitCode === null) {
    const gone = new Promise((done) => haproxy.once('exit', done));
    haproxy.kill('SIGTERM');
    await gone;
  }
  await a?.destroy();
  await b?.destroy();
  await dropKeyspace(admin, keyspace);
  await admin?.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

/** Open client sockets on a node (its /metrics, open to this machine on a development node). */
async function connections(f: Fixture): Promise<number> {
  if (f.node.proc.exitCode !== null || f.node.proc.signalCode !== null) return 0;
  const text = (await http(f.url, '/metrics')).bytes.toString();
  return Number(/^parley_connections (\d+)$/m.exec(text)![1]);
}

t.test('the generated configuration is one HAProxy accepts, with TLS too, and refuses nonsense', async (t) => {
  const cert = devCert(dir, 'edge');
  const pem = join(dir, 'edge-bundle.pem');
  writeFileSync(pem, readFileSync(cert.cert, 'utf8') + readFileSync(cert.key, 'utf8'), { mode: 0o600 });
  const cfg = join(dir, 'tls.cfg');
  writeFileSync(cfg, haproxyClusterConfig({ bind: '127.0.0.1:8443', nodes: ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'], cert: pem }));
  const checked = spawnSync(haproxyBin, ['-c', '-f', cfg], { encoding: 'utf8' });
  t.equal(checked.status, 0, `haproxy -c: ${checked.stdout}${checked.stderr}`);
  t.match(readFileSync(cfg, 'utf8'), /server node3 127\.0\.0\.1:3\n/);
  t.throws(() => haproxyClusterConfig({ bind: '127.0.0.1:1', nodes: [] }), /at least one node/);
  t.throws(() => haproxyClusterConfig({ bind: '127.0.0.1:1', nodes: ['a b:1'] }), /host:port/);
  t.throws(() => haproxyClusterConfig({ bind: 'x', nodes: ['a:1'] }), /bind must be/);
});

t.test('the node holding a client\'s socket is killed: it reconnects through HAProxy to the other and resumes', async (t) => {
  const bob = await device(edge, { reconnect: true }).catch((err: unknown) => { t.comment(haproxyLog.join('\n')); t.comment([...a.node.logs, ...b.node.logs].join('\n')); throw err; }); // signed in and connected through HAProxy
  t.teardown(() => bob.close());
  const [onA, onB] = await Promise.all([connections(a), connections(b)]);
  t.equal(onA + onB, 1, 'bob\'s socket is on one of the nodes');
  const [victim, survivor] = onA === 1 ? [a, b] : [b, a];
  // Alice is on bob's node (the cluster's routing is not in this test: nodes deliver to their own sockets),
  // and fails over to the survivor by the SDK's own list.
  const alice = await device(victim.url, { urls: [victim.url, survivor.url], reconnect: true });
  t.teardown(() => alice.close());

  const { gapMs } = await chatThroughFailover(t, alice, bob, () => victim.node.kill()).catch((err: unknown) => {
    t.comment(haproxyLog.slice(-30).join('\n'));
    t.comment(survivor.node.logs.slice(-30).join('\n'));
    throw err;
  });
  t.equal(bob.client.url, edge, 'bob only ever knew the balancer\'s address');
  // The health checks work (HTTP/1.1): the dead node is marked down, and by then the live one, checked as
  // often, would have been too if its checks failed.
  const name = (f: Fixture) => (f === a ? 'node1' : 'node2');
  await waitFor(() => haproxyLog.some((l) => l.includes(`parley_nodes/${name(victim)} is DOWN`)) || undefined, 10_000, 'HAProxy marking the dead node down');
  t.notOk(haproxyLog.some((l) => l.includes(`parley_nodes/${name(survivor)} is DOWN`)), 'the live node stays up');
  t.equal(await connections(survivor), 2, 'both sockets are on the survivor now');
  t.ok(gapMs < 5000, `bob was back within ${gapMs} ms of losing his socket`);
});
