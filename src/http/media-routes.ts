import { createReadStream } from 'node:fs';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { ParleyError } from '../protocol/errors.js';
import type { Accounts } from '../accounts/accounts.js';
import type { Store } from '../store/store.js';
import { MEDIA_TYPES, type MediaStore } from '../media/media-store.js';
import { parseRange } from '../media/range.js';
import { bearer, handle, headers, sendError, sendJson, statusLine, track, type Reply } from './http-io.js';

/** POST /v1/media uploads (streamed, hashed, size- and type-checked); GET /v1/media/:id serves with Range. */
export function mountMedia(app: TemplatedApp, deps: { accounts: Accounts; store: Store; media: MediaStore; maxBytes: number }): void {
  app.post('/v1/media', (res, req) => {
    const h = headers(req, 'authorization', 'content-type', 'content-length');
    const r = track(res);
    const mime = h['content-type']!.split(';')[0]!.trim().toLowerCase();
    if (!MEDIA_TYPES.has(mime)) {
      return sendError(r, new ParleyError('unsupported_media_type', `content-type ${mime || '(none)'} is not accepted; use one of ${[...MEDIA_TYPES].join(', ')}`));
    }
    if (Number(h['content-length']) > deps.maxBytes) {
      return sendError(r, new ParleyError('too_large', `media is over the limit of ${deps.maxBytes} bytes`));
    }
    // The body is consumed as it arrives (uWS can't hold it for us across an await); auth is checked at the end.
    const upload = deps.media.begin(deps.maxBytes);
    let failed = false;
    res.onData((chunk, isLast) => {
      if (failed) return;
      try {
        upload.write(new Uint8Array(chunk));
      } catch (err) {
        failed = true;
        return sendError(r, err);
      }
      if (!isLast) return;
      deps.accounts.authenticate(bearer(h.authorization!))
        .then(async (session) => {
          const { id, size } = upload.finish();
          await deps.store.putMedia({ id, mime, size, owner: session.user, createdAt: Date.now() });
          sendJson(r, 201, { id, size, mime, url: `/v1/media/${id}` });
        })
        .catch((err) => { upload.discard(); sendError(r, err); });
    });
    res.onAborted(() => { failed = true; upload.discard(); });
  });

  app.get('/v1/media/:id', (res, req) => {
    const id = req.getParameter(0) ?? '';
    const h = headers(req, 'authorization', 'range');
    const token = bearer(h.authorization!) ?? new URLSearchParams(req.getQuery() ?? '').get('token') ?? undefined;
    handle(res, async (r) => {
      await deps.accounts.authenticate(token);
      const meta = await deps.store.getMedia(id);
      const size = meta ? deps.media.size(id) : undefined;
      if (!meta || size === undefined) throw new ParleyError('not_found', 'no such media');
      const range = h.range ? parseRange(h.range, size) : undefined;
      if (range === 'unsatisfiable') {
        if (!r.aborted) r.res.cork(() => r.res.writeStatus(statusLine(416)).writeHeader('content-range', `bytes */${size}`).end());
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
        if (range) r.res.writeHeader('content-range', `bytes ${start}-${end}/${size}`);
      });
      if (size === 0) { r.res.cork(() => r.res.end()); return; }
      streamFile(r, deps.media.path(id), start, end);
    });
  });
}

/** Streams a byte range with uWS backpressure: tryEnd until it reports full, then wait for onWritable. */
function streamFile(r: Reply, path: string, start: number, end: number): void {
  const res: HttpResponse = r.res;
  const total = end - start + 1;
  const stream = createReadStream(path, { start, end });
  stream.on('data', (data) => {
    const chunk = data as Buffer;
    if (r.aborted) return void stream.destroy();
    const ab = new Uint8Array(chunk);
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
  stream.on('error', () => { if (!r.aborted) res.close(); });
}
