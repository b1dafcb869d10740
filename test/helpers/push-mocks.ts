import { createECDH, createPublicKey, createDecipheriv, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createSecureServer, constants, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';

/**
 * Local stand-ins for the push services, on 127.0.0.1, each making the checks its service documents and
 * answering as it does: APNs over HTTP/2 with TLS (provider JWT verified with the key's public half),
 * FCM's OAuth2 token endpoint (the service account's assertion verified) and v1 send endpoint (the bearer
 * checked), a Web Push endpoint that decrypts the RFC 8291 payload with the subscription's private key and
 * verifies the VAPID JWT, and WNS's token and notify endpoints. A test scripts answers (`script`) for the
 * failure paths; every request, accepted or not, is recorded.
 */

/** An answer to give the next request instead of the normal one. */
export interface Scripted { status: number; reason?: string; retryAfter?: string; body?: unknown }

export interface Recorded {
  at: number;
  path: string;
  headers: Record<string, string>;
  status: number;
  /** The payload as the device would see it (APNs/FCM JSON, Web Push decrypted, WNS XML or raw). */
  payload?: unknown;
  token?: string;
}

abstract class Mock {
  readonly requests: Recorded[] = [];
  readonly script: Scripted[] = [];
  private waiters: (() => void)[] = [];
  abstract url: string;

  protected record(r: Recorded): void {
    this.requests.push(r);
    for (const w of this.waiters.splice(0)) w();
  }

  /** The accepted deliveries (status 2xx). */
  delivered(): Recorded[] { return this.requests.filter((r) => r.status >= 200 && r.status < 300); }

  /** Resolves once `pred` holds over the recorded requests; rejects after `ms`. */
  async waitFor<T>(pred: (rs: Recorded[]) => T | undefined | false, ms = 10_000, what = 'push requests'): Promise<T> {
    const until = Date.now() + ms;
    for (;;) {
      const v = pred(this.requests);
      if (v) return v;
      const left = until - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.requests.map((r) => [r.path, r.status]))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }
}

const lower = (h: IncomingHttpHeaders | IncomingMessage['headers']): Record<string, string> =>
  Object.fromEntries(Object.entries(h).filter(([k]) => !k.startsWith(':')).map(([k, v]) => [k, String(v)]));

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function listen(server: Server | Http2SecureServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

// ---- APNs ------------------------------------------------------------------------------------------------

export interface ApnsKeys { privatePem: string; publicKey: KeyObject; keyId: string; teamId: string }

/** A .p8-style ES256 key pair as Apple issues them (PKCS#8 PEM). */
export function apnsKeys(): ApnsKeys {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey, keyId: 'ABC123DEFG', teamId: 'DEF123GHIJ' };
}

export class ApnsMock extends Mock {
  url = '';
  /** Tokens that answer 410 Unregistered, and 400 BadDeviceToken. */
  readonly unregistered = new Set<string>();
  readonly badTokens = new Set<string>();
  /** Provider tokens issued (iat, seconds) before this answer 403 ExpiredProviderToken. */
  expireIssuedBefore = 0;
  private server!: Http2SecureServer;

  private constructor(private readonly keys: ApnsKeys, private readonly topic: string) { super(); }

  static async start(keys: ApnsKeys, topic: string, tls: { cert: string; key: string }): Promise<ApnsMock> {
    const m = new ApnsMock(keys, topic);
    m.server = createSecureServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), allowHTTP1: false });
    m.server.on('stream', (stream, headers) => {
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => { body += c; });
      stream.on('end', () => void m.answer(stream, headers, body));
    });
    m.url = `https://127.0.0.1:${await listen(m.server)}`;
    return m;
  }

  private async answer(stream: ServerHttp2Stream, h: IncomingHttpHeaders, body: string): Promise<void> {
    const path = String(h[constants.HTTP2_HEADER_PATH]);
    const token = /^\/3\/device\/([0-9a-f]+)$/.exec(path)?.[1];
    let payload: unknown;
    try { payload = JSON.parse(body); } catch { payload = undefined; }
    const [status, reason, retryAfter] = await this.check(h, token, body, payload);
    this.record({ at: Date.now(), path, headers: lower(h), status, payload, ...(token ? { token } : {}) });
    const out: Record<string, string | number> = { [constants.HTTP2_HEADER_STATUS]: status, 'apns-id': randomBytes(16).toString('hex') };
    if (retryAfter) out['retry-after'] = retryAfter;
    if (status === 200) { stream.respond(out, { endStream: true }); return; }
    stream.respond({ ...out, 'content-type': 'application/json' });
    stream.end(JSON.stringify(status === 410 ? { reason, timestamp: Date.now() } : { reason }));
  }

  private async check(h: IncomingHttpHeaders, token: string | undefined, body: string, payload: unknown): Promise<[number, string, string?]> {
    if (h[constants.HTTP2_HEADER_METHOD] !== 'POST') return [405, 'MethodNotAllowed'];
    if (!token) return [404, 'BadPath'];
    const auth = String(h.authorization ?? '');
    if (!auth.startsWith('bearer ')) return [403, 'MissingProviderToken'];
    const jwt = auth.slice(7);
    try {
      if (decodeProtectedHeader(jwt).kid !== this.keys.keyId) return [403, 'InvalidProviderToken'];
      const { payload: claims } = await jwtVerify(jwt, this.keys.publicKey, { algorithms: ['ES256'], issuer: this.keys.teamId });
      const iat = Number(claims.iat);
      // Apple refuses a provider token older than an hour.
      if (!Number.isFinite(iat) || iat < Date.now() / 1000 - 3600 || iat < this.expireIssuedBefore) return [403, 'ExpiredProviderToken'];
    } catch {
      return [403, 'InvalidProviderToken'];
    }
    const scripted = this.script.shift();
    if (scripted) return [scripted.status, scripted.reason ?? '', scripted.retryAfter];
    if (h['apns-topic'] !== this.topic) return [400, 'TopicDisallowed'];
    const type = h['apns-push-type'];
    if (type !== 'alert' && type !== 'background') return [400, 'InvalidPushType'];
    const priority = h['apns-priority'];
    if (priority !== '10' && priority !== '5') return [400, 'BadPriority'];
    if (type === 'background' && priority !== '5') return [400, 'BadPriority'];
    if (!/^\d+$/.test(String(h['apns-expiration'] ?? ''))) return [400, 'BadExpirationDate'];
    const collapse = h['apns-collapse-id'];
    if (collapse !== undefined && Buffer.byteLength(String(collapse)) > 64) return [400, 'BadCollapseId'];
    if (Buffer.byteLength(body) > 4096) return [413, 'PayloadTooLarge'];
    const aps = (payload as { aps?: Record<string, unknown> } | undefined)?.aps;
    if (!aps) return [400, 'PayloadEmpty'];
    if (type === 'background' && aps['content-available'] !== 1) return [400, 'BadPayload'];
    if (type === 'alert' && !aps.alert) return [400, 'BadPayload'];
    if (this.badTokens.has(token)) return [400, 'BadDeviceToken'];
    if (this.unregistered.has(token)) return [410, 'Unregistered'];
    return [200, ''];
  }

  close(): Promise<void> { return new Promise((r) => this.server.close(() => r())); }
}

// ---- FCM -------------------------------------------------------------------------------------------------

export interface FcmAccount { file: Record<string, string>; publicKey: KeyObject }

/** A service account key file as Google issues them (RS256 key, client_email, project_id, token_uri). */
export function fcmAccount(tokenUri: string): FcmAccount {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    file: {
      type: 'service_account', project_id: 'parley-test', private_key_id: 'k1',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      client_email: 'push@parley-test.iam.gserviceaccount.com', token_uri: tokenUri,
    },
    publicKey,
  };
}

abstract class HttpMock extends Mock {
  url = '';
  protected server!: Server;
  protected async serve(): Promise<void> {
    this.server = createServer((req, res) => void readBody(req).then((b) => this.handle(req, res, b)).catch(() => { res.statusCode = 500; res.end(); }));
    this.url = `http://127.0.0.1:${await listen(this.server)}`;
  }
  protected abstract handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void>;
  protected send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  }
  close(): Promise<void> { return new Promise((r) => { this.server.closeAllConnections(); this.server.close(() => r()); }); }
}

export class FcmMock extends HttpMock {
  readonly unregistered = new Set<string>();
  /** Access tokens this endpoint issued and still honours. */
  readonly issued = new Set<string>();
  tokenRequests = 0;
  expiresIn = 3600;
  /** Each send is answered this much later (a slow service). */
  delayMs = 0;
  private account!: FcmAccount;

  static async start(): Promise<FcmMock> {
    const m = new FcmMock();
    await m.serve();
    m.account = fcmAccount(`${m.url}/token`);
    return m;
  }

  get serviceAccount(): Record<string, string> { return this.account.file; }

  /** Every access token stops working (as when one expires early or is revoked). */
  revokeTokens(): void { this.issued.clear(); }

  protected async handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const path = req.url ?? '';
    if (req.method === 'POST' && path === '/token') return this.token(res, body);
    const m = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(path);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    let payload: unknown;
    try { payload = JSON.parse(body.toString()); } catch { payload = undefined; }
    const message = (payload as { message?: Record<string, unknown> } | undefined)?.message;
    const token = typeof message?.token === 'string' ? message.token : undefined;
    const answer = (status: number, errorCode?: string, status2?: string, headers: Record<string, string> = {}) => {
      this.record({ at: Date.now(), path, headers: lower(req.headers), status, payload, ...(token ? { token } : {}) });
      if (status === 200) return this.send(res, 200, { name: `projects/${m?.[1]}/messages/${randomBytes(8).toString('hex')}` });
      this.send(res, status, {
        error: {
          code: status, message: errorCode ?? status2, status: status2,
          ...(errorCode ? { details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] } : {}),
        },
      }, headers);
    };
    if (req.method !== 'POST' || !m) return answer(404, undefined, 'NOT_FOUND');
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !this.issued.has(bearer)) return answer(401, undefined, 'UNAUTHENTICATED', { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' });
    if (m[1] !== this.account.file.project_id) return answer(403, 'SENDER_ID_MISMATCH', 'PERMISSION_DENIED');
    const scripted = this.script.shift();
    if (scripted) {
      const status = scripted.status;
      return answer(status, scripted.reason, status === 429 ? 'RESOURCE_EXHAUSTED' : 'UNAVAILABLE', scripted.retryAfter ? { 'retry-after': scripted.retryAfter } : {});
    }
    const android = message?.android as Record<string, unknown> | undefined;
    if (!token || !android) return answer(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT');
    if (android.priority !== 'high' && android.priority !== 'normal') return answer(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT');
    if (android.ttl !== undefined && !/^\d+(\.\d{1,9})?s$/.test(String(android.ttl))) return answer(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT');
    const data = message?.data as Record<string, unknown> | undefined;
    if (data && !Object.values(data).every((v) => typeof v === 'string')) return answer(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT'); // data values are strings
    if (this.unregistered.has(token)) return answer(404, 'UNREGISTERED', 'NOT_FOUND');
    return answer(200);
  }

  private async token(res: ServerResponse, body: Buffer): Promise<void> {
    this.tokenRequests++;
    const form = new URLSearchParams(body.toString());
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return this.send(res, 400, { error: 'unsupported_grant_type' });
    try {
      const { payload } = await jwtVerify(form.get('assertion') ?? '', this.account.publicKey, {
        algorithms: ['RS256'], issuer: this.account.file.client_email, audience: `${this.url}/token`,
      });
      if (!String(payload.scope ?? '').split(' ').includes('https://www.googleapis.com/auth/firebase.messaging')) return this.send(res, 400, { error: 'invalid_scope' });
      if (!payload.exp || !payload.iat || payload.exp - payload.iat > 3600) return this.send(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT: exp too far' });
    } catch (err) {
      return this.send(res, 400, { error: 'invalid_grant', error_description: String(err) });
    }
    const access = `ya29.${randomBytes(24).toString('base64url')}`;
    this.issued.add(access);
    this.send(res, 200, { access_token: access, expires_in: this.expiresIn, token_type: 'Bearer' });
  }
}

// ---- Web Push --------------------------------------------------------------------------------------------

export interface Subscription { endpoint: string; keys: { p256dh: string; auth: string }; ecdh: ReturnType<typeof createECDH>; auth: Buffer }

export class WebPushMock extends HttpMock {
  readonly gone = new Set<string>();
  /** The VAPID public key (base64url) the node signs with. */
  constructor(private readonly vapidPublicKey: string) { super(); }

  static async start(vapidPublicKey: string): Promise<WebPushMock> {
    const m = new WebPushMock(vapidPublicKey);
    await m.serve();
    return m;
  }

  /** A browser's subscription: a fresh P-256 key pair and auth secret, an endpoint here. */
  subscribe(): Subscription {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    const endpoint = `${this.url}/push/${randomBytes(12).toString('base64url')}`;
    return { endpoint, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') }, ecdh, auth };
  }

  private readonly subs = new Map<string, Subscription>();
  add(s: Subscription): Subscription { this.subs.set(new URL(s.endpoint).pathname, s); return s; }

  protected async handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const path = req.url ?? '';
    const answer = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
      this.record({ at: Date.now(), path, headers: lower(req.headers), status, payload, token: path });
      this.send(res, status, status === 201 ? undefined : { reason: status }, status === 201 ? { location: `${this.url}/message/${randomBytes(6).toString('hex')}`, ...headers } : headers);
    };
    const sub = this.subs.get(path);
    if (req.method !== 'POST' || !sub) return answer(404);
    // RFC 8292: Authorization: vapid t=<JWT>, k=<the application server's public key>.
    const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(req.headers.authorization ?? '');
    if (!m || m[2] !== this.vapidPublicKey) return answer(401);
    try {
      const raw = Buffer.from(m[2], 'base64url');
      const key = await importJWK({ kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33, 65).toString('base64url') }, 'ES256');
      const { payload } = await jwtVerify(m[1]!, key, { algorithms: ['ES256'], audience: new URL(this.url).origin });
      if (!payload.exp || payload.exp > Date.now() / 1000 + 86_400) return answer(403); // at most 24 h ahead
      if (!/^(mailto:|https:)/.test(String(payload.sub ?? ''))) return answer(403);
    } catch {
      return answer(403);
    }
    if (!/^\d+$/.test(String(req.headers.ttl ?? ''))) return answer(400);
    if (req.headers['content-encoding'] !== 'aes128gcm') return answer(415);
    const topic = req.headers.topic;
    if (topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(String(topic))) return answer(400);
    if (body.length > 4096) return answer(413);
    let plain: Buffer;
    try { plain = decryptAes128gcm(body, sub); } catch { return answer(400); }
    const scripted = this.script.shift();
    if (scripted) return answer(scripted.status, undefined, scripted.retryAfter ? { 'retry-after': scripted.retryAfter } : {});
    if (this.gone.has(path)) return answer(410);
    answer(201, JSON.parse(plain.toString('utf8')));
  }
}

/** RFC 8291 (with RFC 8188's aes128gcm record format): what the user agent does with a push message. */
export function decryptAes128gcm(body: Buffer, sub: Subscription): Buffer {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  const asPublic = body.subarray(21, 21 + idlen);
  const records = body.subarray(21 + idlen);
  if (idlen !== 65 || rs < 18 || records.length > rs) throw new Error('bad header');
  const uaPublic = sub.ecdh.getPublicKey();
  const ecdhSecret = sub.ecdh.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, sub.auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(records.subarray(records.length - 16));
  const padded = Buffer.concat([decipher.update(records.subarray(0, records.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('no last-record delimiter');
  return padded.subarray(0, end);
}

// ---- WNS -------------------------------------------------------------------------------------------------

export class WnsMock extends HttpMock {
  readonly expired = new Set<string>();
  readonly issued = new Set<string>();
  tokenRequests = 0;
  static readonly clientId = 'ms-app://s-1-15-2-1234';
  static readonly clientSecret = 'wns-test-secret';

  static async start(): Promise<WnsMock> {
    const m = new WnsMock();
    await m.serve();
    return m;
  }

  channel(): string { return `${this.url}/channel/${randomBytes(12).toString('base64url')}`; }
  revokeTokens(): void { this.issued.clear(); }

  protected async handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const path = req.url ?? '';
    if (req.method === 'POST' && path === '/accesstoken.srf') {
      this.tokenRequests++;
      const f = new URLSearchParams(body.toString());
      if (f.get('grant_type') !== 'client_credentials' || f.get('scope') !== 'notify.windows.com') return this.send(res, 400, { error: 'invalid_request' });
      if (f.get('client_id') !== WnsMock.clientId || f.get('client_secret') !== WnsMock.clientSecret) return this.send(res, 400, { error: 'invalid_client' });
      const access = randomBytes(24).toString('base64url');
      this.issued.add(access);
      return this.send(res, 200, { token_type: 'bearer', access_token: access, expires_in: 86_400 });
    }
    const h = req.headers;
    const type = String(h['x-wns-type'] ?? '');
    const payload = type === 'wns/raw' ? safeJson(body) : body.toString('utf8');
    const answer = (status: number, headers: Record<string, string> = {}) => {
      this.record({ at: Date.now(), path, headers: lower(h), status, payload, token: path });
      res.writeHead(status, { 'x-wns-msg-id': randomBytes(8).toString('hex'), 'x-wns-debug-trace': 'mock', ...headers });
      res.end();
    };
    if (req.method !== 'POST' || !path.startsWith('/channel/')) return answer(404);
    const bearer = /^Bearer (.+)$/.exec(h.authorization ?? '')?.[1];
    if (!bearer || !this.issued.has(bearer)) return answer(401, { 'www-authenticate': 'Bearer error="invalid_token",error_description="Token has expired"' });
    if (!['wns/toast', 'wns/raw', 'wns/badge', 'wns/tile'].includes(type)) return answer(400);
    const ct = String(h['content-type'] ?? '');
    if (type === 'wns/raw' ? ct !== 'application/octet-stream' : ct !== 'text/xml') return answer(400);
    if (type === 'wns/toast' && !/^<toast[\s>][\s\S]*<\/toast>$/.test(String(payload))) return answer(400);
    const tag = h['x-wns-tag'];
    if (tag !== undefined && String(tag).length > 16) return answer(400);
    const ttl = h['x-wns-ttl'];
    if (ttl !== undefined && !/^\d+$/.test(String(ttl))) return answer(400);
    if (body.length > 5000) return answer(413);
    const scripted = this.script.shift();
    if (scripted) return answer(scripted.status, scripted.retryAfter ? { 'retry-after': scripted.retryAfter } : {});
    if (this.expired.has(path)) return answer(410);
    answer(200, { 'x-wns-status': 'received', 'x-wns-notificationstatus': 'received', 'x-wns-devicestatus': 'connected' });
  }
}

function safeJson(b: Buffer): unknown {
  try { return JSON.parse(b.toString('utf8')); } catch { return b.toString('base64'); }
}

/** An EC public key object from a raw uncompressed point (as VAPID and Web Push carry them). */
export function rawP256(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33, 65).toString('base64url') }, format: 'jwk' });
}
