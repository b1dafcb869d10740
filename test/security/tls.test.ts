import t from 'tap';
import { spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import WebSocket from 'ws';
import { Fixture } from '../helpers/fixture.js';
import { newPhone, waitFor } from '../helpers/clients.js';
import { RawSocket } from '../helpers/raw-socket.js';
import { startNodeProcess } from '../helpers/node-process.js';
import { devCert, httpsRequest, presentedSerial, signInTls, type DevCert } from '../helpers/tls.js';

/**
 * Issue #10 part 7: the node serves HTTPS and WSS itself (PARLEY_TLS_CERT / PARLEY_TLS_KEY), with
 * certificates from scripts/dev-cert, and takes a new certificate on SIGHUP without dropping connections.
 */

const dir = mkdtempSync(join(tmpdir(), 'parley-tls-'));
const first = devCert(dir, 'first');
// The node reads these two paths; a renewal replaces them by rename, as certbot or cert-manager do.
const live = { cert: join(dir, 'live.pem'), key: join(dir, 'live.key') };
function install(c: { cert: string; key: string }): void {
  copyFileSync(c.key, `${live.key}.new`);
  copyFileSync(c.cert, `${live.cert}.new`);
  renameSync(`${live.key}.new`, live.key);
  renameSync(`${live.cert}.new`, live.cert);
}
install(first);
const ca = first.ca;

let f: Fixture;
// At info, the node logs each certificate it loads: the test waits for that line after a SIGHUP.
t.before(async () => { f = await Fixture.start({ PARLEY_TLS_CERT: live.cert, PARLEY_TLS_KEY: live.key, PARLEY_LOG_LEVEL: 'info' }); });
t.teardown(async () => {
  await f?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** A raw socket over WSS, synced, so live deliveries come to it. */
async function wss(token: string, options: WebSocket.ClientOptions = { ca }): Promise<RawSocket> {
  const s = await RawSocket.open(f.url, token, 'msgpack', options);
  s.send({ t: 'sync', since: 0 });
  await s.next((x) => x.t === 'synced', 'synced');
  return s;
}

/** Sends a text from one socket and resolves with the delivery on the other: the two can chat. */
async function chat(from: RawSocket, to: RawSocket, toUser: string, text: string): Promise<void> {
  const cid = `c-${Math.random().toString(36).slice(2)}`;
  const mark = to.frames.length;
  from.send({ t: 'send', cid, to: toUser, kind: 'text', body: { text } });
  await from.next((x) => x.t === 'sent' && x.cid === cid, `sent tick of "${text}"`);
  await to.next((x) => x.t === 'msg' && x.m.body?.text === text, `delivery of "${text}"`, 5000, mark);
}

/** Sends SIGHUP and waits for the node's log line about it (reload is synchronous in the handler). */
async function sighup(expect: RegExp): Promise<Record<string, string>> {
  const mark = f.node.logs.length;
  f.node.proc.kill('SIGHUP');
  const line = await waitFor(() => f.node.logs.slice(mark).find((l) => /tls (certificate loaded|reload refused)/.test(l)), 5000, 'the reload log line');
  const parsed = JSON.parse(line) as Record<string, string>;
  if (!expect.test(line)) throw new Error(`unexpected reload outcome: ${line}`);
  return parsed;
}

t.test('scripts/dev-cert: a CA and a server certificate for 127.0.0.1 and localhost that chains to it', async (t) => {
  const caCert = new X509Certificate(ca);
  const leaf = new X509Certificate(readFileSync(first.cert));
  t.ok(caCert.ca, 'the CA certificate is a CA');
  t.notOk(leaf.ca, 'the server certificate is not');
  t.ok(leaf.checkIssued(caCert) && leaf.verify(caCert.publicKey), 'signed by the CA');
  t.match(leaf.subjectAltName, /IP Address:127\.0\.0\.1/);
  t.match(leaf.subjectAltName, /DNS:localhost/);
  t.ok(leaf.checkPrivateKey(createPrivateKey(readFileSync(first.key))), 'the key belongs to the certificate');
  t.equal(statSync(first.key).mode & 0o777, 0o600, 'the key is readable by its owner only');
  t.equal(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600);
  const again = devCert(dir, 'another');
  t.not(again.serial, first.serial, 'each certificate gets its own serial');
  t.ok(new X509Certificate(readFileSync(again.cert)).checkIssued(caCert), 'a later certificate chains to the same CA');
});

t.test('HTTPS and WSS verified against the dev CA: sign in, connect, chat', async (t) => {
  t.match(f.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the node announces an https URL');
  const alice = await signInTls(f.url, ca);
  const bob = await signInTls(f.url, ca);
  const health = await httpsRequest(f.url, '/healthz', { ca });
  t.equal(health.status, 200);
  t.equal(health.serial, first.serial, 'the node presents the configured certificate');
  const a = await wss(alice.session.token);
  const b = await wss(bob.session.token);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await chat(a, b, bob.session.user, 'hello over wss');
  await chat(b, a, alice.session.user, 'and back');
  t.equal(await presentedSerial(f.node.port, ca, 'localhost'), first.serial, 'by name (SNI) as by address');
});

t.test('a client that does not trust the CA is refused, and nothing is served in clear', async (t) => {
  await t.rejects(httpsRequest(f.url, '/healthz'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'https without the CA');
  const { session } = await signInTls(f.url, ca);
  await t.rejects(wss(session.token, {}), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'wss without the CA');
  // Plain HTTP to the TLS port gets no HTTP answer at all.
  const plain = await new Promise<string>((done) => {
    const req = http.get(`http://127.0.0.1:${f.node.port}/healthz`, (res) => done(`HTTP ${res.statusCode}`));
    req.on('error', (err) => done(`error ${(err as NodeJS.ErrnoException).code}`));
  });
  t.match(plain, /^error /, `plain HTTP is not answered (${plain})`);
  t.equal((await httpsRequest(f.url, '/healthz', { ca })).status, 200, 'and the node still serves clients that trust it');
});

t.test('the SDK works over https/wss: a Node app trusting the CA through NODE_EXTRA_CA_CERTS chats', async (t) => {
  const script = resolve(__dirname, '../helpers/sdk-echo.js');
  const run = (env: Record<string, string>) => {
    const proc = spawn(process.execPath, [script, f.url, newPhone()], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: Record<string, string>[] = [];
    createInterface({ input: proc.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Record<string, string>));
    proc.stdin.on('error', () => undefined); // EPIPE once it has exited
    const exited = new Promise<number | null>((done) => proc.on('exit', done));
    t.teardown(() => { proc.stdin.end(); return exited; });
    return { lines, exited };
  };
  const untrusting = run({});
  t.equal(await untrusting.exited, 1, 'an app that does not trust the CA cannot sign in');
  t.match(untrusting.lines[0], { t: 'failed', error: /unable to verify the first certificate/ });

  const echo = run({ NODE_EXTRA_CA_CERTS: first.caFile });
  const ready = await waitFor(() => echo.lines.find((l) => l.t === 'ready' || l.t === 'failed'), 10_000, 'the SDK app to connect');
  t.equal(ready.t, 'ready', JSON.stringify(ready));
  const alice = await signInTls(f.url, ca);
  const a = await wss(alice.session.token);
  t.teardown(() => a.close());
  a.send({ t: 'send', cid: 'to-echo', to: ready.user, kind: 'text', body: { text: 'ping over tls' } });
  const reply = await a.next((x) => x.t === 'msg' && x.m.from === ready.user, 'the SDK app\'s answer');
  t.equal(reply.m.body.text, 'echo: ping over tls');
  t.ok(echo.lines.some((l) => l.t === 'message' && l.text === 'ping over tls'), 'the SDK app received the message');
});

let second: DevCert;
let third: DevCert;

t.test('SIGHUP with a new certificate: new connections get it; open sockets and kept-alive requests keep working', async (t) => {
  const alice = await signInTls(f.url, ca);
  const bob = await signInTls(f.url, ca);
  const a = await wss(alice.session.token);
  const b = await wss(bob.session.token);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca });
  t.teardown(() => { agent.destroy(); return Promise.all([a.close(), b.close()]); });
  const before = await httpsRequest(f.url, '/healthz', { agent });
  t.equal(before.serial, first.serial);

  second = devCert(dir, 'second');
  install(second);
  const loaded = await sighup(/tls certificate loaded/);
  t.equal(loaded.serial, second.serial, 'the node logs the certificate it now serves');
  t.equal(await presentedSerial(f.node.port, ca), second.serial, 'a new connection by address gets the new certificate');
  t.equal(await presentedSerial(f.node.port, ca, 'localhost'), second.serial, 'and by name');
  const fresh = await httpsRequest(f.url, '/healthz', { ca, agent: false });
  t.equal(fresh.serial, second.serial, 'so does a new HTTPS connection');

  const kept = await httpsRequest(f.url, '/healthz', { agent });
  t.ok(kept.reused, 'the kept-alive HTTPS connection from before the reload carried this request');
  t.equal(kept.status, 200);
  t.equal(kept.serial, first.serial, 'on the old certificate');

  await chat(a, b, bob.session.user, 'sockets opened before the reload still chat');
  const carol = await signInTls(f.url, ca);
  const c = await wss(carol.session.token);
  t.teardown(() => c.close());
  await chat(a, c, carol.session.user, 'old socket to new socket');
  await chat(c, a, alice.session.user, 'new socket to old socket');
});

t.test('SIGHUP with a broken certificate or key: the node logs it and stays up on the one it had', async (t) => {
  const alice = await signInTls(f.url, ca);
  const bob = await signInTls(f.url, ca);
  const a = await wss(alice.session.token);
  const b = await wss(bob.session.token);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const other = devCert(dir, 'other');

  const cases: [string, () => void, RegExp][] = [
    ['a certificate file that is not PEM', () => writeFileSync(live.cert, 'not a certificate\n'), /holds no PEM certificate/],
    ['a truncated certificate', () => writeFileSync(live.cert, readFileSync(second.cert, 'utf8').slice(0, 300) + '\n-----END CERTIFICATE-----\n'), /can't be parsed/],
    ['a key that belongs to another certificate', () => { install(second); copyFileSync(other.key, live.key); }, /does not belong to the certificate/],
    ['a missing key file', () => rmSync(live.key), /cannot read PARLEY_TLS_KEY .* \(ENOENT\)/],
  ];
  for (const [what, breakIt, error] of cases) {
    breakIt();
    const refused = await sighup(/tls reload refused/);
    t.match(refused.error, error, `${what}: refused (${refused.error})`);
    t.equal(refused.level, 'error');
    t.equal(await presentedSerial(f.node.port, ca), second.serial, `${what}: new connections still get the previous certificate`);
    await chat(a, b, bob.session.user, `still chatting after ${what}`);
  }
  t.equal(f.node.proc.exitCode, null, 'the node never went down');
  const late = await signInTls(f.url, ca);
  t.ok(late.session.token, 'and signs in new clients');

  // Fixed files are taken on the next SIGHUP.
  third = devCert(dir, 'third');
  install(third);
  t.equal((await sighup(/tls certificate loaded/)).serial, third.serial);
  t.equal(await presentedSerial(f.node.port, ca), third.serial, 'a later good pair is served');
  await chat(a, b, bob.session.user, 'after the second reload');
});

t.test('SIGHUPs back to back while sockets chat and files are replaced: every message arrives, in order', async (t) => {
  const alice = await signInTls(f.url, ca);
  const bob = await signInTls(f.url, ca);
  const a = await wss(alice.session.token);
  const b = await wss(bob.session.token);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const mark = f.node.logs.length;
  const texts = Array.from({ length: 40 }, (_, i) => `busy ${i}`);
  const sending = (async () => {
    for (const [i, text] of texts.entries()) {
      a.send({ t: 'send', cid: `busy-${i}`, to: bob.session.user, kind: 'text', body: { text } });
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  install(second);
  f.node.proc.kill('SIGHUP');
  install(third);
  f.node.proc.kill('SIGHUP');
  await sending;
  // Signals sent together may arrive as one; a reload that ran between install()'s two renames saw a key
  // of one pair and the certificate of another and refused it (as documented in scripts/dev-cert).
  const outcomes = () => f.node.logs.slice(mark).filter((x) => /tls (certificate loaded|reload refused)/.test(x));
  await waitFor(() => outcomes().length > 0 || undefined, 5000, 'a reload');
  for (const l of outcomes()) t.match(l, /tls certificate loaded|does not belong to the certificate/, 'loaded, or refused mid-rename');
  t.equal((await sighup(/tls certificate loaded/)).serial, third.serial, 'with the files settled, the next SIGHUP loads the last pair');
  t.equal(await presentedSerial(f.node.port, ca), third.serial, 'and new connections get it');
  await waitFor(() => texts.every((_, i) => a.frames.some((x) => x.t === 'sent' && x.cid === `busy-${i}`)) || undefined, 5000, 'every tick');
  await b.roundTrip();
  const got = b.frames.filter((x) => x.t === 'msg').map((x) => x.m.body.text as string);
  t.strictSame(got, texts, 'every message was delivered once, in order, on the socket opened before the reloads');
  t.notOk(a.closed ?? b.closed, 'neither socket was closed');
});

t.test('an encrypted key with PARLEY_TLS_PASSPHRASE_FILE, and the chain in PARLEY_TLS_CHAIN', async (t) => {
  const encKey = join(dir, 'encrypted.key');
  writeFileSync(encKey, createPrivateKey(readFileSync(first.key)).export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'correct horse' }));
  const pass = join(dir, 'passphrase');
  writeFileSync(pass, 'correct horse\n', { mode: 0o600 });
  const env = { PARLEY_TLS_CERT: first.cert, PARLEY_TLS_KEY: encKey, PARLEY_TLS_PASSPHRASE_FILE: pass, PARLEY_TLS_CHAIN: first.caFile };
  let n = 0;
  const dataDir = () => join(dir, `node-${++n}`); // under `dir`, removed with it, also for the nodes that fail to start
  const firstDir = dataDir();
  mkdirSync(join(firstDir, 'tls'), { recursive: true });
  writeFileSync(join(firstDir, 'tls', 'pair-1-1.key'), 'left behind by a crash mid-reload');
  const node = await startNodeProcess(env, firstDir);
  t.notOk(existsSync(join(firstDir, 'tls', 'pair-1-1.key')), 'a key copy left by a crash is removed at start');
  t.teardown(() => node.destroy());
  t.equal((await httpsRequest(node.url, '/healthz', { ca })).status, 200, 'the node serves with the decrypted key');
  // Unverified, so what comes back is only what the node sent: the leaf and then the chain file's CA.
  const sent = await new Promise<tls.DetailedPeerCertificate>((done, fail) => {
    const s = tls.connect({ host: '127.0.0.1', port: node.port, rejectUnauthorized: false }, () => { done(s.getPeerCertificate(true)); s.end(); });
    s.on('error', fail);
  });
  t.equal(sent.serialNumber, first.serial);
  t.equal(sent.issuerCertificate?.fingerprint256, new X509Certificate(ca).fingerprint256, 'the chain follows the certificate');

  writeFileSync(pass, 'wrong horse\n');
  await t.rejects(startNodeProcess(env, dataDir()), /exited with 1[\s\S]*the passphrase right/, 'a wrong passphrase: the node does not start, and says why');
  await t.rejects(startNodeProcess({ ...env, PARLEY_TLS_PASSPHRASE_FILE: '' }, dataDir()), /PARLEY_TLS_PASSPHRASE_FILE/, 'no passphrase for an encrypted key: says which setting is missing');
  await t.rejects(startNodeProcess({ PARLEY_TLS_CERT: first.cert }, dataDir()), /needs both PARLEY_TLS_CERT and PARLEY_TLS_KEY/, 'a certificate without a key');
});
