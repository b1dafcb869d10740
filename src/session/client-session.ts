import { ParleyError, errorFrame } from '../protocol/errors.js';
import { directConversationId, newId, type ConversationId, type DeviceId, type UserId } from '../protocol/ids.js';
import type { ClientFrame, DevicesSignOutFrame, SendFrame, ServerFrame, SignOutResult } from '../protocol/frames.js';
import type { ConvSend, EntityMessages, EntityType } from '../messages/entity-messages.js';
import type { ConnRef, ReplyTo } from '../messages/seam.js';
import type { Sharding } from '../routing/sharding.js';
import { CloseCodes } from '../protocol/close-codes.js';
import { mediaOf, type MediaGate } from '../media/media-access.js';
import { parseRegistration } from '../push/registration.js';
import { MUTED_FOREVER } from '../push/policy.js';
import type { KeyDirectory } from '../e2e/key-directory.js';

const MAX_PRESENCE_SUBS_PER_SOCKET = 1000;
/** What a sync may send at once when the socket can't say (half the default 1 MiB backpressure cap). */
const DEFAULT_SYNC_ROOM = 512 * 1024;

/** Phone number → user id, for contact discovery. Unknown and malformed numbers are left out. */
export interface Directory {
  lookup(phones: string[]): Promise<Record<string, UserId>>;
}

/** The socket a session answers on. */
export interface SessionSocket {
  send(frame: ServerFrame): void;
  /** Closes the socket (its own device was signed out on it). */
  close(code: number, reason: string): void;
  /** Bytes the socket can take now without nearing its backpressure cap: the size of a sync's slice. */
  room?(): number;
}

/** What every session of a node shares (one object, not a field each: a session lives as long as its socket). */
export interface SessionServices {
  sharding: Sharding;
  directory: Directory;
  /** Checks that media a message or profile names is the sender's to share; without it nothing is checked. */
  media?: MediaGate;
  /** The end-to-end key directory; without it the keys.* frames are refused. */
  keys?: KeyDirectory;
}

/**
 * What one authenticated socket's frames mean: each becomes a message to the entity that owns the answer
 * (its user, a conversation, a group). The session holds nothing a restart would need; it is the socket's.
 */
export class ClientSession {
  private presenceSubs?: Set<UserId>;
  /** The last send still waiting for a media check: later sends wait behind it, so a socket's sends keep their order. */
  private sendQueue?: Promise<void>;

  constructor(
    readonly ref: ConnRef,
    readonly user: UserId,
    readonly device: DeviceId,
    private readonly socket: SessionSocket,
    private readonly services: SessionServices,
  ) {}

  private get sharding(): Sharding {
    return this.services.sharding;
  }

  private send(frame: ServerFrame): void {
    this.socket.send(frame);
  }

  private room(): number {
    return this.socket.room?.() ?? DEFAULT_SYNC_ROOM;
  }

  /** Announces the socket to its user entity; the welcome carries the device's acked pointer. */
  async open(): Promise<{ acked: number }> {
    return this.sharding.ask<'user', { acked: number }>('user', this.user,
      (reply) => ({ t: 'attach', reply, device: this.device, conn: this.ref }));
  }

  /** The socket's buffer drained while a sync waited: it sends its next slice. */
  drained(room: number): void {
    this.sharding.tell('user', this.user, { t: 'sync.more', device: this.device, conn: this.ref, room });
  }

  /** The entities of some users it follows moved (a cluster shard changed owner): subscribe there again. */
  followAgain(moved: (user: UserId) => boolean): void {
    for (const u of this.presenceSubs ?? []) if (moved(u)) this.sharding.tell('user', u, { t: 'presence.sub', viewer: this.user, conn: this.ref });
  }

  closed(): void {
    this.sharding.tell('user', this.user, { t: 'detach', device: this.device, conn: this.ref });
    if (this.presenceSubs) for (const u of this.presenceSubs) this.sharding.tell('user', u, { t: 'presence.unsub', viewer: this.user, conn: this.ref });
  }

  handle(f: ClientFrame): void {
    const { sharding, user, device, ref } = this;
    switch (f.t) {
      case 'sync': return sharding.tell('user', user, { t: 'sync', device, conn: ref, since: f.since, room: this.room(), origin: ref, ...(f.rid ? { rid: f.rid } : {}) });
      case 'ack': return sharding.tell('user', user, { t: 'ack', device, ptr: f.ptr });
      case 'send': return this.sendMessage(f);
      case 'read': return sharding.tell('conv', f.conv, { t: 'read', user, seq: f.seq, origin: ref });
      case 'typing': return sharding.tell('conv', f.conv, { t: 'typing', user, on: f.on });
      case 'ping': return this.send({ t: 'pong', time: Date.now(), ...(f.rid ? { rid: f.rid } : {}) });
      case 'history': {
        const { before, after, from, until, limit } = f;
        return this.request(f.rid, 'conv', f.conv, (reply) => ({ t: 'history', reply, user, q: { before, after, from, until, limit: limit ?? 0 } }));
      }
      case 'receipts': return this.request(f.rid, 'conv', f.conv, (reply) => ({ t: 'receipts', reply, user }));
      case 'presence.sub':
        this.presenceSubs ??= new Set();
        if (this.presenceSubs.size + f.users.length > MAX_PRESENCE_SUBS_PER_SOCKET) {
          throw new ParleyError('rate_limited', `a socket follows at most ${MAX_PRESENCE_SUBS_PER_SOCKET} users' presence`);
        }
        for (const u of f.users) { this.presenceSubs.add(u); sharding.tell('user', u, { t: 'presence.sub', viewer: user, conn: ref }); }
        return;
      case 'presence.unsub':
        for (const u of f.users) { this.presenceSubs?.delete(u); sharding.tell('user', u, { t: 'presence.unsub', viewer: user, conn: ref }); }
        return;
      case 'group.create':
        return this.request(f.rid, 'group', newId(), (reply) => ({ t: 'create', reply, by: user, name: f.name, members: f.members ?? [] }));
      case 'group.add': case 'group.remove': {
        const t = f.t === 'group.add' ? 'add' as const : 'remove' as const;
        return this.request(f.rid, 'group', f.group, (reply) => ({ t, reply, by: user, users: f.users }));
      }
      case 'group.admin': return this.request(f.rid, 'group', f.group, (reply) => ({ t: 'admin', reply, by: user, user: f.user }));
      case 'group.rename': return this.request(f.rid, 'group', f.group, (reply) => ({ t: 'rename', reply, by: user, name: f.name }));
      case 'group.leave': case 'group.info': {
        const t = f.t === 'group.leave' ? 'leave' as const : 'info' as const;
        return this.request(f.rid, 'group', f.group, (reply) => ({ t, reply, by: user }));
      }
      case 'profile.set': return this.request(f.rid, 'user', user, (reply) => ({ t: 'profile.set', reply, name: f.name, avatar: f.avatar }));
      case 'profile.get': return this.request(f.rid, 'user', f.user, (reply) => ({ t: 'profile.get', reply, viewer: user }));
      case 'settings.set': return this.request(f.rid, 'user', user, (reply) => ({ t: 'settings.set', reply, lastSeen: f.lastSeen }));
      case 'contacts.add': case 'contacts.remove': {
        const [add, remove] = f.t === 'contacts.add' ? [f.users, []] : [[], f.users];
        return this.request(f.rid, 'user', user, (reply) => ({ t: 'contacts', reply, add, remove }));
      }
      case 'users.lookup':
        this.services.directory.lookup(f.phones).then(
          (users) => this.send({ t: 'res', rid: f.rid, data: { users } }),
          (err) => this.send(errorFrame({ rid: f.rid }, err)),
        );
        return;
      case 'push.register': {
        const push = parseRegistration(f as unknown as Record<string, unknown>);
        return this.request(f.rid, 'user', user, (reply) => ({ t: 'push.register', reply, device, push }));
      }
      case 'push.unregister': return this.request(f.rid, 'user', user, (reply) => ({ t: 'push.unregister', reply, device }));
      case 'mute': {
        const until = f.until ?? MUTED_FOREVER;
        return this.request(f.rid, 'user', user, (reply) => ({ t: 'mute', reply, conv: f.conv, until }));
      }
      case 'devices.list': return this.request(f.rid, 'user', user, (reply) => ({ t: 'devices.list', reply, device }));
      case 'devices.signout': return this.signOut(f);
      case 'keys.publish': return this.answer(f.rid, () => this.keyDirectory().publish(user, device, f));
      case 'keys.claim': return this.answer(f.rid, () => this.keyDirectory().claim(user, device, f.users, f.devices));
      case 'keys.list': return this.answer(f.rid, () => this.keyDirectory().list(f.users));
      case 'keys.count': return this.answer(f.rid, () => this.keyDirectory().count(user, device));
    }
  }

  /** The answer goes out first; a socket whose own device was signed out closes after it. */
  private signOut(f: DevicesSignOutFrame): void {
    const which = 'device' in f ? { device: f.device } : { scope: f.scope };
    this.sharding.ask<'user', SignOutResult>('user', this.user, (reply) => ({ t: 'devices.remove', reply, by: this.device, which, asker: this.ref })).then(
      (data) => {
        this.send({ t: 'res', rid: f.rid, data });
        if (data.signedOut.includes(this.device)) this.socket.close(CloseCodes.signedOut, 'this device was signed out');
      },
      (err) => this.send(errorFrame({ rid: f.rid }, err)),
    );
  }

  private sendMessage(f: SendFrame): void {
    let conv: ConversationId;
    if (f.to !== undefined) {
      if (f.to === this.user) throw new ParleyError('invalid', 'to must be another user');
      conv = directConversationId(this.user, f.to);
    } else {
      conv = f.conv!;
    }
    // Optional fields are set only when present (the message is plain data, and this is every message's path).
    const m: ConvSend = { t: 'send', origin: this.ref, cid: f.cid, from: this.user, dev: this.device, kind: f.kind };
    if (f.rid) m.rid = f.rid;
    if (f.body !== undefined) m.body = f.body;
    if (f.reply !== undefined) m.replyTo = f.reply;
    if (f.target !== undefined) m.target = f.target;
    if (f.fresh) m.fresh = true;
    const { media } = this.services;
    const named = media && mediaOf(f.kind, f.body);
    if (!named && !this.sendQueue) return this.sharding.tell('conv', conv, m);
    // A message may name only media its sender may fetch: otherwise naming someone else's media id in a message
    // to yourself would let you read it. Checks run at once; the sends leave in the order they came.
    const allowed = named ? media.mayFetch(this.user, named) : Promise.resolve(true);
    const done = Promise.all([this.sendQueue, allowed]).then(([, ok]) => {
      if (ok) this.sharding.tell('conv', conv, m);
      else this.send(errorFrame(f, new ParleyError('not_found', 'no such media (upload it first)')));
    }, (err: unknown) => this.send(errorFrame(f, err)));
    this.sendQueue = done;
    void done.then(() => { if (this.sendQueue === done) this.sendQueue = undefined; });
  }

  private keyDirectory(): KeyDirectory {
    const { keys } = this.services;
    if (!keys) throw new ParleyError('not_found', 'this node has no key directory');
    return keys;
  }

  /** A request answered outside the entities (the key directory): its result or error, with the rid. */
  private answer(rid: string, run: () => Promise<unknown>): void {
    let p: Promise<unknown>;
    try { p = run(); } catch (err) { p = Promise.reject(err); }
    p.then((data) => this.send({ t: 'res', rid, data }), (err) => this.send(errorFrame({ rid }, err)));
  }

  /** An ask whose answer (or error) goes back as a `res` (or `error`) frame with the request's rid. */
  private request<T extends EntityType>(rid: string, type: T, id: string, build: (reply: ReplyTo) => EntityMessages[T]): void {
    this.sharding.ask(type, id, build).then(
      (data) => this.send({ t: 'res', rid, data }),
      (err) => this.send(errorFrame({ rid }, err)),
    );
  }
}
