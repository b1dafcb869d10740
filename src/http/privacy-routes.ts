import type { TemplatedApp } from 'uWebSockets.js';
import { ParleyError } from '../protocol/errors.js';
import type { Accounts } from '../accounts/accounts.js';
import type { Store } from '../store/store.js';
import type { Audit } from '../gdpr/audit.js';
import type { Erasures } from '../gdpr/erasure.js';
import { exportArchive, type ExportJobs } from '../gdpr/export.js';
import { log } from '../log.js';
import { bearer, handle, headers, readJson, remoteAddress, sendJson, statusLine, type Reply } from './http-io.js';

/** An erasure taking longer than this is answered 202 and finishes in the background (and after a restart). */
const ERASE_ANSWER_MS = 10_000;

/**
 * A user's data (issue #15 §5–6; docs/protocol.md, "Export" and "Erasure"), Bearer token:
 *   POST   /v1/accounts/me/export        → {job, expiresAt}: the archive's job id (any node serves it)
 *   GET    /v1/accounts/me/export/:job   → the archive, JSON, streamed
 *   DELETE /v1/accounts/me   {code}      → {erased: true} (200), or {erasing: true} (202) while it finishes;
 *                                          `code`: a fresh one-time code for the account's phone (POST /v1/accounts/code)
 */
export function mountPrivacy(app: TemplatedApp, deps: { accounts: Accounts; store: Store; jobs: ExportJobs; erasures: Erasures; audit: Audit }): void {
  const { accounts, store, jobs, erasures, audit } = deps;

  app.post('/v1/accounts/me/export', (res, req) => {
    const h = headers(req, 'authorization');
    handle(res, async (r) => {
      const s = await accounts.authenticate(bearer(h.authorization!));
      const job = jobs.issue(s.user);
      audit.write({ action: 'export.requested', actor: s.user, subject: s.user });
      sendJson(r, 200, job);
    });
  });

  app.get('/v1/accounts/me/export/:job', (res, req) => {
    const h = headers(req, 'authorization');
    const job = req.getParameter(0) ?? '';
    handle(res, async (r) => {
      const s = await accounts.authenticate(bearer(h.authorization!));
      if (jobs.check(job) !== s.user) throw new ParleyError('not_found', 'no such export, or it expired; ask for a new one');
      audit.write({ action: 'export.fetched', actor: s.user, subject: s.user });
      await stream(r, exportArchive(store, s.user));
    });
  });

  app.del('/v1/accounts/me', (res, req) => {
    const h = headers(req, 'authorization', 'x-api-key');
    const ip = remoteAddress(res);
    handle(res, async (r) => {
      const body = await readJson(r);
      const s = await accounts.authenticate(bearer(h.authorization!));
      try {
        await accounts.confirmCode(s.user, body.code, { ip, apiKey: h['x-api-key'] || 'bearer' });
      } catch (err) {
        audit.write({ action: 'erasure.refused', actor: s.user, subject: s.user, detail: { error: err instanceof ParleyError ? err.code : 'internal' } });
        throw err;
      }
      audit.write({ action: 'erasure.requested', actor: s.user, subject: s.user });
      const done = erasures.start(s.user);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), ERASE_ANSWER_MS); });
      const outcome = await Promise.race([done, late]).finally(() => clearTimeout(timer));
      if (outcome === 'late') {
        done.catch(() => undefined); // it finishes here or, after a restart, from its marker
        return sendJson(r, 202, { erasing: true });
      }
      sendJson(r, 200, { erased: true });
    });
  });
}

/** Writes chunks as they come, waiting while the socket is backed up; stops if the client goes. */
async function stream(r: Reply, chunks: AsyncIterable<string>): Promise<void> {
  let started = false;
  let wake: (() => void) | undefined;
  r.onAbort = () => wake?.();
  try {
    await writeAll(r, chunks, () => started, () => { started = true; }, (w) => { wake = w; });
  } catch (err) {
    // Half an archive is already out: the connection is cut, so the client sees it incomplete, not as whole.
    if (!started) throw err;
    if (!r.aborted) r.res.close();
    log('warn', 'export cut short', { error: String(err) });
    return;
  }
  if (r.aborted) return;
  r.res.cork(() => {
    if (!started) r.res.writeStatus(statusLine(200)).writeHeader('content-type', 'application/json');
    r.res.end();
  });
}

async function writeAll(r: Reply, chunks: AsyncIterable<string>, started: () => boolean, start: () => void, waiting: (wake: (() => void) | undefined) => void): Promise<void> {
  for await (const chunk of chunks) {
    if (r.aborted) return;
    let ok = true;
    r.res.cork(() => {
      if (!started()) {
        start();
        r.res.writeStatus(statusLine(200)).writeHeader('content-type', 'application/json');
      }
      ok = r.res.write(chunk);
    });
    if (!ok) await new Promise<void>((resolve) => { waiting(resolve); r.res.onWritable(() => { resolve(); return true; }); });
    waiting(undefined);
  }
}
