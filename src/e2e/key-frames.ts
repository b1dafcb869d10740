import { ParleyError } from '../protocol/errors.js';
import { isId } from '../protocol/ids.js';
import type { ClientFrame, MlsBody } from '../protocol/frames.js';
import { KEY_LIMITS } from './key-limits.js';

/** Pure checks of the key-directory frames and of `mls` bodies (validate.ts hands them over). */

type Obj = Record<string, unknown>;
const fail = (message: string): never => { throw new ParleyError('invalid', message); };
const rid = (o: Obj): string => (typeof o.rid === 'string' && o.rid.length > 0 && o.rid.length <= 64 ? o.rid : fail('rid must be a string of 1..64 characters'));
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;
const bytes = (o: Obj, k: string, max: number): Uint8Array => {
  const v = o[k];
  if (!isBytes(v) || v.byteLength === 0 || v.byteLength > max) fail(`${k} must be 1..${max} bytes`);
  return v as Uint8Array;
};
const optBytes = (o: Obj, k: string, max: number): Uint8Array | undefined => (o[k] === undefined ? undefined : bytes(o, k, max));
const users = (o: Obj): string[] => {
  const v = o.users;
  if (!Array.isArray(v) || v.length === 0 || v.length > KEY_LIMITS.usersPerRequest || !v.every(isId)) fail(`users must be a list of 1..${KEY_LIMITS.usersPerRequest} ids`);
  return [...new Set(v as string[])];
};
const uint = (o: Obj, k: string): number => {
  const v = o[k];
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(`${k} must be a non-negative integer`);
};

export function validateKeysFrame(t: 'keys.publish' | 'keys.claim' | 'keys.list' | 'keys.count', v: Obj): ClientFrame {
  switch (t) {
    case 'keys.publish': {
      const oneTime = v.oneTime;
      if (oneTime !== undefined && (!Array.isArray(oneTime) || oneTime.length > KEY_LIMITS.oneTimePerUpload)) fail(`oneTime must be a list of at most ${KEY_LIMITS.oneTimePerUpload} packages`);
      const packages = ((oneTime ?? []) as unknown[]).map((p) => {
        if (typeof p !== 'object' || p === null) fail('each one-time package is {id, keyPackage}');
        const o = p as Obj;
        if (typeof o.id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(o.id)) fail('a package id is 1..64 characters A-Z a-z 0-9 _ -');
        return { id: o.id as string, keyPackage: bytes(o, 'keyPackage', KEY_LIMITS.keyPackageBytes) };
      });
      const identity = optBytes(v, 'identity', KEY_LIMITS.identityBytes);
      const lastResort = optBytes(v, 'lastResort', KEY_LIMITS.keyPackageBytes);
      return { t, rid: rid(v), ...(identity ? { identity } : {}), ...(lastResort ? { lastResort } : {}), oneTime: packages };
    }
    case 'keys.claim': {
      const d = v.devices;
      if (d !== undefined && (!Array.isArray(d) || d.length > KEY_LIMITS.usersPerRequest * KEY_LIMITS.devicesPerUser || !d.every(isId))) fail('devices must be a list of device ids');
      return { t, rid: rid(v), users: users(v), ...(d ? { devices: [...new Set(d as string[])] } : {}) };
    }
    case 'keys.list': return { t, rid: rid(v), users: users(v) };
    case 'keys.count': return { t, rid: rid(v) };
  }
}

/** The body of a `mls` message: its header fields checked, its MLS bytes only measured (by checkBody). */
export function checkMlsBody(body: Obj): MlsBody {
  const epoch = uint(body, 'epoch');
  const data = bytes(body, 'data', Infinity);
  switch (body.mls) {
    case 'app': {
      const media = body.media;
      if (media !== undefined && (typeof media !== 'string' || !/^[0-9a-f]{64}$/.test(media))) fail('media must be a media id');
      return { mls: 'app', epoch, data, ...(media ? { media: media as string } : {}) };
    }
    case 'proposal': return { mls: 'proposal', epoch, data };
    case 'commit': {
      const us = body.users;
      if (!Array.isArray(us) || us.length === 0 || !us.every(isId)) fail('a commit names the users of the group after it (users)');
      const welcome = optBytes(body, 'welcome', Infinity);
      return { mls: 'commit', epoch, users: us as string[], data, ...(welcome ? { welcome } : {}) };
    }
    default: return fail('mls must be app, commit or proposal');
  }
}
