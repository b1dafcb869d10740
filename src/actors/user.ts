import { ParleyError, errorFrame, rateLimited } from '../protocol/errors.js';
import { deviceKey, type ConversationId, type DeviceId, type UserId } from '../protocol/ids.js';
import type { DeviceEventFrame, DeviceInfo, PresenceFrame, SignOutResult } from '../protocol/frames.js';
import { fenceKeys, type DeviceRecord, type InboxEntry, type PushRegistration, type UserRecord } from '../store/store.js';
import { connKey, type ConnRef } from '../messages/seam.js';
import { log } from '../log.js';
import { CloseCodes } from '../protocol/close-codes.js';
import type { ActorDeps } from './deps.js';
import type { UserAck, UserAttach, UserDeliver, UserDetach, UserDevicesRemove, UserInboxFence, UserInboxWritten, UserMsg, UserMute, UserPresenceSub, UserPushDrop, UserSync, UserSyncMore } from '../messages/entity-messages.js';
import { newIncarnation } from './incarnation.js';
import { MAX_MUTES, mutedAt, pushable } from '../push/policy.js';
import { pushNotice, releaseToken, removeRegistration, storeRegistration } from '../push/registrar.js';
import type { Entity, EntityKind } from './region.js';
import { WrittenSeqs } from './written-seqs.js';
import { Unacked } from './unacked.js';
import { SEQ_BLOCK, SeqFence } from './seq-fence.js';
import { Sweeper } from './sweeper.js';
import { PUBLIC_HOLDER } from '../media/media-access.js';
import { addedSince, deviceInfo, humanWait, signOutTargets, signOutWait } from './devices.js';
import { DELIVERY_OVERHEAD, FIRST_AVG_BYTES, averageBytes, readCount, resendCount } from './sync-slice.js';

const settled = (p: Promise<unknown> | undefined): Promise<unknown> => (p ? p.then(() => undefined, () => undefined) : Promise.resolve());

/** Inbox entries sent per sync page (in slices the socket can take); the client acks and syncs again while `more` is set. */
export const SYNC_PAGE = 1000;
/** Deliveries a device may leave unacknowledged before its socket is closed (it resyncs by pointer). */
export const MAX_UNACKED = 10_000;
const MAX_PRESENCE_SUBSCRIBERS = 10_000;
const ACK_STORE_DELAY_MS = 1000;
/**
 * Inbox pointers are reserved a block (SEQ_BLOCK) ahead in the store, so an entity restarted after a crash
 * starts above every ptr a device may have seen (a client drops a delivery whose ptr it already holds). A
 * reservation is renewed halfway through, so it is durable long before it is needed. Reservations are fenced
 * per device (Store.claimEpoch / reserve, a SeqFence as a conversation's seqs): two activations never write
 * one (device, ptr).
 */
/** Deliveries that may wait for a device's pointers (User.waiting). */
const MAX_WAITING = 10_000;
/** Inbox ptrs remembered per device for exact deletes; past it the next delete scans the range. */
const INBOXED_MAX = 10_000;

/**
 * A deferred write waits for its ack `inboxDeferMs`, or twice the device's smoothed ack time if that is
 * longer, up to this many times `inboxDeferMs`. When a node falls behind, acks wait unread in its sockets
 * and arrive late for every device; a fixed wait would then write (and later delete) every delivery,
 * more work per message exactly when there is least to spare. Only the tick waits longer.
 */
const DEFER_STRETCH_MAX = 4;
/**
 * Deferred inbox writes are written within 50 ms of falling due, and acks stored once per ACK_STORE_DELAY_MS.
 * The node-wide timers only wake the entity: the work is done in its own turn (`inbox.due`, `acks.due`).
 */
const deferredWrites = new Sweeper<User>(50, 50, (u, now) => u.wakeIfDue(now));
const ackStores = new Sweeper<User>(ACK_STORE_DELAY_MS, 100, (u) => (u.wake('acks.due'), false));


/** A message's inbox writes or device acks still awaited across the user's devices: at 0 it is confirmed. */
interface Fanning { m: UserDeliver; left: number }

/** A message pushed to a device's socket and not acked yet. */
interface Delivery {
  ptr: number;
  conv: ConversationId;
  seq: number;
  mine: boolean;
  /** Set while its inbox write is deferred: acked before `due`, it is never written. */
  fan: Fanning | undefined;
  due: number;
  /** When it was pushed (ms), to time the ack. */
  at: number;
  /** When it was sent (the message's server time), for analytics' send → ack; 0: not timed (a redelivery, one's own). */
  sent: number;
}

interface DeviceState {
  id: DeviceId;
  name: string;
  platform: string;
  createdAt: number;
  /**
   * When it was last connected: stored when its socket goes, set in memory when it has synced. Devices
   * signed in after it are news to it on its next sync.
   */
  lastActive: number | undefined;
  push?: PushRegistration;
  /** Highest inbox ptr handed out. */
  next: number;
  /** `next` when this activation loaded the device: ptrs above it are this activation's own. */
  floor: number;
  /** The ptrs this activation may hand out: reserved in the store under its epoch (fenceKeys.inbox). */
  fence: SeqFence;
  acked: number;
  conn?: ConnRef;
  /** True once the socket has caught up with the inbox; live deliveries are pushed only then. */
  synced: boolean;
  /** Pushed but not yet acked on this socket: what an ack turns into delivered receipts. */
  pending?: Unacked<Delivery>;
  /** How many of `pending` have their inbox write deferred. */
  deferred: number;
  /** Smoothed time from push to ack on this socket, ms (0: none timed yet). */
  ackMs: number;
  /** The last inbox write, awaited (settled) before a sync reads the inbox so it sees every entry. */
  lastWrite?: Promise<unknown>;
  /** Inbox writes in flight, by ptr: what each settles when its completion comes back (`inbox.written`). */
  writing?: Map<number, Fanning>;
  /** Ptrs of entries in the inbox that this entity wrote or read, not yet deleted: acks delete exactly these. */
  inboxed?: number[];
  /** The inbox was range-deleted up to the acked ptr once in this entity's life (entries of earlier lives). */
  swept: boolean;
  /** Highest ptr sent on the current socket: a sync there starts after it (TCP delivered what it was sent). */
  sent: number;
  /** Highest ptr sent to this device on any socket in this entity's life: below it, a sync sends again. */
  sentMax: number;
  /** The sync running on the current socket, if any: one at a time. */
  sync: SyncRun | undefined;
}

/** A sync sending its page in slices, as the socket drains. */
interface SyncRun {
  conn: ConnRef;
  /** The sync frame's rid, for an error that ends it between slices. */
  rid: string | undefined;
  /** The last ptr sent (or skipped); the next read starts after it. */
  last: number;
  /** Entries of this page sent so far (a page is SYNC_PAGE). */
  count: number;
  /** Read and not sent yet (from `at`): what the last slice had no room for; at most one read. */
  ahead: InboxEntry[];
  at: number;
  /** Average frame size of the entries read so far, to size the next read. */
  avg: number;
}

/**
 * One user: its devices and their transient inboxes, its presence and last seen, profile and privacy.
 * Every message for the user arrives here once and is written to each device's inbox (ptr order) and
 * pushed to the devices that are online and synced; a push notification goes out when none is.
 */
export class User implements Entity<UserMsg> {
  static kind(deps: ActorDeps): EntityKind<UserMsg> {
    return {
      type: 'user',
      load: (id) => User.load(id, deps),
      // Attachments lived in memory only: the sockets reconnect and resync by pointer.
      onCrash: (id) => deps.pubsub.closeAll(id, CloseCodes.restart, 'user entity restarted; reconnect and sync'),
    };
  }

  private subscribers?: Map<string, { conn: ConnRef; viewer: UserId }>;
  /** This activation: completions and wake-ups tagged with another one are ignored. */
  private readonly inc = newIncarnation();
  /** When the earliest deferred inbox write falls due (Infinity: none), kept in the entity's turns. */
  private nextDue = Infinity;

  private constructor(
    private readonly id: UserId,
    private readonly deps: ActorDeps,
    private rec: UserRecord,
    /** A short list, not a Map: most users have one or two devices, and a Map's table costs ~200 bytes. */
    private readonly devices: DeviceState[],
    private contacts: Set<UserId> | undefined,
    private lastSeen: number | undefined,
    /** Conversations muted (until when): no push for their messages. */
    private mutes: Map<ConversationId, number> | undefined,
  ) {}

  static async load(id: UserId, deps: ActorDeps): Promise<User> {
    const { store } = deps;
    const rec = await store.getUser(id);
    if (!rec) throw new ParleyError('not_found', `no such user ${id}`);
    const [devs, contacts, lastSeen, mutes] = await Promise.all([store.listDevices(id), store.getContacts(id), store.getLastSeen(id), store.getMutes(id)]);
    const devices = await Promise.all(devs.map((d) => User.deviceState(d, deps))); // sized exactly, not grown
    const now = Date.now();
    for (const [conv, until] of mutes) if (!mutedAt(until, now)) mutes.delete(conv);
    return new User(id, deps, rec, devices, contacts.length ? new Set(contacts) : undefined, lastSeen, mutes.size ? mutes : undefined);
  }

  private static async deviceState(rec: DeviceRecord, deps: ActorDeps): Promise<DeviceState> {
    const key = deviceKey(rec.user, rec.id);
    const fence = fenceKeys.inbox(key);
    // Above every earlier activation's reservation (its writes may be in flight), and above what the inbox
    // holds or the device acked (data from before fences).
    const [claim, last] = await Promise.all([deps.store.claimEpoch(fence), deps.store.inboxLastPtr(key)]);
    const next = Math.max(claim.reserved, last, rec.acked);
    const reserved = next + SEQ_BLOCK;
    await deps.store.reserve(fence, claim.epoch, reserved);
    // Every field up front: a property added later costs V8 a separate backing array per device.
    return {
      id: rec.id, name: rec.name, platform: rec.platform, createdAt: rec.createdAt, lastActive: rec.lastActive,
      push: rec.push, next, floor: next, fence: new SeqFence(claim.epoch, reserved), acked: rec.acked,
      conn: undefined, synced: false, pending: undefined, deferred: 0, ackMs: 0, lastWrite: undefined, writing: undefined, inboxed: undefined, swept: false,
      sent: 0, sentMax: 0, sync: undefined,
    };
  }

  canPassivate(): boolean {
    return this.erased || !this.online() && !this.subscribers?.size;
  }

  /**
   * Once no inbox write is deferred or in flight: the next owner's first sync must see every delivery this
   * one took (a write landing after that sync read past its pointer would reach the device only at its next
   * reconnect, and the conversation's retry would find it held). Deferred writes fall due within the defer
   * window; their timers and completions still reach this entity while its shard drains. The user's sockets
   * reconnect to the next owner, and presence followers subscribe there again.
   */
  canHandOff(): boolean {
    return this.devices.every((d) => !d.deferred && !d.writing?.size);
  }

  dispose(): void {
    deferredWrites.delete(this);
    ackStores.delete(this);
    for (const dev of this.devices) this.writeDeferred(dev);
    this.storeAcks();
  }

  /** The end of an actor turn: the fan-out confirmations it gathered go out, one message per conversation. */
  endTurn(): void {
    this.held = undefined;
    const fanned = this.fanned;
    if (!fanned) return;
    this.fanned = undefined;
    for (const [conv, seqs] of fanned) this.deps.sharding.tell('conv', conv, { t: 'fanned', user: this.id, seqs });
  }

  /** From a node-wide timer: a message into the mailbox, nothing more (the work happens in the entity's turn). */
  wake(t: 'inbox.due' | 'acks.due'): void {
    this.deps.sharding.tell('user', this.id, { t, inc: this.inc });
  }

  /** From the deferred-write timer: wakes the entity once its earliest deferred write is due; false: it left. */
  wakeIfDue(now: number): boolean {
    if (this.nextDue > now) return this.nextDue !== Infinity;
    this.wake('inbox.due');
    return false;
  }

  handle(msg: UserMsg): Promise<void> | void {
    if (this.erased) return this.afterErasure(msg);
    switch (msg.t) {
      case 'erase': return this.answer(msg.reply, () => this.erase());
      case 'deliver': return this.deliver(msg);
      case 'ack': return this.ack(msg);
      case 'inbox.written': return this.inboxWritten(msg);
      case 'inbox.due': if (msg.inc === this.inc) this.writeDue(Date.now()); return;
      case 'acks.due': if (msg.inc === this.inc) this.storeAcks(); return;
      case 'inbox.fence': return this.inboxFenced(msg);
      case 'attach': return this.attach(msg);
      case 'detach': return this.detach(msg);
      case 'sync': return this.sync(msg);
      case 'sync.more': return this.syncMore(msg);
      case 'presence.sub': return this.subscribe(msg);
      case 'presence.unsub': this.subscribers?.delete(connKey(msg.conn)); return;
      case 'node.gone': return this.nodeGone(msg.node);
      case 'profile.set': return this.answer(msg.reply, async () => {
        await this.publishAvatar(msg.avatar);
        await this.deps.store.updateUser(this.id, { name: msg.name, avatar: msg.avatar });
        this.rec = { ...this.rec, ...(msg.name !== undefined ? { name: msg.name } : {}), ...(msg.avatar !== undefined ? { avatar: msg.avatar } : {}) };
        return this.profile();
      });
      case 'profile.get': return this.answer(msg.reply, async () => this.profile());
      case 'settings.set': return this.answer(msg.reply, async () => {
        await this.deps.store.updateUser(this.id, { lastSeenPrivacy: msg.lastSeen });
        this.rec = { ...this.rec, lastSeenPrivacy: msg.lastSeen };
        this.broadcastPresence();
        return { lastSeen: msg.lastSeen };
      });
      case 'contacts': return this.answer(msg.reply, async () => {
        await this.deps.store.setContacts(this.id, msg.add, msg.remove);
        const contacts = (this.contacts ??= new Set());
        for (const u of msg.add) contacts.add(u);
        for (const u of msg.remove) contacts.delete(u);
        this.broadcastPresence();
        return { contacts: [...contacts] };
      });
      case 'device.added': return this.answer(msg.reply, async () => {
        const dev = await this.device(msg.device);
        this.announce({ t: 'device', event: 'added', device: deviceInfo(dev), time: dev.createdAt }, dev.id);
        return { devices: this.devices.length };
      });
      case 'devices.list': return this.answer(msg.reply, async () => ({ devices: this.deviceList(msg.device) }));
      case 'devices.remove': return this.answer(msg.reply, () => this.signOut(msg));
      case 'push.register': return this.answer(msg.reply, async () => {
        const dev = await this.device(msg.device);
        await storeRegistration(this.deps, this.id, dev.id, dev.push, msg.push);
        dev.push = msg.push;
        return { registered: true };
      });
      case 'push.unregister': return this.answer(msg.reply, async () => {
        const dev = await this.device(msg.device);
        await removeRegistration(this.deps, this.id, dev.id, dev.push, 'asked');
        dev.push = undefined;
        return { registered: false };
      });
      case 'push.drop': return this.dropPush(msg);
      case 'mute': return this.answer(msg.reply, () => this.mute(msg));
    }
  }

  // ---- delivery ----

  /**
   * Gives the message the next ptr of each device and pushes it to synced sockets. A device that is offline
   * gets it in its inbox at once; one online gets it written only if its ack doesn't come within
   * `inboxDeferMs`, and most never are. The conversation hears once every device has acked it or holds it
   * durably in its inbox (its sender's tick waits for that).
   */
  private deliver(m: UserDeliver): Promise<void> | void {
    if (m.redelivery) return this.redeliver(m);
    this.writeInboxes(m);
  }

  /**
   * A fan-out retry: confirmed by this entity → only confirm again; else write where it is missing.
   * A retry can arrive while the first write is still in flight (a slow store): it is not confirmed yet, so
   * it is written again where the inbox doesn't show it, and a device may get it twice (clients drop a
   * repeated conv and seq) — never not at all.
   */
  private async redeliver(m: UserDeliver): Promise<void> {
    if (this.written?.has(m.conv, m.seq)) return this.confirmFanned(m.conv, m.seq);
    this.writeInboxes(m, await this.holders(m));
  }

  private writeInboxes(m: UserDeliver, skip?: Set<DeviceId>): void {
    // Behind deliveries waiting for pointers, or itself lacking one: it waits, so each device's ptrs follow the order of arrival.
    if (this.waiting || !this.havePtrs(m, skip)) {
      const waiting = (this.waiting ??= []);
      if (waiting.length < MAX_WAITING) waiting.push({ m, skip });
      return;
    }
    const deferMs = this.deps.config.inboxDeferMs;
    const mine = m.from === this.id;
    const fan: Fanning = { m, left: 0 };
    for (const dev of this.devices) {
      if ((mine && dev.id === m.dev) || skip?.has(dev.id)) continue; // the sending device has it: its tick said so
      const ptr = this.nextPtr(dev);
      fan.left++;
      const d = this.push(dev, ptr, m, mine);
      if (!dev.conn) this.notifyPush(dev, m, mine, ptr);
      if (d) {
        if (deferMs > 0) {
          this.defer(dev, d, fan, deferMs);
          continue;
        }
      }
      this.write(dev, ptr, fan);
    }
    if (fan.left === 0) this.confirmWritten(m);
  }

  /** An inbox write came back: what it settles is settled now, in this turn. Another incarnation's: nothing. */
  private inboxWritten(m: UserInboxWritten): void {
    if (m.inc !== this.inc) return;
    const dev = this.find(m.device);
    const fan = dev?.writing?.get(m.ptr);
    if (!fan) return; // the device was signed out meanwhile (its fan-outs were settled then)
    dev!.writing!.delete(m.ptr);
    // A failed write is not confirmed: the conversation redelivers, and the redelivery writes it again.
    if (!m.failed) this.settle(fan);
  }

  /**
   * A renewal of a device's pointers ended. Reserved: the deliveries waiting for pointers go out. Failed: they
   * are dropped, unconfirmed, and the conversations' retries bring them again (and try the renewal again).
   * Stale: a newer activation claimed the device's pointers, and this one may hand out no more of them. It
   * crashes on purpose, which closes its sockets (the devices resync by pointer) and answers what it holds;
   * the restart claims again, above every reservation. What it wrote stays, at ptrs in its own block. An
   * outcome meant for an earlier activation changes nothing.
   */
  private inboxFenced(m: UserInboxFence): void {
    const dev = this.find(m.device);
    if (dev?.fence.epoch !== m.epoch) return;
    dev.fence.renewing = false;
    if (m.outcome === 'stale') {
      throw new Error(`inbox pointers of device ${m.device} were claimed by a newer activation (this one: epoch ${m.epoch})`);
    }
    if (m.outcome === 'reserved') dev.fence.reservedUpTo(m.upTo);
    const waiting = this.waiting;
    this.waiting = undefined;
    if (m.outcome === 'failed' || !waiting) return;
    for (let i = 0; i < waiting.length; i++) {
      const w = waiting[i]!;
      if (!this.havePtrs(w.m, w.skip)) {
        this.waiting = waiting.slice(i);
        return;
      }
      this.writeInboxes(w.m, w.skip);
    }
  }

  /**
   * Deliveries waiting, in arrival order, for a device's pointers: only a ptr the store has reserved is handed
   * out (a restart starts above the stored reservation, and a device drops a delivery whose ptr it already
   * holds, so a ptr above it could come again with another message, which the device would never show).
   * Bounded: past it a delivery is dropped unconfirmed, and its conversation sends it again.
   */
  private waiting?: { m: UserDeliver; skip: Set<DeviceId> | undefined }[];

  /** Whether every device `m` goes to has a reserved ptr for it; for one that hasn't, a renewal is started. */
  private havePtrs(m: UserDeliver, skip: Set<DeviceId> | undefined): boolean {
    const mine = m.from === this.id;
    let all = true;
    for (const dev of this.devices) {
      if ((mine && dev.id === m.dev) || skip?.has(dev.id)) continue;
      if (dev.fence.covers(dev.next + 1)) continue;
      this.renew(dev, dev.next + 1);
      all = false;
    }
    return all;
  }

  /** The device's next inbox ptr (havePtrs said there is one), renewing the reservation halfway through the block. */
  private nextPtr(dev: DeviceState): number {
    const ptr = ++dev.next;
    this.renew(dev, ptr);
    return ptr;
  }

  private renew(dev: DeviceState, ptr: number): void {
    const upTo = dev.fence.renewal(ptr);
    if (upTo === undefined) return;
    const { id } = dev;
    const { epoch } = dev.fence;
    const { sharding } = this.deps;
    const tell = (outcome: UserInboxFence['outcome']) => sharding.tell('user', this.id, { t: 'inbox.fence', device: id, epoch, upTo, outcome });
    this.deps.store.reserve(fenceKeys.inbox(deviceKey(this.id, id)), epoch, upTo).then(() => tell('reserved'), (err: unknown) => {
      const stale = err instanceof ParleyError && err.code === 'stale_owner';
      if (!stale) log('warn', 'inbox pointers not reserved; the deliveries waiting for them are retried', { user: this.id, error: String(err) });
      tell(stale ? 'stale' : 'failed');
    });
  }

  /** Pushes a delivery to a synced socket; undefined when the device isn't there to take it. */
  private push(dev: DeviceState, ptr: number, m: UserDeliver, mine: boolean): Delivery | undefined {
    if (!dev.conn || !dev.synced) return undefined;
    const pending = (dev.pending ??= new Unacked());
    const d: Delivery = { ptr, conv: m.conv, seq: m.seq, mine, fan: undefined, due: 0, at: Date.now(), sent: mine || m.redelivery ? 0 : m.ts ?? 0 };
    pending.add(d);
    if (pending.size > MAX_UNACKED) {
      this.deps.gateway.close(dev.conn, CloseCodes.unacked, 'too many unacknowledged messages; ack, then sync');
      this.release(dev);
      return undefined;
    }
    // A socket that is gone drops it; its `detach` follows, and writes what it was sent and didn't ack.
    this.deps.gateway.send(dev.conn, { t: 'delivery', ptr, packed: m.packed });
    dev.sent = ptr;
    if (ptr > dev.sentMax) dev.sentMax = ptr;
    return d;
  }

  /** The write waits for the ack: one in time settles the message without touching the store. */
  private defer(dev: DeviceState, d: Delivery, fan: Fanning, ms: number): void {
    d.fan = fan;
    d.due = d.at + Math.min(Math.max(ms, 2 * dev.ackMs), DEFER_STRETCH_MAX * ms);
    dev.deferred++;
    if (d.due < this.nextDue) this.nextDue = d.due;
    deferredWrites.add(this);
  }

  /** Writes the deferred deliveries whose ack is overdue, and notes when the next falls due. */
  private writeDue(now: number): void {
    for (const dev of this.devices) {
      if (!dev.deferred) continue;
      for (const d of dev.pending!.values()) {
        if (!d.fan) continue;
        if (d.due > now) break; // ptr order is due order
        this.write(dev, d.ptr, take(dev, d));
      }
    }
    this.dueAgain();
  }

  /** The earliest deferred write still waiting (acks settle many without a write), for the timer's next wake. */
  private dueAgain(): void {
    let next = Infinity;
    for (const dev of this.devices) {
      if (!dev.deferred) continue;
      for (const d of dev.pending!.values()) if (d.fan) { next = Math.min(next, d.due); break; }
    }
    this.nextDue = next;
    if (next !== Infinity) deferredWrites.add(this);
  }

  /** The socket is going: what it was sent and hasn't acked is written now. */
  private writeDeferred(dev: DeviceState): void {
    if (dev.deferred) for (const d of dev.pending!.values()) if (d.fan) this.write(dev, d.ptr, take(dev, d));
  }

  private write(dev: DeviceState, ptr: number, fan: Fanning): void {
    const { m } = fan;
    const expiresAt = Date.now() + this.deps.config.inboxTtlMs;
    const write = this.deps.store.inboxPut(deviceKey(this.id, dev.id), { ptr, conv: m.conv, seq: m.seq, packed: m.packed, expiresAt });
    dev.lastWrite = write;
    (dev.writing ??= new Map()).set(ptr, fan);
    const inboxed = (dev.inboxed ??= []);
    if (inboxed.push(ptr) > INBOXED_MAX) this.forgetInboxed(dev);
    const { id, inc, deps: { sharding } } = this;
    const device = dev.id;
    write.then(
      () => sharding.tell('user', id, { t: 'inbox.written', inc, device, ptr }),
      (err: unknown) => {
        log('error', 'inbox write failed', { user: id, conv: m.conv, seq: m.seq, error: String(err) });
        sharding.tell('user', id, { t: 'inbox.written', inc, device, ptr, failed: true });
      },
    );
  }

  private settle(fan: Fanning): void {
    if (--fan.left === 0) this.confirmWritten(fan.m);
  }

  /** Too many to track: the next delete scans the inbox up to the acked ptr instead. */
  private forgetInboxed(dev: DeviceState): void {
    dev.inboxed = undefined;
    dev.swept = false;
  }

  /** What this entity's inboxes are known to hold (confirmed writes), for redeliveries. */
  private written?: WrittenSeqs;
  private confirmWritten(m: UserDeliver): void {
    (this.written ??= new WrittenSeqs()).add(m.conv, m.seq);
    this.confirmFanned(m.conv, m.seq);
  }

  /**
   * Devices whose inbox holds a redelivered message, unacked. Not the conversation's delivered cursor: it is
   * a high-water mark, and a message a crash interrupted is below a later one acked; a device that acked it
   * gets it again, and drops the repeated (conv, seq).
   */
  private async holders(m: UserDeliver): Promise<Set<DeviceId>> {
    const out = new Set<DeviceId>();
    const key = `${m.conv}\u0000${m.seq}`;
    for (const dev of this.devices) if ((await this.inboxHeld(dev)).has(key)) out.add(dev.id);
    return out;
  }

  /**
   * What a device's inbox holds unacked, as conv/seq keys: read once per actor turn however many redeliveries
   * the turn handles (a conversation re-driving its log sends many at once). Forgotten at the end of the turn.
   * Only entries this activation wrote count: an earlier one's (below `floor`) may have landed after the
   * device's sync read past it, and acks above it would hide it for good; such a message is written again
   * (the device drops the repeated conv and seq if it had it).
   */
  private held?: Map<DeviceId, Promise<Set<string>>>;
  private inboxHeld(dev: DeviceState): Promise<Set<string>> {
    const held = (this.held ??= new Map());
    let keys = held.get(dev.id);
    if (!keys) {
      keys = this.deps.store.inboxRange(deviceKey(this.id, dev.id), dev.acked, MAX_UNACKED)
        .then((entries) => new Set(entries.filter((e) => e.ptr > dev.floor).map((e) => `${e.conv}\u0000${e.seq}`)));
      held.set(dev.id, keys);
    }
    return keys;
  }

  /**
   * Confirmations are batched per conversation and sent at the end of the turn (endTurn): one message for all
   * the writes a commit resolved, whose completions arrive together.
   */
  private fanned?: Map<ConversationId, number[]>;
  private confirmFanned(conv: ConversationId, seq: number): void {
    const fanned = (this.fanned ??= new Map());
    const list = fanned.get(conv);
    if (list) list.push(seq);
    else fanned.set(conv, [seq]);
  }

  /**
   * A device with no open socket is woken through its push registration, whatever the user's other devices
   * do; not for its own user's messages, a muted conversation, or kinds that don't notify. The dispatcher
   * (src/push/dispatcher.ts) coalesces and sends outside this entity.
   */
  private notifyPush(dev: DeviceState, m: UserDeliver, mine: boolean, ptr: number): void {
    if (!dev.push || mine || m.redelivery || !pushable(m.kind) || mutedAt(this.mutes?.get(m.conv), Date.now())) return;
    this.deps.push.notify(pushNotice(this.id, dev.id, dev.push, m, ptr));
  }

  /** The service called the registration dead, or its token moved to another device: gone, unless the device registered anew. */
  private async dropPush(m: UserPushDrop): Promise<void> {
    const dev = this.find(m.device);
    if (!dev?.push || dev.push.platform !== m.platform || dev.push.token !== m.token) return;
    const old = dev.push;
    dev.push = undefined;
    await removeRegistration(this.deps, this.id, dev.id, old, m.why)
      .catch((err: unknown) => log('warn', 'dead push registration not removed from the store', { user: this.id, device: dev.id, error: String(err) }));
  }

  private async mute(m: UserMute): Promise<{ conv: ConversationId; until: number }> {
    const now = Date.now();
    const on = mutedAt(m.until, now);
    if (on && !this.mutes?.has(m.conv) && (this.mutes?.size ?? 0) >= MAX_MUTES) {
      throw new ParleyError('invalid', `at most ${MAX_MUTES} conversations may be muted at once; unmute one first`);
    }
    await this.deps.store.setMute(this.id, m.conv, on ? m.until : 0);
    if (on) (this.mutes ??= new Map()).set(m.conv, m.until);
    else this.mutes?.delete(m.conv);
    return { conv: m.conv, until: on ? m.until : 0 };
  }

  private ack(m: UserAck): void {
    const dev = this.find(m.device);
    if (!dev) return;
    this.ackUpTo(dev, Math.min(m.ptr, dev.next));
  }

  /** Cumulative: everything up to ptr reached the device. Senders learn "delivered"; the inbox forgets it soon. */
  private ackUpTo(dev: DeviceState, ptr: number): void {
    if (ptr <= dev.acked) return;
    // The highest seq acked per conversation; most acks cover one, which needs no Map.
    let conv: ConversationId | undefined;
    let seq = 0;
    let others: Map<ConversationId, number> | undefined;
    let pushedAt = 0;
    let sentAt = 0;
    let settled = false;
    const { pending } = dev;
    if (pending) for (let d = pending.first(); d && d.ptr <= ptr; d = pending.first()) {
      pending.shift();
      pushedAt = d.at;
      sentAt = d.sent;
      if (d.fan) {
        this.settle(take(dev, d)); // acked in time: never written
        settled = true;
      }
      if (d.mine) continue;
      if (conv === undefined || conv === d.conv) {
        conv = d.conv;
        if (d.seq > seq) seq = d.seq;
      } else {
        others ??= new Map();
        others.set(d.conv, Math.max(others.get(d.conv) ?? 0, d.seq));
      }
    }
    if (settled) this.dueAgain();
    dev.acked = ptr;
    // The newest delivery acked times the round trip (TCP's smoothing, 1/8); sync pages are not timed.
    if (pushedAt) {
      const took = Date.now() - pushedAt;
      dev.ackMs = dev.ackMs ? dev.ackMs + (took - dev.ackMs) / 8 : took;
      // The same delivery, from its send (the conversation's clock: in a cluster, another node's).
      if (sentAt) this.deps.analytics?.delivered(Math.max(0, Date.now() - sentAt));
    }
    if (!this.ackDirty) {
      this.ackDirty = new Set();
      ackStores.add(this);
    }
    this.ackDirty.add(dev);
    if (conv !== undefined) this.tellDelivered(conv, seq);
    if (others) for (const [c, upTo] of others) this.tellDelivered(c, upTo);
  }

  private tellDelivered(conv: ConversationId, upTo: number): void {
    // The confirmations this ack settled ride along: one message to the conversation instead of two.
    const fanned = this.fanned?.get(conv);
    if (fanned) this.fanned!.delete(conv); // then not in endTurn's batch
    this.deps.sharding.tell('conv', conv, fanned ? { t: 'delivered', user: this.id, upTo, fanned } : { t: 'delivered', user: this.id, upTo });
  }

  /**
   * Acked entries leave the inbox (and the device record its acked ptr) in one write per device at most once
   * per ACK_STORE_DELAY_MS, not one per ack: a delete for each message would double the store's writes.
   * Reads start after the in-memory acked ptr, so entries waiting to be deleted are never delivered twice
   * while this entity lives; after a node failure up to that delay's worth may be (the client drops them by
   * conv and seq).
   */
  private ackDirty?: Set<DeviceState>;
  private storeAcks(): void {
    const { store } = this.deps;
    if (!this.ackDirty) return;
    for (const dev of this.ackDirty) {
      const key = deviceKey(this.id, dev.id);
      const ptr = dev.acked;
      const held = this.heldUpTo(dev, ptr);
      dev.lastWrite = settled(dev.lastWrite)
        .then(() => Promise.all([
          held?.length === 0 ? undefined : store.inboxDeleteUpTo(key, ptr, held),
          store.setDeviceAcked(this.id, dev.id, ptr),
        ]))
        .catch((err) => log('warn', 'inbox ack not stored', { user: this.id, error: String(err) }));
    }
    this.ackDirty = undefined;
  }

  /**
   * The inbox entries up to `ptr` that this entity knows of, taken off its list; undefined the first time in
   * its life, when entries written before it loaded may be there too.
   */
  private heldUpTo(dev: DeviceState, ptr: number): number[] | undefined {
    const held: number[] = [];
    const later: number[] = [];
    for (const p of dev.inboxed ?? []) (p <= ptr ? held : later).push(p);
    dev.inboxed = later.length ? later : undefined;
    if (dev.swept) return held;
    dev.swept = true;
    return undefined;
  }

  // ---- sockets ----

  private async attach(m: UserAttach): Promise<void> {
    const dev = await this.device(m.device);
    const wasOnline = this.online();
    if (dev.conn && connKey(dev.conn) !== connKey(m.conn)) {
      this.deps.gateway.close(dev.conn, CloseCodes.replaced, 'this device connected again elsewhere');
    }
    this.writeDeferred(dev);
    dev.conn = m.conn;
    dev.synced = false;
    dev.pending = undefined;
    dev.sent = 0;
    dev.sync = undefined;
    dev.ackMs = 0; // a new socket: its round trip is timed afresh
    if (!wasOnline) {
      // Stored now too: if this entity dies with its node while the user is online, the next activation
      // shows them offline since they were last known here, not with no last seen at all.
      this.lastSeen = Date.now();
      this.deps.store.setLastSeen(this.id, this.lastSeen).catch((err) => log('warn', 'last seen not stored', { error: String(err) }));
      this.broadcastPresence();
    }
    this.deps.sharding.reply(m.reply, { ok: true, value: { acked: dev.acked } });
  }

  private detach(m: UserDetach): void {
    const dev = this.find(m.device);
    if (!dev?.conn || connKey(dev.conn) !== connKey(m.conn)) return;
    this.release(dev);
  }

  /** A node failed or left: its sockets went without a detach. Its devices are offline here now. */
  private nodeGone(node: string): void {
    for (const [key, s] of this.subscribers ?? []) if (s.conn.node === node) this.subscribers!.delete(key);
    for (const dev of this.devices) if (dev.conn?.node === node) this.release(dev);
  }

  private release(dev: DeviceState): void {
    this.writeDeferred(dev);
    dev.conn = undefined;
    dev.synced = false;
    dev.pending = undefined;
    dev.sent = 0;
    dev.sync = undefined;
    this.storeAcks();
    dev.lastActive = Date.now();
    this.deps.store.setDeviceActive(this.id, dev.id, dev.lastActive).catch((err) => log('warn', 'device activity not stored', { error: String(err) }));
    this.maybeOffline();
  }

  /** The user's last socket went: last seen is now. */
  private maybeOffline(): void {
    if (this.online()) return;
    this.lastSeen = Date.now();
    this.deps.store.setLastSeen(this.id, this.lastSeen).catch((err) => log('warn', 'last seen not stored', { error: String(err) }));
    this.broadcastPresence();
  }

  /**
   * Streams the inbox after the client's pointer, in order, a page (SYNC_PAGE) at a time, each page in slices
   * the socket can take: `room` bytes now, the next slice when its send buffer has drained (`sync.more`), so
   * a page of large messages never meets the backpressure cap. Until the page's last slice the device is not
   * `synced`: live deliveries meanwhile are written to the inbox at once, and the sync reaches them in ptr
   * order; the read that finds nothing more and the `synced` frame happen in one actor turn (the actor is
   * busy while it reads, so live deliveries wait in its mailbox), and from then on deliveries are pushed.
   * So live deliveries follow the sync: no gap, no duplicate. `since` also acks everything up to it.
   *
   * Work per device is bounded: one sync at a time per socket (another meanwhile only acks; the running one's
   * `synced` answers both); a sync never sends again what its own socket was sent (TCP delivered it, or the
   * socket is gone); what an earlier socket of the device was sent and never acked draws on the device's
   * resend budget, so a client reconnecting in a loop with `since: 0` is refused (`rate_limited`) past it.
   */
  private async sync(m: UserSync): Promise<void> {
    const dev = this.find(m.device);
    if (!dev?.conn || connKey(dev.conn) !== connKey(m.conn)) return;
    const since = Math.min(m.since, dev.next);
    this.ackUpTo(dev, since);
    if (dev.sync) return;
    const start = Math.max(since, dev.acked, dev.sent);
    if (start >= dev.next) {
      // Every ptr handed out is acked or was sent on this socket: nothing to read.
      return this.sendSynced(dev, m.conn, start, false);
    }
    const resend = resendCount(start, dev.sentMax, SYNC_PAGE);
    if (resend > 0) {
      const { budgets, config } = this.deps;
      const wait = budgets.syncResend.take(deviceKey(this.id, dev.id), Date.now(), Math.min(resend, config.shaping.syncResend.burst));
      if (wait) throw rateLimited(`this device was sent ${resend} of these messages before and has not acked them`, wait);
    }
    dev.synced = false;
    const run: SyncRun = { conn: m.conn, rid: m.rid, last: start, count: 0, ahead: [], at: 0, avg: FIRST_AVG_BYTES };
    dev.sync = run;
    await this.slice(dev, run, m.room);
  }

  private async syncMore(m: UserSyncMore): Promise<void> {
    const dev = this.find(m.device);
    const run = dev?.sync;
    if (!run || connKey(run.conn) !== connKey(m.conn)) return; // the socket went, or the sync ended
    await this.slice(dev!, run, m.room);
  }

  /** A slice whose store read failed ends the sync with the error (so the client may sync again); a bug still crashes. */
  private async slice(dev: DeviceState, run: SyncRun, room: number): Promise<void> {
    try {
      await this.sendSlice(dev, run, room);
    } catch (err) {
      if (dev.sync === run) dev.sync = undefined;
      if (!(err instanceof ParleyError)) throw err;
      this.deps.gateway.send(run.conn, errorFrame({ rid: run.rid }, err));
    }
  }

  /**
   * Sends entries while the socket has room, reading the inbox as needed (about a slice at a time); then ends
   * the page with `synced`, or asks the socket to say when it has drained (`conn.drain` → `sync.more`).
   */
  private async sendSlice(dev: DeviceState, run: SyncRun, room: number): Promise<void> {
    const { gateway, store } = this.deps;
    let exhausted = false; // a read in this turn found fewer than it asked for: the inbox has nothing more
    for (;;) {
      if (run.at === run.ahead.length) {
        const left = SYNC_PAGE - run.count;
        if (left === 0 || exhausted) return this.endSync(dev, run, !exhausted && run.last < dev.next);
        if (room <= 0) break;
        await settled(dev.lastWrite); // the inbox holds every entry written so far
        run.last = Math.max(run.last, dev.acked); // a sync coalesced into this one may have acked further
        const n = readCount(room, run.avg, left);
        const read = await store.inboxRange(deviceKey(this.id, dev.id), run.last, n);
        if (dev.sync !== run) return; // the socket went (or was replaced) while we read
        exhausted = read.length < n;
        run.ahead = read;
        run.at = 0;
        if (read.length) run.avg = averageBytes(read);
        continue;
      }
      if (room <= 0) break;
      const e = run.ahead[run.at++]!;
      const pending = (dev.pending ??= new Unacked());
      pending.add({ ptr: e.ptr, conv: e.conv, seq: e.seq, mine: false, fan: undefined, due: 0, at: 0, sent: 0 });
      if ((dev.inboxed ??= []).push(e.ptr) > INBOXED_MAX) this.forgetInboxed(dev);
      if (pending.size > MAX_UNACKED) {
        gateway.close(run.conn, CloseCodes.unacked, 'too many unacknowledged messages; ack, then sync');
        return this.release(dev);
      }
      gateway.send(run.conn, { t: 'delivery', ptr: e.ptr, packed: e.packed });
      run.last = e.ptr;
      run.count++;
      dev.sent = e.ptr;
      if (e.ptr > dev.sentMax) dev.sentMax = e.ptr;
      room -= e.packed.byteLength + DELIVERY_OVERHEAD;
    }
    gateway.send(run.conn, { t: 'conn.drain' });
  }

  private endSync(dev: DeviceState, run: SyncRun, more: boolean): void {
    dev.sync = undefined;
    this.sendSynced(dev, run.conn, run.last, more);
  }

  /** The end of a sync page; after the last, first the news of devices added while this one was away. */
  private sendSynced(dev: DeviceState, conn: ConnRef, ptr: number, more: boolean): void {
    dev.synced = !more;
    if (!more) this.catchUpDevices(dev, conn);
    this.deps.gateway.send(conn, { t: 'synced', ptr, ...(more ? { more: true as const } : {}) });
  }

  private find(id: DeviceId): DeviceState | undefined {
    for (const d of this.devices) if (d.id === id) return d;
    return undefined;
  }

  private async device(id: DeviceId): Promise<DeviceState> {
    let dev = this.find(id);
    if (!dev) {
      // Registered after this entity loaded.
      const rec = await this.deps.store.getDevice(this.id, id);
      if (!rec) throw new ParleyError('signed_out', 'this device was signed out');
      dev = await User.deviceState(rec, this.deps);
      this.devices.push(dev);
    }
    return dev;
  }

  // ---- the device list ----

  private deviceList(current: DeviceId): DeviceInfo[] {
    return this.devices
      .map((d) => ({ ...deviceInfo(d), online: d.conn !== undefined, ...(d.id === current ? { current: true as const } : {}) }))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** News of the device list, to the user's other sockets that have synced (the rest catch up when they do). */
  private announce(frame: DeviceEventFrame, except: DeviceId): void {
    for (const d of this.devices) if (d.id !== except && d.conn && d.synced) this.deps.gateway.send(d.conn, frame);
  }

  /** A device that has just synced hears of the devices signed in since it was last connected. */
  private catchUpDevices(dev: DeviceState, conn: ConnRef): void {
    for (const d of addedSince(this.devices, dev.id, dev.lastActive ?? dev.createdAt)) {
      this.deps.gateway.send(conn, { t: 'device', event: 'added', device: deviceInfo(d), time: d.createdAt });
    }
    dev.lastActive = Date.now();
  }

  /**
   * Signs devices out. The records go first, inside this turn: from then on their tokens are refused on
   * every node (authenticate reads the record), and the messages queued behind this one (a delivery, a
   * sync, an attach of that device, a sign-in) see the list without them, so nothing in flight brings one
   * back. A sign-in this entity hasn't heard of yet is not in the list, and stays signed in.
   */
  private async signOut(m: UserDevicesRemove): Promise<SignOutResult> {
    const by = this.find(m.by);
    if (!by) throw new ParleyError('signed_out', 'this device was signed out');
    const targets = signOutTargets(this.devices, m.by, m.which);
    const wait = signOutWait(by, targets, Date.now(), this.deps.config.deviceTrustMs);
    if (wait !== undefined) {
      throw new ParleyError('device_too_new', `a device signed in this recently can't sign out older devices; use an older one, or try again in ${humanWait(wait)}`, wait);
    }
    const { store } = this.deps;
    const done = await Promise.allSettled(targets.map((d) => store.deleteDevice(this.id, d.id)));
    const gone = targets.filter((_, i) => done[i]!.status === 'fulfilled');
    for (const d of gone) this.forget(d, m.asker);
    for (const d of gone) {
      void this.deps.push.withdraw(this.id, d.id);
      if (d.push) void releaseToken(this.deps, this.id, d.id, d.push);
    }
    // An inbox left behind (the store failed) is unreachable, and expires with its entries.
    await Promise.all(gone.map((d) => store.inboxDrop(deviceKey(this.id, d.id))
      .catch((err) => log('warn', 'inbox of a signed-out device not dropped', { user: this.id, device: d.id, error: String(err) }))));
    // Its keys go too: nobody can add a signed-out device to a group any more.
    await Promise.all(gone.map((d) => store.e2e.dropDeviceKeys(this.id, d.id)
      .catch((err) => log('warn', 'keys of a signed-out device not dropped', { user: this.id, device: d.id, error: String(err) }))));
    if (gone.length < targets.length) {
      // The asker's session closes its socket only on success: signed out anyway, it is closed here.
      if (m.asker && gone.some((d) => d.id === m.by)) this.deps.gateway.close(m.asker, CloseCodes.signedOut, 'this device was signed out');
      throw new ParleyError('store_unavailable', `${targets.length - gone.length} of ${targets.length} devices were not signed out; try again`);
    }
    return { signedOut: gone.map((d) => d.id) };
  }

  /** A signed-out device leaves the list; its socket closes, unless it is `asker` (its session closes it). */
  private forget(dev: DeviceState, asker: ConnRef | undefined): void {
    this.devices.splice(this.devices.indexOf(dev), 1);
    // What waited for the device's ack or inbox write needs neither now, and its senders' ticks must not wait for it.
    if (dev.deferred) for (const d of dev.pending!.values()) if (d.fan) this.settle(take(dev, d));
    if (dev.writing) for (const fan of dev.writing.values()) this.settle(fan);
    dev.writing = undefined;
    this.ackDirty?.delete(dev);
    const conn = dev.conn;
    dev.conn = undefined;
    dev.synced = false;
    dev.pending = undefined;
    if (conn && !(asker && connKey(asker) === connKey(conn))) {
      this.deps.gateway.close(conn, CloseCodes.signedOut, 'this device was signed out');
    }
    this.announce({ t: 'device', event: 'removed', device: deviceInfo(dev), time: Date.now() }, dev.id);
    if (conn) this.maybeOffline();
  }

  // ---- erasure (src/gdpr/erasure.ts) ----

  /** The account is being erased: every device goes at once, including any signed in that this entity hasn't heard of. */
  private erased = false;

  /**
   * Signs every device out, inside this turn: first what hangs off each device (push tokens, owed
   * notifications, inboxes and their fences: found through the device records, so these go while the records
   * are there, and a crash half-way finds them again), then the records (from then on every token of the user
   * is refused, on every node), then the sockets (4401). Whatever is queued behind this message finds an
   * erased entity (afterErasure): nothing writes for a device again.
   */
  private async erase(): Promise<{ devices: number }> {
    this.erased = true;
    deferredWrites.delete(this);
    ackStores.delete(this);
    const { store } = this.deps;
    const inStore = await store.listDevices(this.id);
    const all = new Map<DeviceId, PushRegistration | undefined>(inStore.map((d) => [d.id, d.push]));
    for (const d of this.devices) all.set(d.id, d.push ?? all.get(d.id));
    await Promise.all([...all].map(async ([id, push]) => {
      const key = deviceKey(this.id, id);
      await this.deps.push.withdraw(this.id, id); // a push in flight has written what it writes before the account step drops it
      if (push) await releaseToken(this.deps, this.id, id, push);
      await Promise.all([store.deletePushMark(key), store.inboxDrop(key), store.dropFence(fenceKeys.inbox(key))]);
    }));
    await Promise.all([...all.keys()].map((id) => store.deleteDevice(this.id, id)));
    for (const d of [...this.devices]) this.forget(d, undefined);
    this.subscribers = undefined;
    return { devices: all.size };
  }

  /** An erased user: deliveries are confirmed with nothing to write (no device is left), every question refused. */
  private afterErasure(msg: UserMsg): void {
    if (msg.t === 'deliver') return void this.deps.sharding.tell('conv', msg.conv, { t: 'fanned', user: this.id, seqs: [msg.seq] });
    if (msg.t === 'erase') return this.deps.sharding.reply(msg.reply, { ok: true, value: { devices: 0 } });
    if ('reply' in msg && msg.reply) throw new ParleyError('signed_out', 'this account was deleted');
  }

  // ---- presence ----

  private online(): boolean {
    for (const d of this.devices) if (d.conn) return true;
    return false;
  }

  private subscribe(m: UserPresenceSub): void {
    const subscribers = (this.subscribers ??= new Map());
    if (subscribers.size >= MAX_PRESENCE_SUBSCRIBERS) throw new ParleyError('rate_limited', 'too many presence subscribers for this user');
    subscribers.set(connKey(m.conn), { conn: m.conn, viewer: m.viewer });
    this.deps.gateway.send(m.conn, this.presenceFor(m.viewer));
  }

  /** What a viewer may see: hidden presence reads as offline with no last seen. */
  private presenceFor(viewer: UserId): PresenceFrame {
    const p = this.rec.lastSeenPrivacy;
    const visible = viewer === this.id || p === 'everyone' || (p === 'contacts' && this.contacts?.has(viewer) === true);
    const online = visible && this.online();
    return { t: 'presence', user: this.id, online, ...(visible && !online && this.lastSeen !== undefined ? { lastSeen: this.lastSeen } : {}) };
  }

  private broadcastPresence(): void {
    // A subscriber whose socket went is dropped by its `presence.unsub`.
    if (this.subscribers) for (const s of this.subscribers.values()) this.deps.gateway.send(s.conn, this.presenceFor(s.viewer));
  }

  /** A name equal to the number is an account's from before names were optional: it is not shown. */
  private profile() {
    const { id, name, phone, avatar, createdAt } = this.rec;
    return { id, ...(name && name !== phone ? { name } : {}), createdAt, ...(avatar ? { avatar } : {}) };
  }

  /**
   * An avatar is an image this user uploaded: not a URL to track viewers with, nor a picture someone shared
   * with them (a profile picture is anyone's to see, so it becomes public here).
   */
  private async publishAvatar(avatar: string | undefined): Promise<void> {
    if (avatar === undefined) return;
    const media = await this.deps.store.getMedia(avatar);
    if (!media || media.owner !== this.id || !media.mime.startsWith('image/')) {
      throw new ParleyError('invalid', 'avatar must be the id of an image you uploaded');
    }
    await this.deps.store.putMediaRefs(avatar, [{ holder: PUBLIC_HOLDER, seq: 0 }]);
  }

  private async answer(reply: string, f: () => Promise<unknown>): Promise<void> {
    this.deps.sharding.reply(reply, { ok: true, value: await f() });
  }
}

/** Takes a delivery's deferred write off it: it is being written, or needs no write. */
function take(dev: DeviceState, d: Delivery): Fanning {
  const fan = d.fan!;
  d.fan = undefined;
  dev.deferred--;
  return fan;
}
