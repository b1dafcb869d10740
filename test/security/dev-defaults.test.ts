import t from 'tap';
import { createServer, type Server } from 'node:http';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startNodeProcess } from '../helpers/node-process.js';
import { Fixture, http, ADMIN_KEY } from '../helpers/fixture.js';
import { API_KEY, newPhone, signIn } from '../helpers/clients.js';
import { loadConfig, productionProblems } from '../../src/config.js';
import { OperatorAccess } from '../../src/http/operator-access.js';

/**
 * Issue #10 §2, §8, §9: safe by default, development by choice. A production node refuses to start with any
 * development convenience; a development node keeps its dev outboxes and metrics to this machine.
 */

const APP_KEY = 'app-key-0123456789abcdef';
const PRODUCTION = {
  PARLEY_ENV: 'production', PARLEY_SMS: 'http', PARLEY_API_KEYS: APP_KEY, PARLEY_SECRET: 's'.repeat(40),
  PARLEY_ADMIN_KEY: ADMIN_KEY.padEnd(16, '-'), PARLEY_OTP_COOLDOWN_MS: '',
};

t.test('a production node lists everything it refuses to start with', async (t) => {
  t.same(productionProblems({ ...PRODUCTION, PARLEY_SMS_URL: 'http://sms' }), [], 'a complete production environment passes');
  const problems = productionProblems({ PARLEY_ENV: 'production', PARLEY_FAULTS: '1', PARLEY_API_KEYS: `${APP_KEY},parley-dev-key`, PARLEY_ADMIN_KEY: 'short' });
  for (const what of [/PARLEY_SMS is dev/, /includes parley-dev-key/, /PARLEY_SECRET is unset/, /PARLEY_ADMIN_KEY needs/, /PARLEY_FAULTS/, /at least 16/]) {
    t.ok(problems.some((p) => what.test(p)), `names ${what}`);
  }
  t.throws(() => loadConfig({ PARLEY_ENV: 'production' }), /refuses to start:[\s\S]*PARLEY_SMS[\s\S]*PARLEY_API_KEYS[\s\S]*PARLEY_SECRET/);
  t.throws(() => loadConfig({ PARLEY_ENV: 'staging' }), /development or production/);
  t.equal(loadConfig({}).host, '127.0.0.1', 'a development node binds loopback unless told otherwise');
  t.equal(loadConfig({ ...PRODUCTION, PARLEY_SMS_URL: 'http://sms' }).host, '0.0.0.0');

  // As a process: it exits, and says why.
  await t.rejects(startNodeProcess({ PARLEY_ENV: 'production', PARLEY_OTP_COOLDOWN_MS: '' }), /refuses to start[\s\S]*PARLEY_SMS/);
});

t.test('operator access: the admin key always; the outboxes and metrics also on a loopback development node', async (t) => {
  const open = new OperatorAccess('k'.repeat(20), true);
  const closed = new OperatorAccess('k'.repeat(20), false);
  const none = new OperatorAccess(undefined, false);
  t.doesNotThrow(() => open.local(''));
  t.throws(() => open.admin(''), { code: 'unauthorized' }, 'admin routes need the key even on loopback');
  t.throws(() => closed.local(''), { code: 'unauthorized' }, 'a dev node on another address needs the key for its outboxes');
  t.throws(() => closed.local('k'.repeat(19)), { code: 'unauthorized' });
  t.doesNotThrow(() => closed.local('k'.repeat(20)));
  t.throws(() => none.admin(''), { code: 'unauthorized' }, 'no key configured: nobody');
});

t.test('on a production node the takeover path is closed', async (t) => {
  const sms: { to: string; text: string }[] = [];
  const gateway: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { sms.push(JSON.parse(body)); res.end('{}'); });
  });
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => gateway.close());
  const port = (gateway.address() as { port: number }).port;
  const node = await startNodeProcess({ ...PRODUCTION, PARLEY_HOST: '127.0.0.1', PARLEY_SMS_URL: `http://127.0.0.1:${port}/sms` });
  t.teardown(() => node.destroy());
  const phone = newPhone();

  const devKey = await http(node.url, '/v1/accounts/code', { method: 'POST', headers: { 'x-api-key': API_KEY }, json: { phone } });
  t.equal(devKey.status, 401, 'the dev API key is refused');
  const ok = await http(node.url, '/v1/accounts/code', { method: 'POST', headers: { 'x-api-key': APP_KEY }, json: { phone } });
  t.equal(ok.status, 200);
  t.equal(sms.length, 1, 'the code went to the SMS gateway');
  t.equal(sms[0]!.to, phone);
  for (const path of [`/v1/dev/otp?phone=${encodeURIComponent(phone)}`, '/v1/dev/push']) {
    t.equal((await http(node.url, path, { headers: { 'x-admin-key': PRODUCTION.PARLEY_ADMIN_KEY } })).status, 404, `${path} does not exist`);
  }
  t.equal((await http(node.url, '/metrics')).status, 401, '/metrics needs the admin key');
  const metrics = await http(node.url, '/metrics', { headers: { authorization: `Bearer ${PRODUCTION.PARLEY_ADMIN_KEY}` } });
  t.equal(metrics.status, 200, 'as Prometheus sends it');
  t.match(metrics.bytes.toString(), /parley_connections/);
  t.equal((await http(node.url, '/healthz')).status, 200, 'health stays open for load balancers');
});

t.test('a development node: outboxes and metrics open on loopback; its files are its own', async (t) => {
  const f = await Fixture.start();
  t.teardown(() => f.destroy());
  t.ok(f.node.logs.some((l) => /DEVELOPMENT NODE/.test(l) && /"level":"warn"/.test(l)), 'it says loudly what it is');
  const { session } = await signIn(f.url); // through the dev outbox
  t.ok(session.token);
  t.equal((await http(f.url, '/metrics')).status, 200);
  const modes: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      if ((st.mode & 0o077) !== 0) modes.push(`${p.slice(f.node.dataDir.length)} ${(st.mode & 0o777).toString(8)}`);
    }
  };
  walk(f.node.dataDir);
  t.same(modes, [], 'no file or folder in the data directory is readable by others');
  t.equal(statSync(f.node.dataDir).mode & 0o777, 0o700);
});

t.test('a browser page from another origin cannot open a socket', async (t) => {
  const f = await Fixture.start({ PARLEY_ALLOWED_ORIGINS: 'https://app.example.com' });
  t.teardown(() => f.destroy());
  const { session } = await signIn(f.url);
  const wsUrl = `${f.url.replace('http', 'ws')}/v1/ws?token=${encodeURIComponent(session.token)}`;
  const attempt = (origin?: string) => new Promise<number>((resolve) => {
    const ws = new WebSocket(wsUrl, origin ? { origin } : {});
    ws.once('open', () => { ws.close(); resolve(101); });
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.once('error', () => undefined);
  });
  t.equal(await attempt('https://evil.example'), 403, 'another origin is refused');
  t.equal(await attempt('null'), 403, 'so is a sandboxed page');
  t.equal(await attempt('https://app.example.com'), 101, 'an allowed origin is let in');
  t.equal(await attempt(f.url), 101, "the node's own origin is let in");
  t.equal(await attempt(), 101, 'an app without an Origin is let in');
});
