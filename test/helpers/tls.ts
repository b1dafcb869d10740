import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { join, resolve } from 'node:path';
import tls from 'node:tls';
import type { SessionInfo } from '../../src/client/accounts-api.js';
import { API_KEY, newPhone } from './clients.js';

const ROOT = resolve(__dirname, '../../..');

export interface DevCert {
  dir: string;
  ca: Buffer;
  caFile: string;
  cert: string;
  key: string;
  /** Serial number as Node prints it (upper-case hex). */
  serial: string;
}

/** Runs scripts/dev-cert DIR NAME: the CA in DIR (made once), a server certificate NAME.pem / NAME.key. */
export function devCert(dir: string, name = 'server', env: Record<string, string> = {}): DevCert {
  const r = spawnSync(join(ROOT, 'scripts', 'dev-cert'), [dir, name], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`scripts/dev-cert failed (${r.status}): ${r.stderr}`);
  const cert = join(dir, `${name}.pem`);
  return {
    dir, ca: readFileSync(join(dir, 'ca.pem')), caFile: join(dir, 'ca.pem'), cert, key: join(dir, `${name}.key`),
    serial: new X509Certificate(readFileSync(cert)).serialNumber,
  };
}

export interface HttpsResult {
  status: number;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Serial of the certificate the server presented on the connection that carried the request. */
  serial: string;
  /** Whether the request went over a kept-alive connection opened earlier. */
  reused: boolean;
}

export interface HttpsOptions {
  ca?: Buffer;
  method?: string;
  json?: unknown;
  headers?: Record<string, string>;
  localAddress?: string;
  /** false: a new connection for this request (the global agent keeps connections alive). */
  agent?: https.Agent | false;
}

/** One HTTPS request with Node's https (whose `ca` the global fetch has no option for). */
export function httpsRequest(base: string, path: string, o: HttpsOptions = {}): Promise<HttpsResult> {
  const body = o.json === undefined ? undefined : JSON.stringify(o.json);
  return new Promise((resolvePromise, reject) => {
    const req = https.request(`${base}${path}`, {
      method: o.method ?? (body ? 'POST' : 'GET'),
      headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...o.headers },
      ...(o.ca ? { ca: o.ca } : {}), ...(o.localAddress ? { localAddress: o.localAddress } : {}), ...(o.agent !== undefined ? { agent: o.agent } : {}),
    }, (res) => {
      const socket = res.socket as tls.TLSSocket;
      const serial = socket.getPeerCertificate().serialNumber;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolvePromise({ status: res.statusCode ?? 0, json, serial, reused: req.reusedSocket });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Dev sign-in (code from the node's outbox) over HTTPS, verified against `ca`. */
export async function signInTls(base: string, ca: Buffer | undefined, phone = newPhone(), localAddress?: string): Promise<{ session: SessionInfo; phone: string }> {
  const o = { ...(ca ? { ca } : {}), ...(localAddress ? { localAddress } : {}), headers: { 'x-api-key': API_KEY } };
  const sent = await httpsRequest(base, '/v1/accounts/code', { ...o, json: { phone } });
  if (sent.status !== 200) throw new Error(`code request answered ${sent.status}: ${JSON.stringify(sent.json)}`);
  const otp = await httpsRequest(base, `/v1/dev/otp?phone=${encodeURIComponent(phone)}`, o);
  const verified = await httpsRequest(base, '/v1/accounts/verify', { ...o, json: { phone, code: otp.json.code, device: { name: 'tls', platform: 'test' } } });
  if (verified.status !== 200) throw new Error(`verify answered ${verified.status}: ${JSON.stringify(verified.json)}`);
  return { session: verified.json as SessionInfo, phone };
}

/** The serial of the certificate a new TLS connection to host:port is given (verified against `ca`). */
export function presentedSerial(port: number, ca: Buffer, servername?: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, ...(servername ? { servername } : {}) }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolvePromise(serial);
    });
    s.on('error', reject);
  });
}
