import { open, type RootDatabase } from 'lmdb';
import { ANALYTICS_KEEP_MS, DEV_OUTBOX_KEEP, DEV_OUTBOX_TTL_MS, fenceKeys, type DevOutbox, type DevOutboxEntry } from '../store.js';
import { parseConversationId, type ConversationId, type DeviceId, type GroupId, type UserId } from '../../protocol/ids.js';
import type { Message } from '../../protocol/frames.js';
import { ParleyError } from '../../protocol/errors.js';
import { pack } from '../../protocol/codec.js';
import { Table } from './table.js';
import { WriteBatch } from './write-batch.js';
import { LmdbE2e } from './lmdb-e2e.js';
import type {
  AnalyticsRow, DeviceKey, DeviceRecord, ErasureRecord, FenceClaim, FenceKey, GroupRecord, HistoryQuery, InboxEntry, JournalEvent, MediaGrant, MediaHolder, MediaRecord, MediaRef, OtpRecord,
  OtpStep, PushMark, PushRegistration, ReceiptCursor, SnapshotRecord, Store, UserRecord,
} from '../store.js';

type Key = (string | number)[];
const SYNC_EVERY_MS = 1000;
/** At most one commit per window: adds up to this much to a write's latency, saves a commit per write under load. */
const COMMIT_WINDOW_MS = 2;

/**
 * The embedded store: one LMDB environment, one named database per table, composite array keys so that
 * LMDB's key order gives the same clustering the Scylla tables have. Values are plain msgpack (our codec),
 * stored as bytes: a message is kept exactly as it was packed for delivery.
 *
 * Writes go through a WriteBatch: one transaction per commit window (2 ms), LMDB failures (disk or map full)
 * answered as store_unavailable. A write's promise resolves when its
 * transaction is committed into the file (the OS holds it: it survives the process crashing or being
 * killed) and the file is synced to disk every second — the trade ScyllaDB's periodic commitlog sync makes.
 * With `flushEachWrite` (PARLEY_LMDB_FLUSH=1) each batch is synced before its promises resolve, surviving
 * power loss too.
 */
export class LmdbStore implements Store {
  readonly kind = 'lmdb' as const;
  private readonly root: RootDatabase;
  private readonly batch: WriteBatch;
  private readonly messages: Table<Message, Key>;
  private readonly dedupe: Table<number, Key>;
  private readonly cursors: Table<ReceiptCursor, Key>;
  private readonly inbox: Table<InboxEntry, Key>;
  private readonly inboxHigh: Table<number, string>;
  private readonly users: Table<UserRecord, string>;
  private readonly phones: Table<UserId, string>;
  private readonly devices: Table<DeviceRecord, Key>;
  private readonly otpState: Table<OtpRecord, string>;
  private readonly contacts: Table<true, Key>;
  private readonly lastSeen: Table<number, string>;
  private readonly groups: Table<GroupRecord, string>;
  private readonly userGroupsDb: Table<true, Key>;
  private readonly media: Table<MediaRecord, string>;
  private readonly mediaRefs: Table<number, Key>;
  private readonly journal: Table<JournalEvent, Key>;
  private readonly snapshots: Table<SnapshotRecord, Key>;
  private readonly fences: Table<FenceClaim, string>;
  private readonly fanoutMarks: Table<number, string>;
  private readonly remembered: Table<number, string>;
  private readonly pushTokens: Table<DeviceKey, string>;
  private readonly mutes: Table<number, Key>;
  private readonly pushMarks: Table<PushMark, string>;
  /** [box, key, at, n] → bytes; `n` orders the entries of one millisecond. */
  private readonly devOutbox: Table<Uint8Array, Key>;
  // Privacy indexes (docs/architecture.md, "GDPR"): user → 1:1 conversations, contact → who has them, uploader → media.
  private readonly userConvs: Table<true, Key>;
  private readonly contactsRev: Table<true, Key>;
  private readonly uploads: Table<true, Key>;
  private readonly erasures: Table<ErasureRecord, string>;
  readonly e2e: LmdbE2e;
  /** [period, source] → an analytics aggregate (src/analytics/aggregate.ts); swept ANALYTICS_KEEP_MS after it was written. */
  private readonly analytics: Table<{ at: number; data: Uint8Array }, Key>;
  /** Messages older than this are swept (PARLEY_RETENTION N days); undefined: kept. */
  private readonly retentionMs: number | undefined;
  private retentionSweeper?: NodeJS.Timeout;
  private sweeper: NodeJS.Timeout;
  private syncer?: NodeJS.Timeout;

  constructor(path: string, opts: { sweepEveryMs?: number; flushEachWrite?: boolean; commitWindowMs?: number; retentionMs?: number; retentionSweepMs?: number } = {}) {
    this.root = open({ path, maxDbs: 48, mapSize: 2 ** 34, noSync: true });
    this.batch = new WriteBatch(this.root, opts.commitWindowMs ?? COMMIT_WINDOW_MS, storeError, opts.flushEachWrite ? () => this.sync() : undefined);
    if (!opts.flushEachWrite) {
      this.syncer = setInterval(() => void this.sync().catch(() => undefined), SYNC_EVERY_MS);
      this.syncer.unref();
    }
    // Table names carry the value format's version: a data directory of another format is not misread.
    const db = <V, K extends Key | string>(name: string) => new Table<V, K>(this.root.openDB<Buffer, K>({ name: `${name}.2`, encoding: 'binary' }));
    this.messages = db('messages');
    this.dedupe = db('dedupe');
    this.cursors = db('cursors');
    this.inbox = db('inbox');
    this.inboxHigh = db('inbox_high');
    this.users = db('users');
    this.phones = db('phones');
    this.devices = db('devices');
    // Not 'otps': the one-time-code record changed shape, and codes in that table lived 5 minutes anyway.
    this.otpState = db('otp_state');
    this.contacts = db('contacts');
    this.lastSeen = db('last_seen');
    this.groups = db('groups');
    this.userGroupsDb = db('user_groups');
    this.media = db('media');
    this.mediaRefs = db('media_refs');
    this.fanoutMarks = db('fanout_marks');
    this.remembered = db('remembered_convs');
    this.journal = db('journal');
    this.snapshots = db('snapshots');
    this.fences = db('fences');
    this.pushTokens = db('push_tokens');
    this.mutes = db('mutes');
    this.pushMarks = db('push_marks');
    this.devOutbox = db('dev_outbox');
    this.userConvs = db('user_convs');
    this.contactsRev = db('contacts_rev');
    this.uploads = db('uploads');
    this.erasures = db('erasures');
    this.e2e = new LmdbE2e(this.batch, db('key_devices'), db('key_packages'), db('group_epochs'));
    this.analytics = db('analytics');
    this.retentionMs = opts.retentionMs;
    if (this.retentionMs !== undefined) {
      // LMDB has no TTL: messages past the retention are swept, a page per commit.
      this.retentionSweeper = setInterval(() => void this.sweepMessages(Date.now() - this.retentionMs!).catch(() => undefined), opts.retentionSweepMs ?? 3_600_000);
      this.retentionSweeper.unref();
    }
    // LMDB has no TTL: expired inbox entries and one-time-code records are filtered on read and swept here.
    this.sweeper = setInterval(() => void this.sweepExpired().catch(() => undefined), opts.sweepEveryMs ?? 3_600_000);
    this.sweeper.unref();
  }

  // ---- messages ----

  appendMessage(m: Message, packed?: Uint8Array, media?: MediaGrant, epoch?: number): Promise<void> {
    return this.batch.run(() => {
      // Inside the commit, before any write: one read refuses an owner that a newer activation replaced.
      if (epoch !== undefined) this.checkEpoch(fenceKeys.conv(m.conv), epoch);
      if (media) this.putRefs(media.media, media.refs); // one transaction: both or neither
      this.dedupe.put([m.conv, m.from, m.cid], m.seq);
      this.messages.putPacked([m.conv, m.seq], packed ?? pack(m));
    });
  }

  async getMessage(conv: ConversationId, seq: number): Promise<Message | undefined> {
    return this.messages.get([conv, seq]);
  }

  async getMessages(conv: ConversationId, q: HistoryQuery): Promise<Message[]> {
    const lo = q.after !== undefined ? q.after + 1 : 0;
    const hi = q.before ?? Number.MAX_SAFE_INTEGER;
    const inTime = (m: Message) => (q.from === undefined || m.ts >= q.from) && (q.until === undefined || m.ts <= q.until);
    const ascending = q.after !== undefined || q.from !== undefined;
    const out: Message[] = [];
    if (q.limit <= 0) return out;
    const range = this.messages.values({ start: ascending ? [conv, lo] : [conv, hi - 1], end: ascending ? [conv, hi] : [conv, lo - 1], reverse: !ascending });
    for (const value of range) {
      if (!inTime(value)) {
        // ts never decreases with seq, so once past the window in the direction of travel we are done.
        if (ascending ? q.until !== undefined && value.ts > q.until : q.from !== undefined && value.ts < q.from) break;
        continue;
      }
      out.push(value);
      if (out.length >= q.limit) break;
    }
    return ascending ? out : out.reverse();
  }

  async lastSeq(conv: ConversationId): Promise<number> {
    for (const key of this.messages.keys({ start: [conv, Number.MAX_SAFE_INTEGER], end: [conv, 0], reverse: true, limit: 1 })) {
      return key[1] as number;
    }
    return 0;
  }

  async seqForClientId(conv: ConversationId, from: UserId, cid: string): Promise<number | undefined> {
    return this.dedupe.get([conv, from, cid]);
  }

  /** An append here is one transaction, so only a client id dropped since can be missing; filled like Scylla's. */
  indexClientIds(conv: ConversationId, entries: readonly { from: UserId; cid: string; seq: number }[]): Promise<void> {
    return this.batch.run(() => {
      for (const e of entries) if (this.dedupe.get([conv, e.from, e.cid]) === undefined && this.messages.get([conv, e.seq])?.cid === e.cid) this.dedupe.put([conv, e.from, e.cid], e.seq);
    });
  }

  redactMessage(conv: ConversationId, seq: number): Promise<void> {
    return this.batch.run(() => {
      const m = this.messages.get([conv, seq]);
      if (!m) return;
      const { body: _gone, ...envelope } = m;
      this.messages.put([conv, seq], envelope);
    });
  }

  // ---- fences ----
  // Every step runs inside the group-commit transaction, which LMDB's write lock serializes across every
  // process sharing the directory: the read and the write of a claim are one atomic step.

  claimEpoch(key: FenceKey, atLeast = 0): Promise<FenceClaim> {
    return this.batch.run(() => {
      const cur = this.fences.get(key);
      const claim = { epoch: Math.max((cur?.epoch ?? 0) + 1, atLeast), reserved: cur?.reserved ?? 0 };
      this.fences.put(key, claim);
      return claim;
    });
  }

  reserve(key: FenceKey, epoch: number, upTo: number): Promise<void> {
    return this.batch.run(() => {
      const cur = this.checkEpoch(key, epoch);
      if (upTo > cur.reserved) this.fences.put(key, { epoch, reserved: upTo });
    });
  }

  release(key: FenceKey, epoch: number, upTo: number): Promise<void> {
    return this.batch.run(() => {
      const cur = this.checkEpoch(key, epoch);
      if (upTo !== cur.reserved) this.fences.put(key, { epoch, reserved: upTo });
    });
  }

  /** Throws stale_owner unless `epoch` is the key's current epoch; inside a batch op, before it writes. */
  private checkEpoch(key: FenceKey, epoch: number): FenceClaim {
    const cur = this.fences.get(key);
    if (!cur || cur.epoch !== epoch) throw staleOwner(key, epoch, cur?.epoch);
    return cur;
  }

  async getFanoutMark(conv: ConversationId): Promise<number | undefined> {
    return this.fanoutMarks.get(conv);
  }

  setFanoutMark(conv: ConversationId, seq: number): Promise<void> {
    return this.batch.run(() => {
      if (seq > (this.fanoutMarks.get(conv) ?? -1)) this.fanoutMarks.put(conv, seq);
    });
  }

  rememberConversation(conv: ConversationId, epoch: number): Promise<void> {
    return this.batch.run(() => {
      if (epoch > (this.remembered.get(conv) ?? 0)) this.remembered.put(conv, epoch);
    });
  }

  forgetConversation(conv: ConversationId, epoch: number): Promise<void> {
    return this.batch.run(() => {
      const held = this.remembered.get(conv);
      if (held !== undefined && held <= epoch) this.remembered.remove(conv);
    });
  }

  async rememberedConversations(): Promise<ConversationId[]> {
    return [...this.remembered.keys({})];
  }

  // ---- cursors ----

  async getCursors(conv: ConversationId): Promise<Map<UserId, ReceiptCursor>> {
    const out = new Map<UserId, ReceiptCursor>();
    for (const { key, value } of this.cursors.entries({ start: [conv], end: [conv, '\uffff'] })) out.set(key[1] as UserId, value);
    return out;
  }

  setCursor(conv: ConversationId, user: UserId, cursor: ReceiptCursor): Promise<void> {
    return this.batch.run(() => this.cursors.put([conv, user], cursor));
  }

  // ---- inbox ----

  inboxPut(device: DeviceKey, entry: InboxEntry): Promise<void> {
    return this.batch.run(() => this.inbox.put([device, entry.ptr], entry));
  }

  async inboxRange(device: DeviceKey, after: number, limit: number): Promise<InboxEntry[]> {
    const now = Date.now();
    const out: InboxEntry[] = [];
    for (const value of this.inbox.values({ start: [device, after + 1], end: [device, Number.MAX_SAFE_INTEGER] })) {
      if (value.expiresAt > now) out.push(value);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** The newest entry's ptr, or the mark left by deletes and the expiry sweep when none is left. */
  async inboxLastPtr(device: DeviceKey): Promise<number> {
    let last = 0;
    for (const key of this.inbox.keys({ start: [device, Number.MAX_SAFE_INTEGER], end: [device, 0], reverse: true, limit: 1 })) {
      last = key[1] as number;
    }
    return Math.max(last, this.inboxHigh.get(device) ?? 0);
  }

  inboxReserve(device: DeviceKey, ptr: number): Promise<void> {
    return this.batch.run(() => this.raiseHigh(device, ptr));
  }

  // Removing entries would lose the high-water mark with them, so each delete records the highest ptr it removes.
  inboxDeleteUpTo(device: DeviceKey, ptr: number, held?: readonly number[]): Promise<void> {
    return this.batch.run(() => {
      let removed = 0;
      if (held) {
        // Point removes: a range iterator costs more than a few of them.
        for (const p of held) if (p <= ptr && this.inbox.remove([device, p])) removed = Math.max(removed, p);
      } else {
        for (const key of this.inbox.keys({ start: [device, 0], end: [device, ptr + 1] })) {
          this.inbox.remove(key);
          removed = key[1] as number;
        }
      }
      this.raiseHigh(device, removed);
    });
  }

  inboxDrop(device: DeviceKey): Promise<void> {
    return this.batch.run(() => {
      for (const key of this.inbox.keys({ start: [device, 0], end: [device, Number.MAX_SAFE_INTEGER] })) this.inbox.remove(key);
      this.inboxHigh.remove(device);
    });
  }

  private sweepExpired(): Promise<void> {
    const now = Date.now();
    return this.batch.run(() => {
      for (const { key, value } of this.inbox.entries({})) {
        if (value.expiresAt > now) continue;
        this.inbox.remove(key);
        this.raiseHigh(key[0] as string, key[1] as number);
      }
      for (const { key, value } of this.otpState.entries({})) if (value.expiresAt <= now) this.otpState.remove(key);
      for (const key of this.devOutbox.keys({})) if ((key[2] as number) + DEV_OUTBOX_TTL_MS <= now) this.devOutbox.remove(key);
      for (const { key, value } of this.analytics.entries({})) if (value.at + ANALYTICS_KEEP_MS <= now) this.analytics.remove(key);
    });
  }

  private raiseHigh(device: DeviceKey, ptr: number): void {
    if (ptr > (this.inboxHigh.get(device) ?? 0)) this.inboxHigh.put(device, ptr);
  }

  // ---- accounts ----

  createUser(user: UserRecord): Promise<UserRecord> {
    // The phone claim and the user row go in one transaction: the loser of a race gets the winner back.
    return this.batch.run(() => {
      const holder = this.phones.get(user.phone);
      if (holder !== undefined) return this.users.get(holder)!;
      this.phones.put(user.phone, user.id);
      this.users.put(user.id, user);
      return user;
    });
  }

  async userByPhone(phone: string): Promise<UserId | undefined> { return this.phones.get(phone); }
  async getUser(id: UserId): Promise<UserRecord | undefined> { return this.users.get(id); }

  updateUser(id: UserId, patch: Partial<Pick<UserRecord, 'name' | 'avatar' | 'lastSeenPrivacy'>>): Promise<void> {
    return this.batch.run(() => {
      const u = this.users.get(id);
      if (!u) throw new ParleyError('not_found', 'no such user');
      this.users.put(id, { ...u, ...definedOnly(patch) });
    });
  }

  putDevice(d: DeviceRecord): Promise<void> { return this.batch.run(() => this.devices.put([d.user, d.id], d)); }
  async getDevice(user: UserId, device: DeviceId): Promise<DeviceRecord | undefined> { return this.devices.get([user, device]); }

  async listDevices(user: UserId): Promise<DeviceRecord[]> {
    return [...this.devices.values({ start: [user], end: [user, '\uffff'] })];
  }

  setDeviceAcked(user: UserId, device: DeviceId, ptr: number): Promise<void> {
    return this.patchDevice(user, device, (d) => (ptr > d.acked ? { ...d, acked: ptr } : d));
  }

  setDevicePush(user: UserId, device: DeviceId, push: PushRegistration | undefined): Promise<void> {
    return this.patchDevice(user, device, (d) => {
      const { push: _old, ...rest } = d;
      return push ? { ...rest, push } : rest;
    });
  }

  // The read and the write run in one transaction, after every write queued before: claims of one token are serial.
  claimPushToken(token: string, owner: DeviceKey): Promise<DeviceKey | undefined> {
    return this.batch.run(() => {
      const prev = this.pushTokens.get(token);
      if (prev !== owner) this.pushTokens.put(token, owner);
      return prev === owner ? undefined : prev;
    });
  }

  releasePushToken(token: string, owner: DeviceKey): Promise<void> {
    return this.batch.run(() => {
      if (this.pushTokens.get(token) === owner) this.pushTokens.remove(token);
    });
  }

  putPushMark(device: DeviceKey, mark: PushMark): Promise<void> { return this.batch.run(() => this.pushMarks.put(device, mark)); }
  deletePushMark(device: DeviceKey): Promise<void> { return this.batch.run(() => void this.pushMarks.remove(device)); }
  async listPushMarks(): Promise<PushMark[]> { return [...this.pushMarks.values({})]; }

  async getMutes(user: UserId): Promise<Map<ConversationId, number>> {
    const out = new Map<ConversationId, number>();
    for (const { key, value } of this.mutes.entries({ start: [user], end: [user, '\uffff'] })) out.set(key[1] as ConversationId, value);
    return out;
  }

  setMute(user: UserId, conv: ConversationId, until: number): Promise<void> {
    return this.batch.run(() => void (until > 0 ? this.mutes.put([user, conv], until) : this.mutes.remove([user, conv])));
  }

  setDeviceActive(user: UserId, device: DeviceId, at: number): Promise<void> {
    return this.patchDevice(user, device, (d) => (at > (d.lastActive ?? 0) ? { ...d, lastActive: at } : d));
  }

  // Writes run in the order they were issued (one queue, one transaction at a time), so nothing issued
  // before the delete lands after it, and patches after it find no record.
  deleteDevice(user: UserId, device: DeviceId): Promise<void> {
    return this.batch.run(() => void this.devices.remove([user, device]));
  }

  private patchDevice(user: UserId, device: DeviceId, f: (d: DeviceRecord) => DeviceRecord): Promise<void> {
    return this.batch.run(() => {
      const d = this.devices.get([user, device]);
      if (d) this.devices.put([user, device], f(d));
    });
  }

  async getOtp(phone: string): Promise<OtpRecord | undefined> { return this.liveOtp(phone); }

  /**
   * The step runs inside the group-commit transaction, after every op queued before it, so parallel steps on
   * one phone each see the one before: nothing is read outside the transaction and written back later.
   */
  otpUpdate<T>(phone: string, step: (cur: OtpRecord | undefined) => OtpStep<T>): Promise<T> {
    return this.batch.run(() => {
      const { next, result } = step(this.liveOtp(phone));
      if (next) this.otpState.put(phone, next);
      return result;
    });
  }

  private liveOtp(phone: string): OtpRecord | undefined {
    const otp = this.otpState.get(phone);
    return otp && otp.expiresAt > Date.now() ? otp : undefined;
  }

  async getContacts(user: UserId): Promise<UserId[]> {
    return [...this.contacts.keys({ start: [user], end: [user, '\uffff'] })].map((k) => k[1] as UserId);
  }

  setContacts(user: UserId, add: UserId[], remove: UserId[]): Promise<void> {
    return this.batch.run(() => {
      for (const c of add) { this.contacts.put([user, c], true); this.contactsRev.put([c, user], true); }
      for (const c of remove) { this.contacts.remove([user, c]); this.contactsRev.remove([c, user]); }
    });
  }

  setLastSeen(user: UserId, ts: number): Promise<void> { return this.batch.run(() => this.lastSeen.put(user, ts)); }
  async getLastSeen(user: UserId): Promise<number | undefined> { return this.lastSeen.get(user); }

  // ---- groups ----

  putGroup(g: GroupRecord): Promise<void> {
    return this.batch.run(() => {
      const before = this.groups.get(g.id);
      for (const u of Object.keys(before?.members ?? {})) if (!(u in g.members)) this.userGroupsDb.remove([u, g.id]);
      for (const u of Object.keys(g.members)) this.userGroupsDb.put([u, g.id], true);
      this.groups.put(g.id, g);
    });
  }

  async getGroup(id: GroupId): Promise<GroupRecord | undefined> { return this.groups.get(id); }

  async userGroups(user: UserId): Promise<GroupId[]> {
    return [...this.userGroupsDb.keys({ start: [user], end: [user, '\uffff'] })].map((k) => k[1] as GroupId);
  }

  // ---- media ----

  putMedia(m: MediaRecord): Promise<void> {
    return this.batch.run(() => {
      if (this.media.get(m.id) === undefined) this.media.put(m.id, m);
      this.uploads.put([m.owner, m.id], true);
    });
  }
  async getMedia(id: string): Promise<MediaRecord | undefined> { return this.media.get(id); }

  putMediaRefs(media: string, refs: MediaRef[]): Promise<void> {
    return this.batch.run(() => this.putRefs(media, refs));
  }

  private putRefs(media: string, refs: MediaRef[]): void {
    for (const r of refs) {
      const key = [media, r.holder];
      const had = this.mediaRefs.get(key);
      if (had === undefined || r.seq > had) this.mediaRefs.put(key, r.seq);
    }
  }

  async getMediaRefs(media: string, holders: MediaHolder[]): Promise<MediaRef[]> {
    const out: MediaRef[] = [];
    for (const holder of new Set(holders)) {
      const seq = this.mediaRefs.get([media, holder]);
      if (seq !== undefined) out.push({ holder, seq });
    }
    return out;
  }

  // ---- journal and snapshots ----

  journalAppend(key: string, event: JournalEvent): Promise<void> {
    return this.batch.run(() => {
      checkSeq(event.seq);
      const stored = this.journal.get([key, event.seq]);
      if (stored) {
        if (sameEvent(stored, event)) return; // a retry of an append that landed
        throw journalTaken(key, event.seq);
      }
      this.journal.put([key, event.seq], { seq: event.seq, data: event.data, tags: [...event.tags], createdAt: event.createdAt });
    });
  }

  async journalRead(key: string, afterSeq: number, limit: number): Promise<JournalEvent[]> {
    const out: JournalEvent[] = [];
    if (!(limit > 0)) return out;
    for (const value of this.journal.values({ start: [key, Math.max(0, Math.floor(afterSeq)) + 1], end: [key, Number.MAX_SAFE_INTEGER] })) {
      out.push(value);
      if (out.length >= limit) break;
    }
    return out;
  }

  snapshotPut(key: string, snapshot: SnapshotRecord): Promise<void> {
    // The new snapshot and the removal of the older ones commit together.
    return this.batch.run(() => {
      checkSeq(snapshot.seq, 0);
      for (const k of this.snapshots.keys({ start: [key, 0], end: [key, snapshot.seq] })) this.snapshots.remove(k);
      this.snapshots.put([key, snapshot.seq], { seq: snapshot.seq, data: snapshot.data, createdAt: snapshot.createdAt });
    });
  }

  async snapshotLatest(key: string): Promise<SnapshotRecord | undefined> {
    for (const value of this.snapshots.values({ start: [key, Number.MAX_SAFE_INTEGER], end: [key, -1], reverse: true, limit: 1 })) return value;
    return undefined;
  }

  // ---- privacy ----

  noteDirectConversation(conv: ConversationId, users: readonly UserId[]): Promise<void> {
    return this.batch.run(() => { for (const u of users) this.userConvs.put([u, conv], true); });
  }

  async directConversations(user: UserId): Promise<ConversationId[]> {
    return [...this.userConvs.keys({ start: [user], end: [user, '\uffff'] })].map((k) => k[1] as ConversationId);
  }

  async contactOf(user: UserId): Promise<UserId[]> {
    return [...this.contactsRev.keys({ start: [user], end: [user, '\uffff'] })].map((k) => k[1] as UserId);
  }

  async uploadsOf(user: UserId): Promise<string[]> {
    return [...this.uploads.keys({ start: [user], end: [user, '\uffff'] })].map((k) => k[1] as string);
  }

  async listMediaRefs(media: string): Promise<MediaRef[]> {
    return [...this.mediaRefs.entries({ start: [media], end: [media, '\uffff'] })].map(({ key, value }) => ({ holder: key[1] as MediaHolder, seq: value }));
  }

  removeMediaRefs(media: string, holders: readonly MediaHolder[]): Promise<void> {
    return this.batch.run(() => { for (const h of holders) this.mediaRefs.remove([media, h]); });
  }

  deleteMedia(media: string): Promise<void> {
    return this.batch.run(() => {
      for (const key of this.mediaRefs.keys({ start: [media], end: [media, '\uffff'] })) this.mediaRefs.remove(key);
      this.media.remove(media);
    });
  }

  setMediaOwner(media: string, owner: UserId): Promise<void> {
    return this.batch.run(() => {
      const m = this.media.get(media);
      if (m) this.media.put(media, { ...m, owner });
    });
  }

  replaceMessage(m: Message): Promise<void> {
    return this.batch.run(() => { if (this.messages.get([m.conv, m.seq])) this.messages.put([m.conv, m.seq], m); });
  }

  // Keyed (conv, sender, cid): one range holds every client id of the sender, including messages swept since.
  dropClientIds(conv: ConversationId, from: UserId, _cids: readonly string[]): Promise<void> {
    return this.batch.run(() => {
      for (const key of this.dedupe.keys({ start: [conv, from], end: [conv, from, '\uffff'] })) this.dedupe.remove(key);
    });
  }

  deleteMessagesUpTo(conv: ConversationId, seq: number): Promise<void> {
    return this.batch.run(() => {
      for (const key of this.messages.keys({ start: [conv, 0], end: [conv, seq + 1] })) this.messages.remove(key);
    });
  }

  dropConversation(conv: ConversationId): Promise<void> {
    return this.batch.run(() => {
      for (const key of this.messages.keys({ start: [conv, 0], end: [conv, Number.MAX_SAFE_INTEGER] })) this.messages.remove(key);
      for (const key of this.dedupe.keys({ start: [conv], end: [conv, '\uffff'] })) this.dedupe.remove(key);
      for (const key of this.cursors.keys({ start: [conv], end: [conv, '\uffff'] })) this.cursors.remove(key);
      this.fanoutMarks.remove(conv);
      this.remembered.remove(conv);
      this.fences.remove(fenceKeys.conv(conv));
      const parsed = parseConversationId(conv);
      if (parsed?.kind === 'direct') for (const u of parsed.users) this.userConvs.remove([u, conv]);
    });
  }

  deleteCursor(conv: ConversationId, user: UserId): Promise<void> {
    return this.batch.run(() => void this.cursors.remove([conv, user]));
  }

  dropFence(key: FenceKey): Promise<void> {
    return this.batch.run(() => void this.fences.remove(key));
  }

  journalReplace(key: string, event: JournalEvent): Promise<void> {
    return this.batch.run(() => {
      if (this.journal.get([key, event.seq])) this.journal.put([key, event.seq], { seq: event.seq, data: event.data, tags: [...event.tags], createdAt: event.createdAt });
    });
  }

  deleteAccount(user: UserId, phone: string): Promise<void> {
    return this.batch.run(() => {
      if (this.phones.get(phone) === user) this.phones.remove(phone);
      this.otpState.remove(phone);
      this.users.remove(user);
      this.lastSeen.remove(user);
      for (const key of this.contacts.keys({ start: [user], end: [user, '\uffff'] })) {
        this.contacts.remove(key);
        this.contactsRev.remove([key[1] as string, user]);
      }
      for (const t of [this.contactsRev, this.mutes, this.userConvs, this.uploads, this.userGroupsDb]) {
        for (const key of t.keys({ start: [user], end: [user, '\uffff'] })) t.remove(key);
      }
      // What a development node's outboxes sent them: codes to the number, pushes to the user.
      for (const [box, key] of [['sms', phone], ['push', user]] as const) {
        for (const k of this.devOutbox.keys({ start: [box, key, 0], end: [box, key, Number.MAX_SAFE_INTEGER] })) this.devOutbox.remove(k);
      }
    });
  }

  putErasure(e: ErasureRecord): Promise<void> { return this.batch.run(() => this.erasures.put(e.user, e)); }
  async getErasure(user: UserId): Promise<ErasureRecord | undefined> { return this.erasures.get(user); }
  async listErasures(): Promise<ErasureRecord[]> { return [...this.erasures.values({})]; }
  deleteErasure(user: UserId): Promise<void> { return this.batch.run(() => void this.erasures.remove(user)); }

  /**
   * Retention: deletes messages older than `before`. Read outside the write lock, deleted a page per commit
   * (keys collected per page, so a sweep holds at most a page in memory); ts grows with seq, so each
   * conversation is read from its start until the first message to keep.
   */
  async sweepMessages(before: number): Promise<number> {
    let removed = 0;
    let page: Key[] = [];
    let skipConv: string | undefined;
    for (const { key, value } of this.messages.entries({})) {
      const conv = key[0] as string;
      if (conv === skipConv) continue;
      if (value.ts >= before) { skipConv = conv; continue; }
      page.push(key);
      if (page.length >= 1000) {
        const keys = page;
        page = [];
        await this.batch.run(() => { for (const k of keys) this.messages.remove(k); });
        removed += keys.length;
      }
    }
    const keys = page;
    if (keys.length) await this.batch.run(() => { for (const k of keys) this.messages.remove(k); });
    return removed + keys.length;
  }

  /** env.sync (mdb_env_sync, on lmdb's thread): lmdb-js has it but its typings don't. */
  private sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      (this.root as unknown as { sync(cb: (err?: Error) => void): void }).sync((err) => (err ? reject(err) : resolve()));
    });
  }

  // ---- dev outboxes ----

  devOutboxAdd(box: DevOutbox, key: string, data: Uint8Array): Promise<void> {
    return this.batch.run(() => {
      // Inside the transaction (serial across processes sharing the directory): after the key's newest entry.
      const at = Date.now();
      let n = 0;
      for (const k of this.devOutbox.keys({ start: [box, key, Number.MAX_SAFE_INTEGER], end: [box, key, 0], reverse: true, limit: 1 })) {
        if ((k[2] as number) >= at) n = (k[3] as number) + 1;
      }
      this.devOutbox.put([box, key, at, n], data);
      // The key's newest DEV_OUTBOX_KEEP stay: walk back from the newest, drop what is past them.
      let kept = 0;
      for (const k of this.devOutbox.keys({ start: [box, key, Number.MAX_SAFE_INTEGER], end: [box, key, 0], reverse: true })) {
        if (++kept > DEV_OUTBOX_KEEP) this.devOutbox.remove(k);
      }
    });
  }

  async devOutboxList(box: DevOutbox, key: string): Promise<DevOutboxEntry[]> {
    const from = Date.now() - DEV_OUTBOX_TTL_MS;
    const out: DevOutboxEntry[] = [];
    for (const { key: k, value } of this.devOutbox.entries({ start: [box, key, from + 1], end: [box, key, Number.MAX_SAFE_INTEGER] })) {
      out.push({ at: k[2] as number, data: value });
    }
    return out.slice(-DEV_OUTBOX_KEEP);
  }

  // ---- analytics ----

  putAnalytics(period: string, source: string, data: Uint8Array): Promise<void> {
    return this.batch.run(() => this.analytics.put([period, source], { at: Date.now(), data }));
  }

  async analyticsRows(periods: readonly string[]): Promise<AnalyticsRow[]> {
    const now = Date.now();
    const out: AnalyticsRow[] = [];
    for (const period of new Set(periods)) {
      for (const { key, value } of this.analytics.entries({ start: [period], end: [period, '\uffff'] })) {
        if (value.at + ANALYTICS_KEEP_MS > now) out.push({ period, source: key[1] as string, data: value.data });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    clearInterval(this.syncer);
    clearInterval(this.retentionSweeper);
    this.batch.commit();
    await this.sync();
    await this.root.close();
  }
}

/** Journal seqs count from 1 (snapshots may be taken at 0, before any event). */
const sameEvent = (a: JournalEvent, b: JournalEvent): boolean =>
  a.createdAt === b.createdAt && Buffer.from(pack(a.data)).equals(Buffer.from(pack(b.data)));

const journalTaken = (key: string, seq: number): ParleyError =>
  new ParleyError('stale_owner', `event ${seq} of ${key} was written by another activation; replay and try again`);

function checkSeq(seq: number, min = 1): void {
  if (!Number.isSafeInteger(seq) || seq < min) throw new ParleyError('invalid', `seq must be an integer >= ${min}, got ${seq}`);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** LMDB failures (disk full, map full) reach clients as a retryable store error; client errors pass through. */
function staleOwner(key: FenceKey, epoch: number, current: number | undefined): ParleyError {
  return new ParleyError('stale_owner', `${key}: epoch ${epoch} is no longer its owner's (now ${current ?? 'none'}); send it again`);
}

function storeError(err: unknown): unknown {
  return err instanceof ParleyError ? err : new ParleyError('store_unavailable', `store write failed: ${(err as Error).message}`);
}
