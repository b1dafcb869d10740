import { Packr } from 'msgpackr';
import type { UserId } from '../protocol/ids.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { EntityMessages, EntityType } from './entity-messages.js';
import type { ConnRef, Outbound, Reply, ReplyTo } from './seam.js';

/**
 * The versioned msgpack codec of everything that crosses the routing seam: what a cluster sends between
 * nodes. Each message is `[SEAM_VERSION, body]`; the decoder checks the version and the body's shape against
 * the schema of its type, so a node of another build fails loudly at the seam instead of deep inside an
 * entity. Compatible changes (an optional field) keep the version; a field that changes meaning or becomes
 * required bumps it, and the decoder then states what it supports. Unknown fields are kept (a newer node's
 * optional fields pass through an older one unharmed).
 */
export const SEAM_VERSION = 1;

export type SeamMessage =
  | { k: 'entity'; type: EntityType; id: string; msg: EntityMessages[EntityType]; fwd?: number }
  | { k: 'reply'; to: ReplyTo; result: Reply }
  | { k: 'conn'; conn: ConnRef; frame: Outbound }
  | { k: 'conn.close'; conn: ConnRef; code: number; reason: string }
  | { k: 'user'; user: UserId; frame: ServerFrame; from?: string }
  | { k: 'user.close'; user: UserId; code: number; reason: string; from?: string };

/** A field's type: string, number, boolean, bytes, connection ref, object, array, anything; `?` when optional. */
type Field = 's' | 'n' | 'b' | 'B' | 'c' | 'o' | 'a' | 'x';
type Spec = Field | `${Field}?`;
type Schema = Readonly<Record<string, Spec>>;

/** Fields every entity message may carry (the Envelope). */
const ENVELOPE: Schema = { reply: 's?', origin: 'c?', rid: 's?', cid: 's?' };

/** One schema per message type of each entity: a type added to entity-messages.ts without one fails to compile. */
const ENTITY_SCHEMAS: { [T in EntityType]: { [K in EntityMessages[T]['t']]: Schema } } = {
  conv: {
    send: { origin: 'c', cid: 's', from: 's', dev: 's', kind: 's', body: 'x', replyTo: 'n?', target: 'n?', fresh: 'b?' },
    delivered: { user: 's', upTo: 'n', fanned: 'a?' },
    read: { user: 's', seq: 'n' },
    typing: { user: 's', on: 'b' },
    history: { reply: 's', user: 's', q: 'o' },
    receipts: { reply: 's', user: 's' },
    members: { members: 'o', event: 'o', notify: 'a' },
    fanned: { user: 's', seqs: 'a' },
    visible: { reply: 's', user: 's', seq: 'n' },
    stored: { inc: 's', seq: 'n', error: 'o?' },
    'fanout.retry': { inc: 's' },
    fence: { epoch: 'n', upTo: 'n', outcome: 's' },
    'cursors.due': { inc: 's' },
    'cursor.stored': { inc: 's', user: 's', read: 'a', delivered: 'a?' },
    'all.stored': { inc: 's', read: 'a?', delivered: 'a?' },
    redrive: { inc: 's', after: 'n' },
    recover: { reply: 's' },
    erase: { reply: 's', user: 's' },
  },
  user: {
    'inbox.fence': { device: 's', epoch: 'n', upTo: 'n', outcome: 's' },
    'inbox.written': { inc: 's', device: 's', ptr: 'n', failed: 'b?' },
    'inbox.due': { inc: 's' },
    'acks.due': { inc: 's' },
    'node.gone': { node: 's' },
    attach: { reply: 's', device: 's', conn: 'c' },
    detach: { device: 's', conn: 'c' },
    sync: { device: 's', conn: 'c', since: 'n', room: 'n' },
    'sync.more': { device: 's', conn: 'c', room: 'n' },
    ack: { device: 's', ptr: 'n' },
    deliver: { conv: 's', seq: 'n', from: 's', dev: 's', kind: 's', packed: 'B', redelivery: 'b?', ts: 'n?' },
    'presence.sub': { viewer: 's', conn: 'c' },
    'presence.unsub': { viewer: 's', conn: 'c' },
    'profile.set': { reply: 's', name: 's?', avatar: 's?' },
    'profile.get': { reply: 's', viewer: 's' },
    'settings.set': { reply: 's', lastSeen: 's' },
    contacts: { reply: 's', add: 'a', remove: 'a' },
    'push.register': { reply: 's', device: 's', push: 'o' },
    'push.unregister': { reply: 's', device: 's' },
    'push.drop': { device: 's', platform: 's', token: 's', why: 's' },
    mute: { reply: 's', conv: 's', until: 'n' },
    'device.added': { reply: 's', device: 's' },
    'devices.list': { reply: 's', device: 's' },
    'devices.remove': { reply: 's', by: 's', which: 'o', asker: 'c?' },
    erase: { reply: 's' },
  },
  group: {
    create: { reply: 's', by: 's', name: 's', members: 'a' },
    add: { reply: 's', by: 's', users: 'a' },
    remove: { reply: 's', by: 's', users: 'a' },
    admin: { reply: 's', by: 's', user: 's' },
    rename: { reply: 's', by: 's', name: 's' },
    leave: { reply: 's', by: 's' },
    info: { reply: 's', by: 's' },
    erase: { reply: 's', by: 's' },
  },
};

const SEAM_SCHEMAS: { [K in SeamMessage['k']]: Schema } = {
  /** `fwd`: hops over links so far (a node passes one on to a shard's owner at most once). */
  entity: { type: 's', id: 's', msg: 'o', fwd: 'n?' },
  reply: { to: 's', result: 'o' },
  conn: { conn: 'c', frame: 'o' },
  'conn.close': { conn: 'c', code: 'n', reason: 's' },
  /** `from`: the publishing node (in a cluster a user's topic reaches every node holding one of its sockets). */
  user: { user: 's', frame: 'o', from: 's?' },
  'user.close': { user: 's', code: 'n', reason: 's', from: 's?' },
};

/** Thrown by the decoder: the bytes are not a seam message this build can read. */
export class SeamDecodeError extends Error {
  override name = 'SeamDecodeError';
}

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number', mapsAsObjects: true });

export function encodeSeam(m: SeamMessage): Uint8Array {
  return packr.pack([SEAM_VERSION, m]);
}

export function decodeSeam(bytes: Uint8Array): SeamMessage {
  let v: unknown;
  try {
    v = packr.unpack(bytes);
  } catch {
    throw new SeamDecodeError('not msgpack');
  }
  if (!Array.isArray(v) || v.length !== 2) throw new SeamDecodeError('not a seam message ([version, body])');
  const [version, m] = v as [unknown, unknown];
  if (version !== SEAM_VERSION) throw new SeamDecodeError(`seam version ${String(version)}; this node reads ${SEAM_VERSION}`);
  if (!isObject(m) || typeof m.k !== 'string' || !Object.hasOwn(SEAM_SCHEMAS, m.k)) throw new SeamDecodeError('unknown seam message kind');
  check(m, SEAM_SCHEMAS[m.k as SeamMessage['k']], m.k);
  if (m.k === 'entity') checkEntity(m.type as string, m.msg as Record<string, unknown>);
  else if ((m.k === 'conn' || m.k === 'user') && typeof (m.frame as Record<string, unknown>).t !== 'string') throw new SeamDecodeError(`${m.k}: frame without a type`);
  return m as unknown as SeamMessage;
}

function checkEntity(type: string, msg: Record<string, unknown>): void {
  if (!Object.hasOwn(ENTITY_SCHEMAS, type)) throw new SeamDecodeError(`unknown entity type ${type}`);
  const schemas = ENTITY_SCHEMAS[type as EntityType] as Record<string, Schema>;
  const t = msg.t;
  if (typeof t !== 'string' || !Object.hasOwn(schemas, t)) throw new SeamDecodeError(`unknown ${type} message ${String(t)}`);
  check(msg, ENVELOPE, `${type}.${t}`);
  check(msg, schemas[t]!, `${type}.${t}`);
}

function check(m: Record<string, unknown>, schema: Schema, what: string): void {
  for (const field in schema) {
    const spec = schema[field]!;
    const value = m[field];
    const optional = spec.endsWith('?');
    if (value === undefined && (optional || spec === 'x')) continue;
    if (!fits(value, spec[0] as Field)) throw new SeamDecodeError(`${what}: ${field} is not ${NAMES[spec[0] as Field]}`);
  }
}

const NAMES: Record<Field, string> = {
  s: 'a string', n: 'a number', b: 'a boolean', B: 'bytes', c: 'a connection ref', o: 'an object', a: 'an array', x: 'anything',
};

function fits(v: unknown, f: Field): boolean {
  switch (f) {
    case 's': return typeof v === 'string';
    case 'n': return typeof v === 'number';
    case 'b': return typeof v === 'boolean';
    case 'B': return v instanceof Uint8Array;
    case 'c': return isObject(v) && typeof v.node === 'string' && typeof v.id === 'number';
    case 'o': return isObject(v);
    case 'a': return Array.isArray(v);
    case 'x': return true;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
