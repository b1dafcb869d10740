import { ParleyError } from './errors.js';
import { isId, parseConversationId } from './ids.js';
import { MESSAGE_KINDS, TARGETED_KINDS, type Body, type ClientFrame, type Limits, type MessageKind, type PushRegisterFrame, type SendFrame, type SignOutTarget } from './frames.js';
import { parseRegistration } from '../push/registration.js';
import { pack } from './codec.js';
import { PRESENCE_USERS_PER_FRAME } from './limits.js';
import { checkMlsBody, validateKeysFrame } from '../e2e/key-frames.js';

/** Pure checks from a decoded value to a typed client frame. Each failure names the field and the rule. */

type Obj = Record<string, unknown>;
const fail = (message: string): never => { throw new ParleyError('invalid', message); };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const str = (o: Obj, k: string, max = 256): string => {
  const v = o[k];
  if (typeof v !== 'string' || v.length === 0 || v.length > max) fail(`${k} must be a string of 1..${max} characters`);
  return v as string;
};
const optStr = (o: Obj, k: string, max = 256): string | undefined => (o[k] === undefined ? undefined : str(o, k, max));
const uint = (o: Obj, k: string): number => {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${k} must be a non-negative integer`);
  return v as number;
};
const optUint = (o: Obj, k: string): number | undefined => (o[k] === undefined ? undefined : uint(o, k));
const id = (o: Obj, k: string): string => (isId(o[k]) ? (o[k] as string) : fail(`${k} must be an id`));
const ids = (o: Obj, k: string, max: number): string[] => {
  const v = o[k];
  if (!Array.isArray(v) || v.length > max || !v.every(isId)) fail(`${k} must be a list of at most ${max} ids`);
  return [...new Set(v as string[])];
};
const conv = (o: Obj, k = 'conv'): string => (parseConversationId(o[k]) ? (o[k] as string) : fail(`${k} must be a conversation id`));
const optRid = (o: Obj): string | undefined => optStr(o, 'rid', 64);
const rid = (o: Obj): string => str(o, 'rid', 64);

/**
 * `frameBytes`, the size of a msgpack frame on the wire, spares re-encoding a body that must be smaller
 * (decodeFrame has refused references, so a body is no larger than its bytes say).
 */
export function validateClientFrame(v: unknown, limits: Limits, frameBytes = Infinity): ClientFrame {
  if (!isObj(v) || typeof v.t !== 'string') throw new ParleyError('bad_frame', 'a frame is a map with a type field "t"');
  const t = v.t;
  switch (t) {
    case 'sync': { const r = optRid(v); return r === undefined ? { t, since: uint(v, 'since') } : { t, since: uint(v, 'since'), rid: r }; }
    case 'ack': return { t, ptr: uint(v, 'ptr') };
    case 'ping': return { t, rid: optRid(v) };
    case 'send': return validateSend(v, limits, frameBytes);
    case 'read': return { t, conv: conv(v), seq: uint(v, 'seq') };
    case 'typing': return { t, conv: conv(v), on: v.on === true };
    case 'history': {
      const limit = optUint(v, 'limit');
      if (limit !== undefined && (limit < 1 || limit > limits.historyPageMax)) fail(`limit must be 1..${limits.historyPageMax}`);
      return { t, rid: rid(v), conv: conv(v), before: optUint(v, 'before'), after: optUint(v, 'after'), from: optUint(v, 'from'), until: optUint(v, 'until'), limit };
    }
    case 'receipts': return { t, rid: rid(v), conv: conv(v) };
    case 'presence.sub': case 'presence.unsub': return { t, users: ids(v, 'users', PRESENCE_USERS_PER_FRAME) };
    case 'group.create': return { t, rid: rid(v), name: str(v, 'name', 100), members: v.members === undefined ? [] : ids(v, 'members', limits.maxGroupMembers) };
    case 'group.add': case 'group.remove': return { t, rid: rid(v), group: id(v, 'group'), users: ids(v, 'users', limits.maxGroupMembers) };
    case 'group.admin': return { t, rid: rid(v), group: id(v, 'group'), user: id(v, 'user') };
    case 'group.rename': return { t, rid: rid(v), group: id(v, 'group'), name: str(v, 'name', 100) };
    case 'group.leave': case 'group.info': return { t, rid: rid(v), group: id(v, 'group') };
    case 'profile.set': {
      const avatar = optStr(v, 'avatar', 64);
      if (avatar !== undefined && !/^[0-9a-f]{64}$/.test(avatar)) fail('avatar must be a media id');
      return { t, rid: rid(v), name: optStr(v, 'name', 64), avatar };
    }
    case 'profile.get': return { t, rid: rid(v), user: id(v, 'user') };
    case 'settings.set': {
      const lastSeen = v.lastSeen;
      if (lastSeen !== 'everyone' && lastSeen !== 'contacts' && lastSeen !== 'nobody') fail('lastSeen must be everyone, contacts or nobody');
      return { t, rid: rid(v), lastSeen: lastSeen as 'everyone' | 'contacts' | 'nobody' };
    }
    case 'contacts.add': case 'contacts.remove': return { t, rid: rid(v), users: ids(v, 'users', 1000) };
    case 'users.lookup': {
      const phones = v.phones;
      if (!Array.isArray(phones) || phones.length === 0 || phones.length > 256 || !phones.every((p) => typeof p === 'string' && p.length <= 32)) {
        fail('phones must be a list of 1..256 phone numbers');
      }
      return { t, rid: rid(v), phones: phones as string[] };
    }
    case 'push.register': {
      parseRegistration(v); // every rule checked here; the session builds the registration from the fields kept
      const { platform, token, endpoint, keys, app, previews } = v as Obj & PushRegisterFrame;
      return { t, rid: rid(v), platform, token, endpoint, keys: keys && { p256dh: keys.p256dh, auth: keys.auth }, app, previews };
    }
    case 'push.unregister': return { t, rid: rid(v) };
    case 'mute': {
      const until = optUint(v, 'until');
      return until === undefined ? { t, rid: rid(v), conv: conv(v) } : { t, rid: rid(v), conv: conv(v), until };
    }
    case 'devices.list': return { t, rid: rid(v) };
    case 'devices.signout': return { t, rid: rid(v), ...signOutTarget(v) };
    case 'keys.publish': case 'keys.claim': case 'keys.list': case 'keys.count': return validateKeysFrame(t, v);
    default:
      throw new ParleyError('unknown_type', `unknown frame type ${JSON.stringify(typeof t === 'string' ? t.slice(0, 32) : t)}`);
  }
}

/** A sign-out names a device or a scope, not both; neither is this device (a frame, or an HTTP body). */
export function signOutTarget(v: Obj): SignOutTarget {
  if (v.device !== undefined) {
    if (v.scope !== undefined) fail('a sign-out names either device or scope');
    return { device: id(v, 'device') };
  }
  const scope = v.scope === undefined ? 'this' : v.scope;
  if (scope !== 'this' && scope !== 'others' && scope !== 'all') fail('scope must be this, others or all');
  return { scope: scope as 'this' | 'others' | 'all' };
}

function validateSend(v: Obj, limits: Limits, frameBytes: number): ClientFrame {
  const kind = v.kind as MessageKind;
  if (!MESSAGE_KINDS.includes(kind) || kind === 'system') {
    throw new ParleyError('unknown_kind', `unknown message kind ${JSON.stringify(typeof kind === 'string' ? kind.slice(0, 32) : kind)}`);
  }
  const cid = str(v, 'cid', 64);
  const to = v.to === undefined ? undefined : id(v, 'to');
  const c = v.conv === undefined ? undefined : conv(v);
  if ((to === undefined) === (c === undefined)) fail('send names exactly one of to (a user) or conv');
  const target = optUint(v, 'target');
  if (TARGETED_KINDS.has(kind) !== (target !== undefined)) fail(`${kind} ${TARGETED_KINDS.has(kind) ? 'needs' : 'takes no'} target`);
  const body = v.body as Body | undefined;
  if (kind !== 'delete') {
    if (body === undefined) fail('body is required');
    checkBody(kind, body!, limits, frameBytes);
  }
  if (v.fresh !== undefined && v.fresh !== true) fail('fresh is true or absent');
  const f = { t: 'send', rid: optRid(v), cid, kind, to, conv: c, body, reply: optUint(v, 'reply'), target } as SendFrame;
  if (v.fresh) f.fresh = true;
  return f;
}

/** Deepest nesting of maps and lists a plaintext body may have: encoding a much deeper one overflows the stack. */
export const MAX_BODY_DEPTH = 32;
const deeperThan = (v: unknown, levels: number): boolean => {
  if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return false;
  if (levels === 0) return true;
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (deeperThan(x, levels - 1)) return true;
  return false;
};

/** Plaintext bodies are checked by kind; ciphertext (bytes) is only measured. */
export function checkBody(kind: MessageKind, body: Body, limits: Limits, frameBytes = Infinity): void {
  if (deeperThan(body, MAX_BODY_DEPTH)) fail(`body nests deeper than ${MAX_BODY_DEPTH} levels`);
  // Re-encoding grows a body by at most 3× its bytes in the frame (an invalid UTF-8 byte decodes to U+FFFD,
  // 3 bytes; a float32 becomes a float64), so only a frame larger than a third of the limit is packed to measure.
  const size = body instanceof Uint8Array ? body.byteLength : frameBytes * 3 <= limits.maxBodyBytes ? 0 : pack(body).byteLength;
  if (size > limits.maxBodyBytes) throw new ParleyError('too_large', `body is ${size} bytes; the limit is ${limits.maxBodyBytes}`);
  if (kind === 'mls' && !isObj(body)) fail('an mls body is a map: its header and the MLS message');
  if (body instanceof Uint8Array) return;
  if (!isObj(body)) fail('body must be a map or bytes');
  const text = (k: string) => str(body, k, limits.maxTextChars);
  switch (kind) {
    case 'text': case 'edit': text('text'); break;
    case 'image': case 'video':
      str(body, 'media', 64);
      optStr(body, 'mime', 100);
      if (body.caption !== undefined) text('caption');
      break;
    case 'location': {
      const { lat, lng } = body;
      if (typeof lat !== 'number' || lat < -90 || lat > 90) fail('lat must be a number in -90..90');
      if (typeof lng !== 'number' || lng < -180 || lng > 180) fail('lng must be a number in -180..180');
      optStr(body, 'name', 256);
      break;
    }
    case 'mls': checkMlsBody(body); break; // an encrypted message: its header is read, its bytes never
    case 'reaction': // an empty emoji takes the sender's reaction back
      if (typeof body.emoji !== 'string' || body.emoji.length > 16) fail('emoji must be a string of at most 16 characters');
      break;
    default: break;
  }
}
