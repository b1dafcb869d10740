import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Fixture } from '../helpers/fixture.js';
import { RawSocket } from '../helpers/raw-socket.js';
import { devCert, httpsRequest, signInTls } from '../helpers/tls.js';

/**
 * Issue #10 part 7: a real HAProxy terminates TLS in front of a plain node, with deploy/haproxy/haproxy.cfg
 * as shipped, and passes each client's address with the PROXY protocol v2. The node trusts it
 * (PARLEY_TRUST_PROXY) and logs the client's address when a socket opens (debug level). Clients come from
 * 127.0.0.2 and 127.0.0.3 (Node's `localAddress`), so their addresses differ from the proxy's 127.0.0.1.
 */

const ROOT = resolve(__dirname, '../../..');
const ensured = spawnSync(join(ROOT, 'scripts', 'haproxy'), ['ensure'], { encoding: 'utf8' });
if (ensured.status !== 0) throw new Error(`scripts/haproxy ensure failed: ${ensured.stderr}`);
const haproxyBin = ensured.stdout.trim().split('\n').pop()!;

const dir = mkdtempSync(join(tmpdir(), 'parley-haproxy-'));
const edge = devCert(dir, 'edge');
const ca = edge.ca;
// HAProxy takes the certificate and its key in one PEM.
const bundle = join(dir, 'haproxy.pem');
writeFileSync(bundle, readFileSync(edge.cert, 'utf8') + readFileSync(edge.key, 'utf8'), { mode: 0o600 });

let f: Fixture;
let haproxy: ChildProcess;
const haproxyLog: string[] = [];
let edgeUrl = '';

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = net.createServer().once('error', fail).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => done(port));
    });
  });
}

t.before(async () => {
  f = await Fixture.start({ PARLEY_TRUST_PROXY: '127.0.0.1', PARLEY_LOG_LEVEL: 'debug' });
  const port = await freePort();
  haproxy = spawn(haproxyBin, ['-db', '-f', join(ROOT, 'deploy', 'haproxy', 'haproxy.cfg')], {
    env: { ...process.env, PARLEY_HAPROXY_BIND: `127.0.0.1:${port}`, PARLEY_HAPROXY_CERT: bundle, PARLEY_NODE_1: `127.0.0.1:${f.node.port}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const out of [haproxy.stdout!, haproxy.stderr!]) createInterface({ input: out }).on('line', (l) => haproxyLog.push(l));
  edgeUrl = `https://127.0.0.1:${port}`;
  // Up once a request goes through it to the node.
  const until = Date.now() + 15_000;
  for (;;) {
    if (haproxy.exitCode !== null) throw new Error(`haproxy exited with ${haproxy.exitCode}:\n${haproxyLog.join('\n')}`);
    const r = await httpsRequest(edgeUrl, '/healthz', { ca, agent: false }).catch(() => undefined);
    if (r?.status === 200) break;
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
  await f?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** The address the node logged for the user's socket ("socket opened", debug). */
function loggedAddress(user: string): string | undefined {
  for (const l of f.node.logs) {
    if (!l.includes('"socket opened"')) continue;
    const e = JSON.parse(l) as { user: string; addr: string };
    if (e.user === user) return e.addr;
  }
  return undefined;
}

async function openThroughProxy(token: string, localAddress: string): Promise<RawSocket> {
  const s = await RawSocket.open(edgeUrl, token, 'msgpack', { ca, localAddress });
  s.send({ t: 'sync', since: 0 });
  await s.next((x) => x.t === 'synced', 'synced');
  return s;
}

t.test('through HAProxy over WSS: clients sign in and chat, and the node sees each client\'s own address', async (t) => {
  const alice = await signInTls(edgeUrl, ca, undefined, '127.0.0.2');
  const bob = await signInTls(edgeUrl, ca, undefined, '127.0.0.3');
  const a = await openThroughProxy(alice.session.token, '127.0.0.2');
  const b = await openThroughProxy(bob.session.token, '127.0.0.3');
  t.teardown(() => Promise.all([a.close(), b.close()]));

  a.send({ t: 'send', cid: 'via-haproxy-1', to: bob.session.user, kind: 'text', body: { text: 'hello through the balancer' } });
  await a.next((x) => x.t === 'sent' && x.cid === 'via-haproxy-1', 'sent');
  const got = await b.next((x) => x.t === 'msg' && x.m.cid === 'via-haproxy-1', 'delivery');
  t.equal(got.m.body.text, 'hello through the balancer');
  b.send({ t: 'send', cid: 'via-haproxy-2', to: alice.session.user, kind: 'text', body: { text: 'and back' } });
  t.equal((await a.next((x) => x.t === 'msg' && x.m.cid === 'via-haproxy-2', 'reply')).m.body.text, 'and back');

  t.equal(loggedAddress(alice.session.user), '127.0.0.2', 'alice\'s socket: her address, not the proxy\'s');
  t.equal(loggedAddress(bob.session.user), '127.0.0.3', 'bob\'s socket: his');
});

t.test('a client that reaches the node directly cannot claim an address with its own PROXY header', async (t) => {
  const mallory = await signInTls(edgeUrl, ca, undefined, '127.0.0.4');
  // PROXY v2, TCP over IPv4, "from 203.0.113.7:12345 to 127.0.0.1:8080", then the upgrade request.
  const header = Buffer.concat([
    Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), Buffer.from([0x21, 0x11, 0x00, 12]),
    Buffer.from([203, 0, 113, 7, 127, 0, 0, 1, 0x30, 0x39, 0x1f, 0x90]),
  ]);
  const withHeader = (token: string, from: string) => RawSocket.open(f.url, token, 'msgpack', {
    createConnection: () => {
      const sock = net.connect({ host: '127.0.0.1', port: f.node.port, localAddress: from });
      sock.write(header); // queued: the first bytes on the wire, before the upgrade request
      return sock;
    },
  });
  const s = await withHeader(mallory.session.token, '127.0.0.4');
  t.teardown(() => s.close());
  await s.roundTrip();
  t.equal(loggedAddress(mallory.session.user), '127.0.0.4', 'the peer is not a trusted proxy: its own address counts');

  // The same header from the proxy's address is believed: trust is by the peer's address, which is why a
  // node's plain port must be reachable from the proxies only (README "Behind a load balancer").
  const proxied = await signInTls(edgeUrl, ca);
  const p = await withHeader(proxied.session.token, '127.0.0.1');
  t.teardown(() => p.close());
  await p.roundTrip();
  t.equal(loggedAddress(proxied.session.user), '203.0.113.7', 'from a trusted peer, the PROXY header names the client');
});
