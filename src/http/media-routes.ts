import type { Readable } from 'node:stream';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { ParleyError } from '../protocol/errors.js';
import type { UserId } from '../protocol/ids.js';
import type { Accounts } from '../accounts/accounts.js';
import type { TokenSigner } from '../accounts/tokens.js';
import type { Store } from '../store/store.js';
import { MEDIA_TYPES } from '../media/media-store.js';
import type { BlobUpload, MediaBlobs } from '../media/media-blobs.js';
import { userHolder, type MediaGate } from '../media/media-access.js';
import type { MediaUrlSigner } from '../media/media-urls.js';
import type { Admitted, UploadGate } from '../media/upload-gate.js';
import { parseRange } from '../media/range.js';
import { bearer, handle, headers, sendError, sendJson, statusLine, track, type Reply } from './http-io.js';
import type { Analytics } from '../analytics/analytics.js';

export interface MediaRouteDeps {
  accounts: Accounts;
  /** Checks a session token's signature and expiry synchronously, before anything of a body is read. */
  tokens: TokenSigner;
  store: Store;
  /** The bytes: local disk, or chunks in the shared database (a node on the Scylla store). */
  media: MediaBlobs;
  access: MediaGate;
  urls: MediaUrlSigner;
  gate: UploadGate;
  maxBytes: number;
  /** Media bytes uploaded, counted once each upload is stored. */
  analytics?: Pick<Analytics, 'mediaUploaded'>;
}

const NOT_FOUND = 'no such media';
const TOKEN_IN_URL = 'a session token is not accepted in a URL: send it as Authorization: Bearer, or use a signed URL from GET /v1/media/<id>/url';
/** How much of a chunked upload past the limit is read (and dropped) so its sender sees the 413. */
const DRAIN_MAX = 1024 * 1024;
const EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg', 'image/png': 'png', 'image/gif': 'gif', 'image/webp': 'webp', 'image/heic': 'heic',
  'video/mp4': 'mp4', 'video/webm': 'webm', 'video/quicktime': 'mov', 'video/3gpp': '3gp',
};

/**
 * Served bytes are never a page: no sniffing, no scripts, no plugins, no same-origin powers (sandbox) even
 * if an uploader labels HTML as an image. The file name is made from the id, never from anything a client
 * sent; pictures and videos show inline, anything else (encrypted blobs) downloads.
 */
export function mediaHeaders(id: string, mime: string): Record<string, string> {
  const ext = EXTENSIONS[mime];
  return {
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'none'; sandbox",
    'content-disposition': ext ? `inline; filename="${id}.${ext}"` : `attachment; filename="${id}.bin"`,
  };
}

/**
 * POST /v1/media uploads (authenticated from the headers, admitted, streamed, hashed, size-, type- and
 * rate-checked); GET /v1/media/:id serves with Range to whoever may see it; GET /v1/media/:id/url signs a
 * short-lived URL for tags that can't send headers.
 */
export function mountMedia(app: TemplatedApp, deps: MediaRouteDeps): void {
  app.post('/v1/media', (res, req) => upload(res, headers(req, 'authorization', 'content-type', 'content-length', 'transfer-encoding'), deps));

  app.get('/v1/media/:id/url', (res, req) => {
    const id = req.getParameter(0) ?? '';
    const auth = req.getHeader('authorization');
    const query = new URLSearchParams(req.getQuery() ?? '');
    handle(res, async (r) => {
      if (query.has('token')) throw new ParleyError('unauthorized', TOKEN_IN_URL);
      const { user } = await deps.accounts.authenticate(bearer(auth));
      if (!(await deps.access.mayFetch(user, id))) throw new ParleyError('not_found', NOT_FOUND);
      sendJson(r, 200, deps.urls.sign(id, user));
    });
  });

  app.get('/v1/media/:id', (res, req) => {
    const id = req.getParameter(0) ?? '';
    const h = headers(req, 'authorization', 'range');
    const query = new URLSearchParams(req.getQuery() ?? '');
    handle(res, async (r) => {
      const user = await caller(id, h.authorization!, query, deps);
      // A stranger is told "no such media", as for an id nobody uploaded: the answer confirms nothing.
      if (!(await deps.access.mayFetch(user, id))) throw new ParleyError('not_found', NOT_FOUND);
      const meta = await deps.store.getMedia(id);
      const blob = meta ? await deps.media.open(id) : undefined;
      if (!meta || !blob) throw new ParleyError('not_found', NOT_FOUND);
      const { size } = blob;
      const safe = mediaHeaders(id, meta.mime);
      const range = h.range ? parseRange(h.range, size) : undefined;
      if (range === 'unsatisfiable') {
        if (!r.aborted) {
          r.res.cork(() => {
            r.res.writeStatus(statusLine(416)).writeHeader('content-range', `bytes */${size}`);
            for (const k in safe) r.res.writeHeader(k, safe[k]!);
            r.res.end();
          });
        }
        return;
      }
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      if (r.aborted) return;
      r.res.cork(() => {
        r.res.writeStatus(statusLine(range ? 206 : 200))
          .writeHeader('content-type', meta.mime)
          .writeHeader('accept-ranges', 'bytes')
          .writeHeader('cache-control', 'private, max-age=31536000, immutable');
        for (const k in safe) r.res.writeHeader(k, safe[k]!);
        if (range) r.res.writeHeader('content-range', `bytes ${start}-${end}/${size}`);
      });
      if (size === 0) { r.res.cork(() => r.res.end()); return; }
      streamBody(r, blob.stream(start, end), end - start + 1);
    });
  });
}

/** Who asks: a signed media URL's user, or the session's behind `Authorization: Bearer`. Never `?token=`. */
async function caller(id: string, authorization: string, query: URLSearchParams, deps: MediaRouteDeps): Promise<UserId> {
  if (query.has('token')) {
    throw new ParleyError('unauthorized', TOKEN_IN_URL);
  }
  if (query.has('sig')) {
    const user = deps.urls.verify(id, query);
    if (!user) throw new ParleyError('unauthorized', 'this media URL is invalid or expired; get a fresh one from GET /v1/media/<id>/url');
    return user;
  }
  return (await deps.accounts.authenticate(bearer(authorization))).user;
}

/**
 * One upload. Everything up to `res.pause()` runs before uWS reads any more of the socket: a request without
 * a valid token, of another type, too large or over the node's or the user's upload limits is answered at
 * once and its connection closed, with no temp file made and no body byte read. An admitted one is paused
 * while the device is looked up (the chunks that came with the headers wait in memory), then streamed to the
 * blob store, the socket paused whenever the store's writes are behind (a database, not a local disk); one
 * that falls behind the minimum rate is cut off (408) and what it wrote removed.
 */
function upload(res: HttpResponse, h: Record<string, string>, deps: MediaRouteDeps): void {
  const startedAt = Date.now();
  let slot: Admitted | undefined;
  let file: BlobUpload | undefined;
  /** Body chunks that arrived before the temp file was opened (at most what uWS read with the headers). */
  let early: Uint8Array[] | undefined = [];
  let lastSeen = false;
  let over = false;
  let tooLarge: ParleyError | undefined;
  let drained = 0;
  let paused = false;
  const end = () => {
    over = true;
    slot?.release();
    file?.discard();
    early = undefined;
  };
  const r = track(res, end);
  const fail = (err: unknown) => {
    if (over) return;
    end();
    sendError(r, err, true);
  };

  const token = bearer(h.authorization!);
  const claims = token ? deps.tokens.verify(token) : undefined;
  if (!claims) return fail(new ParleyError('unauthorized', 'missing, invalid or expired token'));
  const mime = h['content-type']!.split(';')[0]!.trim().toLowerCase();
  if (!MEDIA_TYPES.has(mime)) {
    return fail(new ParleyError('unsupported_media_type', `content-type ${mime || '(none)'} is not accepted; use one of ${[...MEDIA_TYPES].join(', ')}`));
  }
  const length = declaredLength(h['content-length']!, h['transfer-encoding']!);
  if (length === 'invalid') return fail(new ParleyError('invalid', 'content-length must be a number of bytes'));
  if (length !== undefined && length > deps.maxBytes) return fail(new ParleyError('too_large', `media is over the limit of ${deps.maxBytes} bytes`));
  if (length === 0) return fail(new ParleyError('invalid', 'media is empty'));
  try {
    slot = deps.gate.admit(claims.u, length ?? deps.maxBytes, startedAt, () => fail(new ParleyError('request_timeout',
      `the upload fell below ${deps.gate.limits.minBytesPerSec} bytes/s; send it again on a faster connection`)));
  } catch (err) {
    return fail(err);
  }

  const finish = () => {
    const f = file!;
    // Every byte is in: the rate no longer applies (received = ∞), and the slot is given back once the answer
    // is out. From here an abort changes nothing: the blob is finishing (discard is then a no-op).
    over = true;
    slot!.received = Number.POSITIVE_INFINITY;
    const user = claims.u;
    f.finish().then(
      ({ id, size }) => Promise.all([
        deps.store.putMedia({ id, mime, size, owner: user, createdAt: Date.now() }),
        deps.store.putMediaRefs(id, [{ holder: userHolder(user), seq: 0 }]),
      ]).then(
        () => {
          deps.analytics?.mediaUploaded(user, size);
          sendJson(r, 201, { id, size, mime, ...signed(deps.urls.sign(id, user)) });
        },
        (err) => sendError(r, err),
      ),
      (err) => sendError(r, err, true),
    ).finally(() => slot!.release());
  };

  /** One chunk into the blob store; the last one finishes the upload. */
  const take = (bytes: Uint8Array, isLast: boolean) => {
    if (tooLarge) {
      drained += bytes.byteLength;
      if (drained > DRAIN_MAX) return fail(tooLarge);
    } else {
      try {
        if (!file!.write(bytes) && !isLast && !paused) {
          // The store is behind: read no more until its writes catch up (bounded memory per upload).
          paused = true;
          res.pause();
          file!.drained().then(
            () => { paused = false; if (!over) res.resume(); },
            // Past the limit meanwhile (the upload discarded itself): go on reading, to drain up to DRAIN_MAX.
            (err: unknown) => { paused = false; if (!tooLarge) fail(err); else if (!over) res.resume(); },
          );
        }
      } catch (err) {
        if (!(err instanceof ParleyError && err.code === 'too_large')) return fail(err);
        // A chunked upload past the limit: its temp file is gone at once (write discarded it); up to
        // DRAIN_MAX more is read and dropped, so a client still sending sees the 413, not a reset connection.
        tooLarge = err;
      }
    }
    if (!isLast) return;
    if (!tooLarge) return finish();
    end();
    sendError(r, tooLarge);
  };

  res.onData((chunk, isLast) => {
    if (over) return;
    slot!.received += chunk.byteLength;
    if (file) return take(new Uint8Array(chunk), isLast);
    early!.push(new Uint8Array(chunk.slice(0))); // uWS reuses the chunk's memory
    lastSeen = isLast;
  });
  res.pause();

  // The signature was good; the device must still exist. Nothing more is read from the socket meanwhile.
  deps.accounts.authenticate(token).then(
    () => {
      if (over) return; // aborted, or too slow, while we looked
      try {
        file = deps.media.begin(deps.maxBytes, mime);
      } catch (err) {
        return fail(err);
      }
      // Resumed even when the whole body is in: a paused socket would never read the connection's next request.
      res.resume();
      const chunks = early!;
      early = undefined;
      if (chunks.length === 0 && lastSeen) return take(new Uint8Array(0), true);
      chunks.forEach((c, i) => { if (!over) take(c, lastSeen && i === chunks.length - 1); });
    },
    fail,
  );
}

/** The body's length from the headers: a number, undefined for chunked (bounded as it arrives), or no body at all (0). */
function declaredLength(contentLength: string, transferEncoding: string): number | undefined | 'invalid' {
  if (contentLength !== '') return /^\d{1,15}$/.test(contentLength.trim()) ? Number(contentLength.trim()) : 'invalid';
  return /chunked/i.test(transferEncoding) ? undefined : 0;
}

const signed = (u: { url: string; expiresAt: number }) => ({ url: u.url, urlExpiresAt: u.expiresAt });

/** Streams a body of `total` bytes with uWS backpressure: tryEnd until it reports full, then wait for onWritable. */
function streamBody(r: Reply, stream: Readable, total: number): void {
  const res: HttpResponse = r.res;
  r.onAbort = () => stream.destroy(); // a reader gone while we wait for it to drain must not keep the blob open
  stream.on('data', (data) => {
    const chunk = data as Uint8Array;
    if (r.aborted) return void stream.destroy();
    const ab = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const offset = res.getWriteOffset();
    let ok = false, done = false;
    res.cork(() => { [ok, done] = res.tryEnd(ab, total); });
    if (done) return void stream.destroy();
    if (ok) return;
    stream.pause();
    res.onWritable((now) => {
      if (r.aborted) return false;
      const [ok2, done2] = res.tryEnd(ab.subarray(now - offset), total);
      if (done2) stream.destroy();
      else if (ok2) stream.resume();
      return ok2;
    });
  });
  // Headers are out: a blob that can't be read to the end (a store outage, deleted meanwhile) cuts the connection.
  stream.on('error', () => { if (!r.aborted) res.close(); });
}
