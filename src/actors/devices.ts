import { ParleyError } from '../protocol/errors.js';
import type { DeviceId } from '../protocol/ids.js';
import type { DeviceInfo, SignOutTarget } from '../protocol/frames.js';

/**
 * Device-list policy, pure: which devices a sign-out names, whether the asking device may sign them out,
 * and what a device that was offline missed. The user entity (user.ts) owns the list and applies these.
 */

/** What the policy needs of a device. */
export interface DeviceFacts {
  id: DeviceId;
  name: string;
  platform: string;
  createdAt: number;
  lastActive: number | undefined;
}

/** The devices a sign-out names, among the user's; `not_found` for an id that isn't one of them. */
export function signOutTargets<D extends DeviceFacts>(devices: readonly D[], by: DeviceId, which: SignOutTarget): D[] {
  if ('device' in which) {
    const d = devices.find((x) => x.id === which.device);
    if (!d) throw new ParleyError('not_found', 'no such device of yours (signed out already?)');
    return [d];
  }
  switch (which.scope) {
    case 'this': return devices.filter((d) => d.id === by);
    case 'others': return devices.filter((d) => d.id !== by);
    case 'all': return [...devices];
  }
}

/**
 * Telegram's rule: a device signed in less than `trustMs` ago may sign out itself and devices signed in
 * after it, not older ones. Whoever got hold of a one-time code can then not lock the owner's devices out;
 * the owner's older devices can sign the newcomer out at once. Returns how long until the asker may (ms),
 * or undefined when it may now.
 */
export function signOutWait(by: DeviceFacts, targets: readonly DeviceFacts[], now: number, trustMs: number): number | undefined {
  const trustedAt = by.createdAt + trustMs;
  if (now >= trustedAt) return undefined;
  const older = targets.some((d) => d.id !== by.id && d.createdAt <= by.createdAt);
  return older ? trustedAt - now : undefined;
}

/** The devices other than `self` signed in after `since`: what a device offline since then is told. */
export function addedSince<D extends DeviceFacts>(devices: readonly D[], self: DeviceId, since: number): D[] {
  return devices.filter((d) => d.id !== self && d.createdAt > since);
}

/** A device as frames and the device list show it. */
export function deviceInfo(d: DeviceFacts): DeviceInfo {
  const info: DeviceInfo = { id: d.id, name: d.name, platform: d.platform, createdAt: d.createdAt };
  if (d.lastActive !== undefined) info.lastActive = d.lastActive;
  return info;
}

/** How a wait reads in an error message: "3 h", "12 min", "40 s". */
export function humanWait(ms: number): string {
  if (ms >= 3_600_000) return `${Math.ceil(ms / 3_600_000)} h`;
  if (ms >= 60_000) return `${Math.ceil(ms / 60_000)} min`;
  return `${Math.ceil(ms / 1000)} s`;
}
