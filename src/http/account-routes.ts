import type { TemplatedApp } from 'uWebSockets.js';
import { ParleyError } from '../protocol/errors.js';
import type { Accounts } from '../accounts/accounts.js';
import { normalizePhone } from '../accounts/accounts.js';
import type { DevOutboxSms } from '../accounts/sms-gateway.js';
import type { Store } from '../store/store.js';
import { bearer, handle, headers, readJson, remoteAddress, sendJson } from './http-io.js';
import { OperatorAccess } from './operator-access.js';

/**
 * Accounts over HTTP, the design's registerUser/loginUser/validateAcc:
 *   POST /v1/accounts/code    {phone}                      (x-api-key)  → a one-time code goes out by SMS
 *   POST /v1/accounts/verify  {phone, code, device?}       (x-api-key)  → {user, device, token, created}
 *   GET  /v1/accounts/me                                   (Bearer)     → {user, device, phone, name}
 *   POST /v1/accounts/token                                (Bearer)     → {token, expiresAt}: a fresh token, same device
 *   GET  /v1/dev/otp?phone=…  the dev SMS outbox (only with PARLEY_SMS=dev; admin key unless a development node on loopback)
 */
export function mountAccounts(app: TemplatedApp, deps: { accounts: Accounts; store: Store; devSms?: DevOutboxSms; access: OperatorAccess }): void {
  const { accounts } = deps;

  // The peer's address is read before the first await (uWS frees the request): codes and guesses are limited by it.
  app.post('/v1/accounts/code', (res, req) => {
    const h = headers(req, 'x-api-key');
    const ip = remoteAddress(res);
    handle(res, async (r) => {
      const body = await readJson(r);
      accounts.checkApiKey(h['x-api-key']);
      sendJson(r, 200, { sent: true, ...(await accounts.requestCode(body.phone, { ip, apiKey: h['x-api-key'] })) });
    });
  });

  app.post('/v1/accounts/verify', (res, req) => {
    const h = headers(req, 'x-api-key');
    const ip = remoteAddress(res);
    handle(res, async (r) => {
      const body = await readJson(r);
      accounts.checkApiKey(h['x-api-key']);
      const device = (typeof body.device === 'object' && body.device) || {};
      sendJson(r, 200, await accounts.verify(body.phone, body.code, device as Record<string, unknown>, { ip, apiKey: h['x-api-key'] }));
    });
  });

  app.get('/v1/accounts/me', (res, req) => {
    const h = headers(req, 'authorization');
    handle(res, async (r) => {
      const s = await accounts.authenticate(bearer(h.authorization!));
      const u = await deps.store.getUser(s.user);
      if (!u) throw new ParleyError('unauthorized', 'no such user');
      sendJson(r, 200, { valid: true, user: u.id, device: s.device, phone: u.phone, name: u.name });
    });
  });

  app.post('/v1/accounts/token', (res, req) => {
    const h = headers(req, 'authorization');
    handle(res, async (r) => {
      const s = await accounts.authenticate(bearer(h.authorization!));
      sendJson(r, 200, accounts.issue(s.user, s.device));
    });
  });

  if (deps.devSms) {
    const sms = deps.devSms;
    app.get('/v1/dev/otp', (res, req) => {
      const phone = new URLSearchParams(req.getQuery() ?? '').get('phone');
      const key = OperatorAccess.keyOf(req);
      handle(res, async (r) => {
        deps.access.local(key);
        const last = await sms.last(normalizePhone(phone));
        if (!last) throw new ParleyError('not_found', 'no code was sent to this number');
        sendJson(r, 200, { code: /(\d{6})/.exec(last.text)?.[1], at: last.at });
      });
    });
  }
}
