import t from 'tap';
import { pack } from 'msgpackr';
import { SEAM_VERSION, SeamDecodeError, decodeSeam, encodeSeam, type SeamMessage } from '../../src/messages/codec.js';
import type { EntityMessages, EntityType } from '../../src/messages/entity-messages.js';

const conn = { node: 'n1', id: 7 };
const bytes = new Uint8Array([0x81, 0xa1, 0x74, 0x01]);

/** A sample of every message type of every entity: a type without one fails to compile. */
const SAMPLES: { [T in EntityType]: { [K in EntityMessages[T]['t']]: EntityMessages[T] & { t: K } } } = {
  conv: {
    send: { t: 'send', origin: conn, cid: 'c1', from: 'ua', dev: 'd1', kind: 'text', body: { text: 'hi' }, rid: 'r1', replyTo: 3 },
    delivered: { t: 'delivered', user: 'ub', upTo: 9, fanned: [8, 9] },
    read: { t: 'read', user: 'ub', seq: 4, origin: conn },
    typing: { t: 'typing', user: 'ub', on: true },
    history: { t: 'history', reply: 'n1:1', user: 'ua', q: { before: 10, limit: 50 } },
    receipts: { t: 'receipts', reply: 'n1:2', user: 'ua' },
    members: { t: 'members', members: { ua: 'admin', ub: 'member' }, event: { event: 'added', by: 'ua', users: ['ub'] }, notify: ['uc'] },
    fanned: { t: 'fanned', user: 'ub', seqs: [1, 2, 3] },
    visible: { t: 'visible', reply: 'n1:3', user: 'ub', seq: 2 },
    stored: { t: 'stored', inc: 'i.1', seq: 5, error: { code: 'store_unavailable', message: 'down', retryable: true } },
    'fanout.retry': { t: 'fanout.retry', inc: 'i.1' },
    fence: { t: 'fence', epoch: 3, upTo: 2000, outcome: 'reserved' },
    'cursors.due': { t: 'cursors.due', inc: 'i.1' },
    'cursor.stored': { t: 'cursor.stored', inc: 'i.1', user: 'ub', read: [2, 5], delivered: [3, 5] },
    'all.stored': { t: 'all.stored', inc: 'i.1', read: [1, 4] },
    redrive: { t: 'redrive', inc: 'i.1', after: 120 },
    recover: { t: 'recover', reply: 'n1:20' },
    erase: { t: 'erase', reply: 'n1:23', user: 'ua' },
  },
  user: {
    'inbox.fence': { t: 'inbox.fence', device: 'd1', epoch: 2, upTo: 2000, outcome: 'stale' },
    'inbox.written': { t: 'inbox.written', inc: 'i.2', device: 'd1', ptr: 7, failed: true },
    'inbox.due': { t: 'inbox.due', inc: 'i.2' },
    'acks.due': { t: 'acks.due', inc: 'i.2' },
    'node.gone': { t: 'node.gone', node: 'nxyz' },
    attach: { t: 'attach', reply: 'n1:4', device: 'd1', conn },
    detach: { t: 'detach', device: 'd1', conn },
    sync: { t: 'sync', device: 'd1', conn, since: 0, room: 524288, origin: conn, rid: 'r2' },
    'sync.more': { t: 'sync.more', device: 'd1', conn, room: 1000 },
    ack: { t: 'ack', device: 'd1', ptr: 12 },
    deliver: { t: 'deliver', conv: 'd.ua.ub', seq: 5, from: 'ua', dev: 'd1', kind: 'image', packed: bytes, redelivery: true },
    'presence.sub': { t: 'presence.sub', viewer: 'ub', conn },
    'presence.unsub': { t: 'presence.unsub', viewer: 'ub', conn },
    'profile.set': { t: 'profile.set', reply: 'n1:5', name: 'Ann' },
    'profile.get': { t: 'profile.get', reply: 'n1:6', viewer: 'ub' },
    'settings.set': { t: 'settings.set', reply: 'n1:7', lastSeen: 'contacts' },
    contacts: { t: 'contacts', reply: 'n1:8', add: ['ub'], remove: [] },
    'push.register': { t: 'push.register', reply: 'n1:9', device: 'd1', push: { platform: 'fcm', token: 'tok', previews: false } },
    'push.unregister': { t: 'push.unregister', reply: 'n1:21', device: 'd1' },
    'push.drop': { t: 'push.drop', device: 'd1', platform: 'apns', token: 'ab12', why: 'invalid' },
    mute: { t: 'mute', reply: 'n1:22', conv: 'd.ua.ub', until: 0 },
    'device.added': { t: 'device.added', reply: 'n1:10', device: 'd2' },
    'devices.list': { t: 'devices.list', reply: 'n1:11', device: 'd1' },
    'devices.remove': { t: 'devices.remove', reply: 'n1:12', by: 'd1', which: { scope: 'others' }, asker: conn },
    erase: { t: 'erase', reply: 'n1:24' },
  },
  group: {
    create: { t: 'create', reply: 'n1:13', by: 'ua', name: 'team', members: ['ub'] },
    add: { t: 'add', reply: 'n1:14', by: 'ua', users: ['uc'] },
    remove: { t: 'remove', reply: 'n1:15', by: 'ua', users: ['uc'] },
    admin: { t: 'admin', reply: 'n1:16', by: 'ua', user: 'ub' },
    rename: { t: 'rename', reply: 'n1:17', by: 'ua', name: 'new' },
    leave: { t: 'leave', reply: 'n1:18', by: 'ub' },
    info: { t: 'info', reply: 'n1:19', by: 'ub' },
    erase: { t: 'erase', reply: 'n1:25', by: 'ub' },
  },
};

const OTHERS: SeamMessage[] = [
  { k: 'reply', to: 'n1:1', result: { ok: true, value: { acked: 3, list: [1, 2] } } },
  { k: 'reply', to: 'n1:2', result: { ok: false, error: { code: 'forbidden', message: 'no', retryable: false } } },
  { k: 'conn', conn, frame: { t: 'sent', cid: 'c1', conv: 'd.ua.ub', seq: 5, ts: 1 } },
  { k: 'conn', conn, frame: { t: 'delivery', ptr: 3, packed: bytes } },
  { k: 'conn', conn, frame: { t: 'conn.drain' } },
  { k: 'conn.close', conn, code: 4001, reason: 'replaced' },
  { k: 'user', user: 'ua', frame: { t: 'receipt', conv: 'd.ua.ub', status: 'read', upTo: 5, user: 'ub' } },
  { k: 'user.close', user: 'ua', code: 1012, reason: 'restart' },
];

/** Bytes come back as a Buffer (a Uint8Array): compare contents, not classes. */
const plain = (v: unknown): unknown => {
  if (v instanceof Uint8Array) return { bytes: [...v] };
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
};

t.test('every entity message type round-trips through the seam codec unchanged', async (t) => {
  let n = 0;
  for (const [type, byT] of Object.entries(SAMPLES) as [EntityType, Record<string, EntityMessages[EntityType]>][]) {
    for (const msg of Object.values(byT)) {
      const m: SeamMessage = { k: 'entity', type, id: 'some-id', msg };
      const back = decodeSeam(encodeSeam(m));
      t.strictSame(plain(back), plain(m), `${type}.${msg.t}`);
      n++;
    }
  }
  t.equal(n, 51, 'all 51 message types were sampled');
  const deliver = decodeSeam(encodeSeam({ k: 'entity', type: 'user', id: 'u', msg: SAMPLES.user.deliver })) as Extract<SeamMessage, { k: 'entity' }>;
  t.ok((deliver.msg as { packed: unknown }).packed instanceof Uint8Array, 'packed bytes stay bytes');
});

t.test('replies, socket frames and user frames round-trip', async (t) => {
  for (const m of OTHERS) t.strictSame(plain(decodeSeam(encodeSeam(m))), plain(m), m.k);
});

t.test('the decoder refuses what this build cannot read, saying why', async (t) => {
  const refuse = (value: unknown, why: RegExp, what: string) => t.throws(() => decodeSeam(pack(value)), { constructor: SeamDecodeError, message: why }, what);
  refuse([SEAM_VERSION + 1, { k: 'reply', to: 'x', result: { ok: true, value: 1 } }], /seam version 2; this node reads 1/, 'a newer version');
  refuse({ k: 'reply' }, /\[version, body\]/, 'no version');
  refuse([SEAM_VERSION, { k: 'gossip' }], /unknown seam message kind/, 'an unknown kind');
  refuse([SEAM_VERSION, { k: 'entity', type: 'planet', id: 'x', msg: { t: 'send' } }], /unknown entity type planet/, 'an unknown entity type');
  refuse([SEAM_VERSION, { k: 'entity', type: 'conv', id: 'x', msg: { t: 'explode' } }], /unknown conv message explode/, 'an unknown message type');
  refuse([SEAM_VERSION, { k: 'entity', type: 'user', id: 'x', msg: { t: 'ack', device: 'd1', ptr: '12' } }], /user\.ack: ptr is not a number/, 'a field of the wrong type');
  refuse([SEAM_VERSION, { k: 'entity', type: 'user', id: 'x', msg: { t: 'attach', device: 'd1', conn } }], /user\.attach: reply is not a string/, 'a required field missing');
  refuse([SEAM_VERSION, { k: 'entity', type: 'user', id: 'x', msg: { t: 'detach', device: 'd1', conn: { node: 'n1' } } }], /conn is not a connection ref/, 'a malformed connection ref');
  refuse([SEAM_VERSION, { k: 'conn', conn, frame: { seq: 1 } }], /frame without a type/, 'a frame without a type');
  t.throws(() => decodeSeam(new Uint8Array([0x92, 0x01])), { name: 'SeamDecodeError', message: 'not msgpack' }, 'bytes that are not msgpack (cut short)');
});

t.test('fields a newer build adds pass through an older one', async (t) => {
  const m = { k: 'entity', type: 'user', id: 'u', msg: { t: 'ack', device: 'd1', ptr: 3, hint: 'new' } };
  t.strictSame(decodeSeam(pack([SEAM_VERSION, m])), m);
});
