import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import uWS, { type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';
import type { TlsFiles } from '../config.js';
import { log } from '../log.js';

/**
 * The node's listening edge: plain HTTP/WS with `uWS.App`, or HTTPS/WSS with `uWS.SSLApp`, and the
 * certificate reload on SIGHUP.
 *
 * How a reload works. uWS (uWS.js 20.30, uSockets 0.8.6) cannot change the certificate of a running
 * SSLApp: its default context is fixed at construction. Its SNI calls (`addServerName`, `removeServerName`,
 * `missingServerName`) don't fit either: clients that connect by IP address send no server name and always
 * get the default context; a connection matched to a server name is routed by that name's own, empty,
 * router (every route would have to be registered again per name); `removeServerName` deletes that router
 * while keep-alive connections still point at it; and `addServerName` with a certificate BoringSSL refuses
 * dereferences a null context (fixed upstream in uSockets only in Dec 2023). So a reload builds a second
 * SSLApp from the new files, mounts the same routes on it, listens on the same port (uSockets sets
 * SO_REUSEPORT on every listen socket with a non-zero port), then closes the old listen socket. New
 * connections get the new certificate; open connections stay with the old app and its certificate until
 * they close (uWS.js keeps every app until the process exits, a few KB each). On Linux, a connection that
 * reached the old socket's accept queue in the same instant is reset unless `net.ipv4.tcp_migrate_req=1`;
 * clients retry. Port 0 is resolved to a free port first, since a socket bound to port 0 gets no
 * SO_REUSEPORT and could not be listened on twice.
 *
 * The files are read and checked here (parse, key match, dates, chain order) before uWS sees them, and uWS
 * is handed exactly the bytes that were checked (a private copy it reads at construction, removed at
 * once), so a file rewritten mid-reload can't make it serve something else. A pair that fails any check
 * leaves the node serving the old one.
 */
export interface CertInfo {
  serial: string;
  fingerprint256: string;
  subject: string;
  names: string;
  validFrom: string;
  validTo: string;
}

export type ReloadOutcome = { ok: true; cert: CertInfo } | { ok: false; error: string };

export interface Edge {
  readonly scheme: 'http' | 'https';
  readonly port: number;
  /** The certificate new connections get (TLS only). */
  readonly cert?: CertInfo;
  /** Re-reads the TLS files; on success new connections get the new certificate and open ones keep theirs. */
  reload(): ReloadOutcome;
  /** Stops accepting connections. */
  close(): void;
}

/** What was read and checked: the PEM handed to uWS. */
export interface CheckedPair {
  certPem: string;
  keyPem: Buffer;
  passphrase?: string;
  info: CertInfo;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Checks a certificate chain (leaf first) and its private key as a TLS server would use them; throws an
 * Error saying what is wrong. Pure apart from the clock passed in.
 */
export function checkPair(certPem: string, keyPem: Buffer | string, passphrase: string | undefined, now: number, names = { cert: 'the certificate', key: 'the key' }): CertInfo {
  const blocks = certPem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new Error(`${names.cert} holds no PEM certificate`);
  const chain = blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new Error(`certificate ${i + 1} in ${names.cert} can't be parsed (${(err as Error).message})`);
    }
  });
  const leaf = chain[0]!;
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) });
  } catch (err) {
    const hint = passphrase === undefined ? '; if it is encrypted, set PARLEY_TLS_PASSPHRASE_FILE' : '; is the passphrase right?';
    throw new Error(`${names.key} can't be read (${(err as Error).message})${hint}`);
  }
  if (!leaf.checkPrivateKey(key)) throw new Error(`${names.key} does not belong to the certificate in ${names.cert}`);
  if (Date.parse(leaf.validFrom) > now) throw new Error(`${names.cert} is not valid before ${leaf.validFrom}`);
  if (Date.parse(leaf.validTo) <= now) throw new Error(`${names.cert} expired on ${leaf.validTo}`);
  for (let i = 1; i < chain.length; i++) {
    if (!chain[i - 1]!.checkIssued(chain[i]!)) {
      throw new Error(`certificate ${i} in ${names.cert} was not issued by certificate ${i + 1} after it: the chain must run leaf first, then each issuer`);
    }
  }
  return {
    serial: leaf.serialNumber, fingerprint256: leaf.fingerprint256, subject: leaf.subject.replace(/\n/g, ', '),
    names: leaf.subjectAltName ?? '', validFrom: leaf.validFrom, validTo: leaf.validTo,
  };
}

/** Reads the configured files and checks them (checkPair). */
export function loadPair(files: TlsFiles, now = Date.now()): CheckedPair {
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read ${what} ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  const cert = read('PARLEY_TLS_CERT', files.cert).toString('utf8');
  const chain = files.chain ? read('PARLEY_TLS_CHAIN', files.chain).toString('utf8') : '';
  const certPem = chain ? `${cert.trimEnd()}\n${chain.trimEnd()}\n` : cert;
  const keyPem = read('PARLEY_TLS_KEY', files.key);
  // A passphrase file usually ends with a newline that is not part of the passphrase.
  const passphrase = files.passphraseFile ? read('PARLEY_TLS_PASSPHRASE_FILE', files.passphraseFile).toString('utf8').replace(/\r?\n$/, '') : undefined;
  const info = checkPair(certPem, keyPem, passphrase, now, {
    cert: files.chain ? `${files.cert} + ${files.chain}` : files.cert, key: files.key,
  });
  return { certPem, keyPem, ...(passphrase !== undefined ? { passphrase } : {}), info };
}

let copies = 0;

/** An SSLApp serving exactly `pair`: uWS reads files, so it gets a private copy, removed once it has read it. */
function sslApp(pair: CheckedPair, workDir: string): TemplatedApp {
  const base = join(workDir, `pair-${process.pid}-${++copies}`);
  try {
    writeFileSync(`${base}.pem`, pair.certPem, { mode: 0o600 });
    writeFileSync(`${base}.key`, pair.keyPem, { mode: 0o600 });
    return uWS.SSLApp({ cert_file_name: `${base}.pem`, key_file_name: `${base}.key`, ...(pair.passphrase !== undefined ? { passphrase: pair.passphrase } : {}) });
  } catch (err) {
    // uWS says only "App construction failed": BoringSSL refused what OpenSSL accepted (a key type, say).
    throw new Error(`uWS could not load the certificate and key (${(err as Error).message})`);
  } finally {
    rmSync(`${base}.pem`, { force: true });
    rmSync(`${base}.key`, { force: true });
  }
}

function listenOn(app: TemplatedApp, host: string, port: number): us_listen_socket | false {
  let socket: us_listen_socket | false = false;
  app.listen(host, port, (s) => { socket = s; }); // uWS calls back before listen returns
  return socket;
}

/** A port nothing listens on now (the kernel's pick), for a TLS node configured with port 0. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface EdgeOptions {
  host: string;
  port: number;
  tls?: TlsFiles;
  /** A private directory for the copies uWS reads (created 0700). */
  workDir: string;
}

/** Creates the app, lets `mount` register every route on it, and listens. `mount` runs again on every reload. */
export async function listenEdge(opts: EdgeOptions, mount: (app: TemplatedApp) => void): Promise<Edge> {
  if (!opts.tls) {
    const app = uWS.App();
    mount(app);
    const socket = listenOn(app, opts.host, opts.port);
    if (!socket) throw new Error(`cannot listen on ${opts.host}:${opts.port}`);
    return {
      scheme: 'http', port: uWS.us_socket_local_port(socket),
      reload: () => ({ ok: false, error: 'TLS is not configured' }),
      close: () => uWS.us_listen_socket_close(socket),
    };
  }
  const files = opts.tls;
  mkdirSync(opts.workDir, { recursive: true, mode: 0o700 });
  for (const f of readdirSync(opts.workDir)) if (f.startsWith('pair-')) rmSync(join(opts.workDir, f), { force: true }); // left by a crash

  const first = loadPair(files);
  const app = sslApp(first, opts.workDir);
  mount(app);
  let port = opts.port;
  let socket: us_listen_socket | false = false;
  // With port 0 another process may take the free port before uWS binds it: try a few.
  for (let attempt = 0; !socket && attempt < (opts.port === 0 ? 5 : 1); attempt++) {
    if (opts.port === 0) port = await freePort(opts.host);
    socket = listenOn(app, opts.host, port);
  }
  if (!socket) throw new Error(`cannot listen on ${opts.host}:${port}`);
  let current: us_listen_socket = socket;
  let cert = first.info;
  let closed = false;
  log('info', 'tls certificate loaded', { ...cert });

  const refuse = (err: unknown): ReloadOutcome => {
    const error = (err as Error)?.message ?? String(err);
    log('error', 'tls reload refused: still serving the previous certificate', { error, serial: cert.serial });
    return { ok: false, error };
  };
  return {
    scheme: 'https', port,
    get cert() { return cert; },
    reload(): ReloadOutcome {
      if (closed) return { ok: false, error: 'the node is shutting down' };
      let next: TemplatedApp;
      let pair: CheckedPair;
      try {
        pair = loadPair(files);
        next = sslApp(pair, opts.workDir);
        mount(next);
      } catch (err) {
        return refuse(err);
      }
      const s = listenOn(next, opts.host, port);
      if (!s) return refuse(new Error(`could not listen on ${opts.host}:${port} a second time (is another process bound to it without SO_REUSEPORT?)`));
      uWS.us_listen_socket_close(current);
      current = s;
      cert = pair.info;
      log('info', 'tls certificate loaded', { ...cert });
      return { ok: true, cert };
    },
    close() {
      closed = true;
      uWS.us_listen_socket_close(current);
    },
  };
}
