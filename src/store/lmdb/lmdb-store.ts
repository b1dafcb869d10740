import { open, type Database, type RootDatabase } from 'lmdb';
import type { ConversationId, DeviceId, GroupId, UserId } from '../../protocol/ids.js';
import type { Message } from '../../protocol/frames.js';
import { ParleyError } from '../../protocol/errors.js';
import type {
  DeviceKey, DeviceRecord, GroupRecord, HistoryQuery, InboxEntry, JournalEvent, MediaRecord, OtpRecord, PushRegistration,
  ReceiptCursor, SnapshotRecord, Store, UserRecord,
} from '../store.js';

type Key = (string | number)[];
const SYNC_EVERY_MS = 1000;

/**
 * The embedded store: one LMDB environment, one named database per table, composite array keys so that
 * LMDB's key order gives the same clustering the Scylla tables have.
 *
 * Durability: by default a write's promise resolves when its transaction is committed into the file (the
 * OS holds it: it survives the process crashing or being killed) and the file is synced to disk every
 * second — the trade ScyllaDB's periodic commitlog sync makes. Each commit costs hundreds of µs of CPU
 * when synced, so syncing each one would bound a node to a few thousand commits a second. With
 * `flushEachWrite` (PARLEY_LMDB_FLUSH=1) every commit is synced before its promise resolves, surviving
 * power loss too.
 */
export class LmdbStore implements Store {
  readonly kind = 'lmdb' as const;
  private readonly root: RootDatabase;
  private readonly messages: Database<Message, Key>;
  private readonly dedupe: Database<number, Key>;
  private readonly cursors: Database<ReceiptCursor, Key>;
  private readonly inbox: Database<InboxEntry, Key>;
  private readonly inboxHigh: Database<number, string>;
  private readonly users: Database<UserRecord, string>;
  private readonly phones: Database<UserId, string>;
  private readonly devices: Database<DeviceRecord, Key>;
  private readonly otps: Database<OtpRecord, string>;
  private readonly contacts: Database<true, Key>;
  private readonly lastSeen: Database<number, string>;
  private readonly groups: Database<GroupRecord, string>;
  private readonly userGroupsDb: Database<true, Key>;
  private readonly media: Database<MediaRecord, string>;
  private readonly journal: Database<JournalEvent, Key>;
  private readonly snapshots: Database<SnapshotRecord, Key>;
  private sweeper: NodeJS.Timeout;

  private readonly flushEachWrite: boolean;
  private syncer?: NodeJS.Timeout;

  constructor(path: string, opts: { sweepEveryMs?: number; flushEachWrite?: boolean } = {}) {
    this.flushEachWrite = opts.flushEachWrite ?? false;
    this.root = open({ path, maxDbs: 32, mapSize: 2 ** 34, ...(this.flushEachWrite ? { overlappingSync: false } : { noSync: true }) });
    if (!this.flushEachWrite) {
      this.syncer = setInterval(() => this.sync(), SYNC_EVERY_MS);
      this.syncer.unref();
    }
    const db = <V, K extends Key | string>(name: string) => this.root.openDB<V, K>({ name, encoding: 'msgpack' });
    this.messages = db('messages');
    this.dedupe = db('dedupe');
    this.cursors = db('cursors');
    this.inbox = db('inbox');
    this.inboxHigh = db('inbox_high');
    this.users = db('users');
    this.phones = db('phones');
    this.devices = db('devices');
    this.otps = db('otps');
    this.contacts = db('contacts');
    this.lastSeen = db('last_seen');
    this.groups = db('groups');
    this.userGroupsDb = db('user_groups');
    this.media = db('media');
    this.journal = db('journal');
    this.snapshots = db('snapshots');
    // LMDB has no TTL: expired inbox entries are filtered on read and swept here.
    this.sweeper = setInterval(() => void this.sweepExpired(), opts.sweepEveryMs ?? 3_600_000);
    this.sweeper.unref();
  }

  // ---- messages ----

  async appendMessage(m: Message): Promise<void> {
    this.dedupe.put([m.conv, m.from, m.cid], m.seq);
    await guard(this.messages.put([m.conv, m.seq], m));
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
    const range = this.messages.getRange({ start: ascending ? [conv, lo] : [conv, hi - 1], end: ascending ? [conv, hi] : [conv, lo - 1], reverse: !ascending });
    for (const { value } of range) {
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
    for (const key of this.messages.getKeys({ start: [conv, Number.MAX_SAFE_INTEGER], end: [conv, 0], reverse: true, limit: 1 })) {
      return key[1] as number;
    }
    return 0;
  }

  async seqForClientId(conv: ConversationId, from: UserId, cid: string): Promise<number | undefined> {
    return this.dedupe.get([conv, from, cid]);
  }

  async redactMessage(conv: ConversationId, seq: number): Promise<void> {
    await guard(this.messages.transaction(() => {
      const m = this.messages.get([conv, seq]);
      if (!m) return;
      const { body: _gone, ...envelope } = m;
      this.messages.put([conv, seq], envelope);
    }));
  }

  // ---- cursors ----

  async getCursors(conv: ConversationId): Promise<Map<UserId, ReceiptCursor>> {
    const out = new Map<UserId, ReceiptCursor>();
    for (const { key, value } of this.cursors.getRange({ start: [conv], end: [conv, '\uffff'] })) out.set(key[1] as UserId, value);
    return out;
  }

  async setCursor(conv: ConversationId, user: UserId, cursor: ReceiptCursor): Promise<void> {
    await guard(this.cursors.put([conv, user], cursor));
  }

  // ---- inbox ----

  async inboxPut(device: DeviceKey, entry: InboxEntry): Promise<void> {
    await guard(this.inbox.put([device, entry.ptr], entry));
  }

  async inboxRange(device: DeviceKey, after: number, limit: number): Promise<InboxEntry[]> {
    const now = Date.now();
    const out: InboxEntry[] = [];
    for (const { value } of this.inbox.getRange({ start: [device, after + 1], end: [device, Number.MAX_SAFE_INTEGER] })) {
      if (value.expiresAt > now) out.push(value);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** The newest entry's ptr, or the mark left by deletes and the expiry sweep when none is left. */
  async inboxLastPtr(device: DeviceKey): Promise<number> {
    let last = 0;
    for (const key of this.inbox.getKeys({ start: [device, Number.MAX_SAFE_INTEGER], end: [device, 0], reverse: true, limit: 1 })) {
      last = key[1] as number;
    }
    return Math.max(last, this.inboxHigh.get(device) ?? 0);
  }

  // Removing entries would lose the high-water mark with them, so each delete records the highest ptr it removes.
  async inboxDeleteUpTo(device: DeviceKey, ptr: number): Promise<void> {
    await guard(this.root.transaction(() => {
      let removed = 0;
      for (const key of this.inbox.getKeys({ start: [device, 0], end: [device, ptr + 1] })) {
        this.inbox.remove(key);
        removed = key[1] as number;
      }
      this.raiseHigh(device, removed);
    }));
  }

  private async sweepExpired(): Promise<void> {
    const now = Date.now();
    await this.root.transaction(() => {
      for (const { key, value } of this.inbox.getRange()) {
        if (value.expiresAt > now) continue;
        this.inbox.remove(key);
        this.raiseHigh(key[0] as string, key[1] as number);
      }
    });
  }

  private raiseHigh(device: DeviceKey, ptr: number): void {
    if (ptr > (this.inboxHigh.get(device) ?? 0)) this.inboxHigh.put(device, ptr);
  }

  // ---- accounts ----

  async createUser(user: UserRecord): Promise<UserRecord> {
    // The phone claim and the user row go in one transaction: the loser of a race gets the winner back.
    const winner = await guard(this.root.transaction(() => {
      const holder = this.phones.get(user.phone);
      if (holder !== undefined) return this.users.get(holder)!;
      this.phones.put(user.phone, user.id);
      this.users.put(user.id, user);
      return user;
    }));
    return winner;
  }

  async userByPhone(phone: string): Promise<UserId | undefined> { return this.phones.get(phone); }
  async getUser(id: UserId): Promise<UserRecord | undefined> { return this.users.get(id); }

  async updateUser(id: UserId, patch: Partial<Pick<UserRecord, 'name' | 'avatar' | 'lastSeenPrivacy'>>): Promise<void> {
    await guard(this.users.transaction(() => {
      const u = this.users.get(id);
      if (!u) throw new ParleyError('not_found', 'no such user');
      this.users.put(id, { ...u, ...definedOnly(patch) });
    }));
  }

  async putDevice(d: DeviceRecord): Promise<void> { await guard(this.devices.put([d.user, d.id], d)); }
  async getDevice(user: UserId, device: DeviceId): Promise<DeviceRecord | undefined> { return this.devices.get([user, device]); }

  async listDevices(user: UserId): Promise<DeviceRecord[]> {
    return [...this.devices.getRange({ start: [user], end: [user, '\uffff'] })].map((e) => e.value);
  }

  async setDeviceAcked(user: UserId, device: DeviceId, ptr: number): Promise<void> {
    await this.patchDevice(user, device, (d) => (ptr > d.acked ? { ...d, acked: ptr } : d));
  }

  async setDevicePush(user: UserId, device: DeviceId, push: PushRegistration): Promise<void> {
    await this.patchDevice(user, device, (d) => ({ ...d, push }));
  }

  private async patchDevice(user: UserId, device: DeviceId, f: (d: DeviceRecord) => DeviceRecord): Promise<void> {
    await guard(this.devices.transaction(() => {
      const d = this.devices.get([user, device]);
      if (d) this.devices.put([user, device], f(d));
    }));
  }

  async putOtp(phone: string, otp: OtpRecord): Promise<void> { await guard(this.otps.put(phone, otp)); }
  async getOtp(phone: string): Promise<OtpRecord | undefined> {
    const otp = this.otps.get(phone);
    return otp && otp.expiresAt > Date.now() ? otp : undefined;
  }
  async deleteOtp(phone: string): Promise<void> { await guard(this.otps.remove(phone)); }

  async getContacts(user: UserId): Promise<UserId[]> {
    return [...this.contacts.getKeys({ start: [user], end: [user, '\uffff'] })].map((k) => k[1] as UserId);
  }

  async setContacts(user: UserId, add: UserId[], remove: UserId[]): Promise<void> {
    await guard(this.contacts.transaction(() => {
      for (const c of add) this.contacts.put([user, c], true);
      for (const c of remove) this.contacts.remove([user, c]);
    }));
  }

  async setLastSeen(user: UserId, ts: number): Promise<void> { await guard(this.lastSeen.put(user, ts)); }
  async getLastSeen(user: UserId): Promise<number | undefined> { return this.lastSeen.get(user); }

  // ---- groups ----

  async putGroup(g: GroupRecord): Promise<void> {
    await guard(this.root.transaction(() => {
      const before = this.groups.get(g.id);
      for (const u of Object.keys(before?.members ?? {})) if (!(u in g.members)) this.userGroupsDb.remove([u, g.id]);
      for (const u of Object.keys(g.members)) this.userGroupsDb.put([u, g.id], true);
      this.groups.put(g.id, g);
    }));
  }

  async getGroup(id: GroupId): Promise<GroupRecord | undefined> { return this.groups.get(id); }

  async userGroups(user: UserId): Promise<GroupId[]> {
    return [...this.userGroupsDb.getKeys({ start: [user], end: [user, '\uffff'] })].map((k) => k[1] as GroupId);
  }

  // ---- media ----

  async putMedia(m: MediaRecord): Promise<void> {
    await guard(this.media.ifNoExists(m.id, () => this.media.put(m.id, m)));
  }
  async getMedia(id: string): Promise<MediaRecord | undefined> { return this.media.get(id); }

  // ---- journal and snapshots ----

  async journalAppend(key: string, event: JournalEvent): Promise<void> {
    checkSeq(event.seq);
    await guard(this.journal.put([key, event.seq], { seq: event.seq, data: event.data, tags: [...event.tags], createdAt: event.createdAt }));
  }

  async journalRead(key: string, afterSeq: number, limit: number): Promise<JournalEvent[]> {
    const out: JournalEvent[] = [];
    if (!(limit > 0)) return out;
    for (const { value } of this.journal.getRange({ start: [key, Math.max(0, Math.floor(afterSeq)) + 1], end: [key, Number.MAX_SAFE_INTEGER] })) {
      out.push(value);
      if (out.length >= limit) break;
    }
    return out;
  }

  async snapshotPut(key: string, snapshot: SnapshotRecord): Promise<void> {
    checkSeq(snapshot.seq, 0);
    // The new snapshot and the removal of the older ones commit together.
    await guard(this.snapshots.transaction(() => {
      for (const k of this.snapshots.getKeys({ start: [key, 0], end: [key, snapshot.seq] })) this.snapshots.remove(k);
      this.snapshots.put([key, snapshot.seq], { seq: snapshot.seq, data: snapshot.data, createdAt: snapshot.createdAt });
    }));
  }

  async snapshotLatest(key: string): Promise<SnapshotRecord | undefined> {
    for (const { value } of this.snapshots.getRange({ start: [key, Number.MAX_SAFE_INTEGER], end: [key, -1], reverse: true, limit: 1 })) return value;
    return undefined;
  }

  /** env.sync (mdb_env_sync): lmdb-js has it but its typings don't. */
  private sync(done: (err?: Error) => void = () => undefined): void {
    (this.root as unknown as { sync(cb: (err?: Error) => void): void }).sync(done);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    clearInterval(this.syncer);
    if (!this.flushEachWrite) await new Promise<void>((resolve) => this.sync(() => resolve()));
    await this.root.close();
  }
}

/** Journal seqs count from 1 (snapshots may be taken at 0, before any event). */
function checkSeq(seq: number, min = 1): void {
  if (!Number.isSafeInteger(seq) || seq < min) throw new ParleyError('invalid', `seq must be an integer >= ${min}, got ${seq}`);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** LMDB failures (disk full, map full) reach clients as a retryable store error; client errors pass through. */
async function guard<T>(p: Promise<T> | T): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ParleyError) throw err;
    throw new ParleyError('store_unavailable', `store write failed: ${(err as Error).message}`);
  }
}
