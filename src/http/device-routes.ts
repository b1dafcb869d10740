import type { TemplatedApp } from 'uWebSockets.js';
import type { Accounts } from '../accounts/accounts.js';
import type { DeviceInfo, SignOutResult } from '../protocol/frames.js';
import { signOutTarget } from '../protocol/validate.js';
import type { Sharding } from '../routing/sharding.js';
import { bearer, handle, headers, readJson, sendJson } from './http-io.js';

/**
 * A user's devices over HTTP (Bearer token), answered by the user entity that owns the list:
 *   GET  /v1/devices                                   → {devices: DeviceInfo[]}, oldest first, yours `current`
 *   POST /v1/devices/signout  {} | {scope} | {device}  → {signedOut: [ids]}; `scope` is this (default), others or all
 * A signed-out device's sockets close with 4401 and its token is refused from then on (`signed_out`).
 */
export function mountDevices(app: TemplatedApp, deps: { accounts: Accounts; sharding: Sharding }): void {
  const { accounts, sharding } = deps;

  app.get('/v1/devices', (res, req) => {
    const h = headers(req, 'authorization');
    handle(res, async (r) => {
      const s = await accounts.authenticate(bearer(h.authorization!));
      const { devices } = await sharding.ask<'user', { devices: DeviceInfo[] }>('user', s.user, (reply) => ({ t: 'devices.list', reply, device: s.device }));
      sendJson(r, 200, { devices });
    });
  });

  app.post('/v1/devices/signout', (res, req) => {
    const h = headers(req, 'authorization');
    handle(res, async (r) => {
      const body = await readJson(r);
      const s = await accounts.authenticate(bearer(h.authorization!));
      const which = signOutTarget(body);
      sendJson(r, 200, await sharding.ask<'user', SignOutResult>('user', s.user, (reply) => ({ t: 'devices.remove', reply, by: s.device, which })));
    });
  });
}
