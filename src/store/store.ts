import type { ConversationId, DeviceId, GroupId, UserId } from '../protocol/ids.js';
import type { E2eStore } from './e2e-store.js';
import type { GroupRole, HistoryQuery, LastSeenPrivacy, Message, MessageKind, PushPlatform } from '../protocol/frames.js';

export type { HistoryQuery };

/**
 * The one persistence interface. LMDB (embedded, one node) and ScyllaDB (cluster) implement it and pass the
 * same conformance suite (test/store/conformance.ts). Every method is a single access path a wide-column
 * store serves from one partition, so the Scylla schema follows it table by table (docs/architecture.md).
 *
 * Failures are thrown as ParleyError('store_unavailable') so clients get a retryable error.
 */
export interface Store {
  readonly kind: 'lmdb' | 'scylla';
  /** The key directory and MLS group epochs (src/store/e2e-store.ts): a domain of its own. */
  readonly e2e: E2eStore;

  // ---- messages: partitioned by (conv, time bucket), clustered by seq ----
  /**
   * Durable when the promise resolves. Also records (conv, from, cid) → seq for idempotent resends.
   * When it rejects, the message counts as not stored, even if part of it reached the database (a timeout,
   * a replica gone mid-write): the store rolls that part back before it answers any read of the conversation
   * again, so a resend of the cid is never matched to a copy nobody was told about. A seq whose append
   * succeeded is never appended again by its conversation, so the rollback only ever removes the failed attempt.
   * `packed`, when given, is `m` as msgpack (packed once for delivery): a store that keeps bytes reuses it.
   * `media`, when the message names a media, is who may fetch it because of this message: its refs are
   * durable before (or with) the message, never after, so no stored message names media its readers can't fetch.
   */
  appendMessage(m: Message, packed?: Uint8Array, media?: MediaGrant, epoch?: number): Promise<void>;
  getMessage(conv: ConversationId, seq: number): Promise<Message | undefined>;
  /**
   * Ascending by seq. `before`/`after` bound seq (exclusive), `from`/`until` bound ts (inclusive).
   * With a lower bound (`after` or `from`) the page starts there; otherwise it is the newest `limit` below the upper bound.
   */
  getMessages(conv: ConversationId, q: HistoryQuery): Promise<Message[]>;
  /** Highest stored seq, 0 for an empty conversation: the conversation actor resumes its counter from it. */
  lastSeq(conv: ConversationId): Promise<number>;
  seqForClientId(conv: ConversationId, from: UserId, cid: string): Promise<number | undefined>;
  /**
   * Completes the client-id index for messages a new owner found in the log above the fan-out mark. On Scylla
   * an append writes the message, then its client id: an owner killed between the two leaves a message the
   * index misses, whose sender (never ticked) sends it again, and it would be stored twice. Fills only what is
   * missing: never overrides a client id written by an append, and never outlives the rollback of one.
   */
  indexClientIds(conv: ConversationId, entries: readonly { from: UserId; cid: string; seq: number }[]): Promise<void>;
  /** Delete for everyone: the body is gone for good, the envelope stays so seqs have no holes. */
  redactMessage(conv: ConversationId, seq: number): Promise<void>;
  /**
   * The conversation's fan-out mark: every message at or below it is in each recipient device's inbox or was
   * acked by it. The owner raises it lazily (about once a second); a new owner re-drives the log above it to
   * the recipients (the outbox pattern), so a sender ticked after the log write alone loses nothing to a crash.
   * A max register: a lower mark (a stale owner's late write) never replaces a higher one. Undefined: never set.
   */
  getFanoutMark(conv: ConversationId): Promise<number | undefined>;
  setFanoutMark(conv: ConversationId, seq: number): Promise<void>;
  /**
   * Conversations whose fan-out may be unfinished (Akka's remembered entities): one is remembered, under its
   * activation's epoch, with the first message that activation stores (before its tick), and forgotten when
   * the activation stops with every delivery confirmed. A node that starts activates every one remembered, so
   * each re-drives its log above its fan-out mark. `forget` removes only a remembrance of `epoch` or older, so
   * an old activation's late forget never erases a newer one's.
   */
  rememberConversation(conv: ConversationId, epoch: number): Promise<void>;
  forgetConversation(conv: ConversationId, epoch: number): Promise<void>;
  rememberedConversations(): Promise<ConversationId[]>;

  // ---- fenced ownership: per entity, the epoch of its current activation and the numbers it reserved ----
  // An entity that hands out numbers (a conversation's seqs, a device's inbox ptrs) claims an epoch when it
  // starts and reserves numbers in blocks under it; a reservation from an older epoch is refused, so two
  // activations (a crashed one with writes in flight and its successor, or two nodes) never use one number.
  /**
   * Atomically sets the key's epoch to max(stored + 1, atLeast) (stored: 0 for a new key) and returns it with
   * the key's reserved mark as of that moment (0 for a new key). Racing claims get distinct epochs; each sees
   * every reservation made under the epochs before it. `atLeast` is where a cluster lease's epoch plugs in.
   */
  claimEpoch(key: FenceKey, atLeast?: number): Promise<FenceClaim>;
  /**
   * Raises the key's reserved mark to `upTo` (never lowers it) if `epoch` is still the key's epoch; otherwise
   * rejects with ParleyError('stale_owner') and changes nothing. Idempotent: safe to send again after a timeout.
   */
  reserve(key: FenceKey, epoch: number, upTo: number): Promise<void>;
  /**
   * A graceful stop hands back what it reserved and did not use: sets the reserved mark to `upTo` (the
   * highest number it handed out) if `epoch` is still the key's epoch; else rejects with stale_owner.
   */
  release(key: FenceKey, epoch: number, upTo: number): Promise<void>;

  // ---- receipt cursors: per (conv, user) the highest seq delivered to and read by that user, and the first it may see ----
  getCursors(conv: ConversationId): Promise<Map<UserId, ReceiptCursor>>;
  setCursor(conv: ConversationId, user: UserId, cursor: ReceiptCursor): Promise<void>;

  // ---- transient inbox: per device, FIFO by ptr, expiring ----
  inboxPut(device: DeviceKey, entry: InboxEntry): Promise<void>;
  /** Entries with ptr > after, ascending, unexpired, at most `limit`. */
  inboxRange(device: DeviceKey, after: number, limit: number): Promise<InboxEntry[]>;
  /** Highest ptr ever written or reserved for the device (kept after deletes), 0 if none. */
  inboxLastPtr(device: DeviceKey): Promise<number>;
  /** Raises the device's high-water mark to `ptr` (never lowers it): pointers up to it count as used. */
  inboxReserve(device: DeviceKey, ptr: number): Promise<void>;
  /**
   * Deletes entries with ptr ≤ `ptr`. `held`, when the caller knows it, lists every entry up to `ptr` still in
   * the inbox (a hint: an engine may remove just those keys instead of scanning the range).
   */
  inboxDeleteUpTo(device: DeviceKey, ptr: number, held?: readonly number[]): Promise<void>;
  /**
   * Drops the device's whole inbox, entries and high-water mark (the device was signed out; its key is never
   * used again). Writes to the inbox that were issued before this call don't survive it.
   */
  inboxDrop(device: DeviceKey): Promise<void>;

  // ---- accounts ----
  /** Claims the phone number atomically: returns the user that holds it (the new one, or one that won a race). */
  createUser(user: UserRecord): Promise<UserRecord>;
  userByPhone(phone: string): Promise<UserId | undefined>;
  getUser(id: UserId): Promise<UserRecord | undefined>;
  updateUser(id: UserId, patch: Partial<Pick<UserRecord, 'name' | 'avatar' | 'lastSeenPrivacy'>>): Promise<void>;
  putDevice(d: DeviceRecord): Promise<void>;
  getDevice(user: UserId, device: DeviceId): Promise<DeviceRecord | undefined>;
  listDevices(user: UserId): Promise<DeviceRecord[]>;
  setDeviceAcked(user: UserId, device: DeviceId, ptr: number): Promise<void>;
  /** Sets (or with undefined, removes) the device's push registration; on an unknown device it creates nothing. */
  setDevicePush(user: UserId, device: DeviceId, push: PushRegistration | undefined): Promise<void>;
  /**
   * The push token index (src/push/registration.ts, tokenKey): makes `owner` (a device key) the holder of the
   * token and returns the device that held it before, if another did, so that one's registration is removed.
   * Racing claims of one token leave one holder, and each claimer learns of the one it replaced.
   */
  claimPushToken(token: string, owner: DeviceKey): Promise<DeviceKey | undefined>;
  /** Forgets the token if `owner` still holds it (a sign-out, a new token); a token that moved on is left alone. */
  releasePushToken(token: string, owner: DeviceKey): Promise<void>;
  /**
   * Push marks: a device with a notification not yet sent, so a node that dies within its coalescing window
   * or retries sends it after a restart. One per device (the first message of the burst); deleted once sent.
   */
  putPushMark(device: DeviceKey, mark: PushMark): Promise<void>;
  deletePushMark(device: DeviceKey): Promise<void>;
  /** Every push mark, in no order (read once at start). */
  listPushMarks(): Promise<PushMark[]>;
  /** Per-conversation mutes of a user: conversation → muted until (ms since the epoch). */
  getMutes(user: UserId): Promise<Map<ConversationId, number>>;
  /** Mutes a conversation until `until`; 0 unmutes it. */
  setMute(user: UserId, conv: ConversationId, until: number): Promise<void>;
  /** Raises the device's `lastActive` to `at` (never lowers it); on an unknown device it creates nothing. */
  setDeviceActive(user: UserId, device: DeviceId, at: number): Promise<void>;
  /**
   * Signs the device out: its record (acked pointer, push registration) is gone, so its tokens stop
   * authenticating. Device ids are never reused; acked/push/active writes issued before or after it
   * don't bring the device back.
   */
  deleteDevice(user: UserId, device: DeviceId): Promise<void>;
  /** The phone's one-time-code state; undefined if none or expired (`expiresAt` passed). */
  getOtp(phone: string): Promise<OtpRecord | undefined>;
  /**
   * Changes the phone's one-time-code state atomically: `step` gets the state as stored (undefined if none or
   * expired) and says what to store (`next`; none: leave it) and what to answer. Steps on one phone are
   * serialized across every node, so no two see the same state: a guess is counted exactly once, and only a
   * guess whose count was stored is answered. `step` must be pure and must not throw: a store may run it
   * again on a newer state (a compare-and-set that lost a race); only the run whose write landed answers.
   */
  otpUpdate<T>(phone: string, step: (cur: OtpRecord | undefined) => OtpStep<T>): Promise<T>;
  getContacts(user: UserId): Promise<UserId[]>;
  setContacts(user: UserId, add: UserId[], remove: UserId[]): Promise<void>;
  setLastSeen(user: UserId, ts: number): Promise<void>;
  getLastSeen(user: UserId): Promise<number | undefined>;

  // ---- groups: group → members and user → groups ----
  putGroup(g: GroupRecord): Promise<void>;
  getGroup(id: GroupId): Promise<GroupRecord | undefined>;
  userGroups(user: UserId): Promise<GroupId[]>;

  // ---- media metadata (the bytes live in the media store) ----
  putMedia(m: MediaRecord): Promise<void>;
  getMedia(id: string): Promise<MediaRecord | undefined>;
  /**
   * Media references: who may fetch a media (media → holder). A user holder is an uploader or one of the two
   * in a 1:1 chat where it was sent; a group conversation holder keeps the highest seq of a message there
   * naming it (a running max: writes may land in any order), so members added later see only what they
   * may see. Durable when the promise resolves; writing a ref again is harmless.
   */
  putMediaRefs(media: string, refs: MediaRef[]): Promise<void>;
  /** Those of `holders` that hold a ref to the media, with their seq (any number of holders, in no order). */
  getMediaRefs(media: string, holders: MediaHolder[]): Promise<MediaRef[]>;

  // ---- event journal and snapshots: per key (a persistent entity), the events by seq and its latest snapshot ----
  // The nact PersistenceEngine over them is src/store/persistence-engine.ts. A key has one writer, which
  // numbers its events from 1 up; seqs may have gaps (an event whose write failed), never duplicates.
  /**
   * Durable when the promise resolves. Never replaces a stored event: writing a seq that is already stored
   * resolves if it is the same event (a retry: same data and createdAt), else rejects with stale_owner (another
   * activation of the key wrote it first; replay and try again).
   */
  journalAppend(key: string, event: JournalEvent): Promise<void>;
  /** The key's events with seq > afterSeq, ascending by seq (across gaps), at most `limit`. */
  journalRead(key: string, afterSeq: number, limit: number): Promise<JournalEvent[]>;
  /** Durable when the promise resolves. Snapshots older (lower seq) than this one may be discarded. */
  snapshotPut(key: string, snapshot: SnapshotRecord): Promise<void>;
  /** The key's snapshot with the highest seq, if any. */
  snapshotLatest(key: string): Promise<SnapshotRecord | undefined>;

  // ---- dev outboxes (development nodes only) ----
  /**
   * What a development provider "sent" — a one-time code's text (box `sms`, keyed by phone), a push
   * notification (box `push`, keyed by user) — kept in the store so that every node answers the dev outbox
   * routes with what any node sent. An entry lives DEV_OUTBOX_TTL_MS; a key keeps its newest DEV_OUTBOX_KEEP.
   */
  devOutboxAdd(box: DevOutbox, key: string, data: Uint8Array): Promise<void>;
  /** The key's entries still kept, oldest first. */
  devOutboxList(box: DevOutbox, key: string): Promise<DevOutboxEntry[]>;

  // ---- privacy (docs/architecture.md, "GDPR"): the indexes export and erasure walk, and what erasure removes ----
  /** Notes the members of a 1:1 conversation (user → conversation), once per activation that stores a message. */
  noteDirectConversation(conv: ConversationId, users: readonly UserId[]): Promise<void>;
  /** The 1:1 conversations the user took part in (from noteDirectConversation), in no order. */
  directConversations(user: UserId): Promise<ConversationId[]>;
  /** The users who have `user` among their contacts (the reverse of getContacts, kept by setContacts). */
  contactOf(user: UserId): Promise<UserId[]>;
  /** The media the user uploaded (putMedia notes its owner's upload, also when the bytes were stored already). */
  uploadsOf(user: UserId): Promise<string[]>;
  /** Every ref to the media, whoever holds it. */
  listMediaRefs(media: string): Promise<MediaRef[]>;
  removeMediaRefs(media: string, holders: readonly MediaHolder[]): Promise<void>;
  /** The media's record and every ref to it (the bytes are the media store's). */
  deleteMedia(media: string): Promise<void>;
  /** Names another owner for a media record (erasure: the bytes stay for others, the uploader goes). */
  setMediaOwner(media: string, owner: UserId): Promise<void>;
  /** Stores `m` in place of the message at its seq (an erasure tombstone or a scrubbed system message). */
  replaceMessage(m: Message): Promise<void>;
  /**
   * Forgets a sender's client ids in a conversation: `cids` are those of messages still in the log (a store
   * keyed by sender may drop them all at once; Scylla's rows of messages no longer in the log expire by TTL).
   */
  dropClientIds(conv: ConversationId, from: UserId, cids: readonly string[]): Promise<void>;
  /** Deletes messages with seq ≤ `seq` (retention: transient history, the LMDB sweep). Client ids stay until they expire. */
  deleteMessagesUpTo(conv: ConversationId, seq: number): Promise<void>;
  /** Deletes a whole conversation: its messages and their client ids, cursors, fan-out mark, remembrance and fence. */
  dropConversation(conv: ConversationId): Promise<void>;
  deleteCursor(conv: ConversationId, user: UserId): Promise<void>;
  /** Deletes a fence (an inbox's or a conversation's) whose entity is gone for good. */
  dropFence(key: FenceKey): Promise<void>;
  /** Replaces a stored journal event (erasure scrubs an id out of a group's history); resolves if there is none. */
  journalReplace(key: string, event: JournalEvent): Promise<void>;
  /**
   * The account's own rows: the user, its phone claim (if it still holds it) and one-time-code state, last seen,
   * its contacts (and their reverse index), mutes, and the user's privacy indexes.
   */
  deleteAccount(user: UserId, phone: string): Promise<void>;
  /** Erasure markers: an erasure in progress, so a node that stops half-way finishes it when it starts. */
  putErasure(e: ErasureRecord): Promise<void>;
  getErasure(user: UserId): Promise<ErasureRecord | undefined>;
  listErasures(): Promise<ErasureRecord[]>;
  deleteErasure(user: UserId): Promise<void>;

  // ---- analytics (docs/architecture.md, "Analytics"): one row per period and node, no user ids ----
  /** Replaces the source's row of the period (a day YYYY-MM-DD or a month YYYY-MM); kept ANALYTICS_KEEP_DAYS. */
  putAnalytics(period: string, source: string, data: Uint8Array): Promise<void>;
  /** Every source's rows of these periods, in no order. */
  analyticsRows(periods: readonly string[]): Promise<AnalyticsRow[]>;

  close(): Promise<void>;
}

export interface AnalyticsRow { period: string; source: string; data: Uint8Array }
/** How long analytics rows are kept: a Scylla TTL, the LMDB hourly sweep. */
export const ANALYTICS_KEEP_MS = 400 * 86_400_000;

export type DevOutbox = 'sms' | 'push';
export interface DevOutboxEntry { at: number; data: Uint8Array }
/** How long a dev outbox entry is kept (a one-time code lives 5 minutes), and how many per key. */
export const DEV_OUTBOX_TTL_MS = 15 * 60_000;
export const DEV_OUTBOX_KEEP = 50;

/**
 * An erasure in progress. The phone is kept until the end so the last step can free its claim; `step` is
 * how far it got (the steps are idempotent: a restart runs from there).
 */
export interface ErasureRecord { user: UserId; phone: string; at: number; step: number }

export type DeviceKey = string;

/** The entity a fence belongs to: `c/<conversation>` or `i/<device key>` (see fenceKeys). */
export type FenceKey = `c/${string}` | `i/${string}`;
export const fenceKeys = {
  conv: (conv: ConversationId): FenceKey => `c/${conv}`,
  inbox: (device: DeviceKey): FenceKey => `i/${device}`,
};
/** An activation's claim: its epoch and the numbers reserved (by any epoch) up to then. */
export interface FenceClaim { epoch: number; reserved: number }

/** A member's state in a conversation: `from`, the first seq it may see (set when added to a group; absent: all). */
export interface ReceiptCursor { delivered: number; read: number; from?: number }

export interface InboxEntry {
  ptr: number;
  conv: ConversationId;
  seq: number;
  /** The message as msgpack, so a sync is one range read. */
  packed: Uint8Array;
  expiresAt: number;
}

export interface UserRecord {
  id: UserId;
  phone: string;
  name: string;
  avatar?: string;
  createdAt: number;
  lastSeenPrivacy: LastSeenPrivacy;
}

/**
 * Where and how a device is woken (validated by src/push/registration.ts). `token`: the APNs device token,
 * the FCM registration token, the WNS channel URI or the Web Push endpoint.
 */
export interface PushRegistration {
  platform: PushPlatform;
  token: string;
  /** Web Push subscription keys (base64url): the client's P-256 public key and its auth secret. */
  p256dh?: string;
  auth?: string;
  /** The APNs topic (bundle id), else the node's default; kept for other platforms as the app's id. */
  app?: string;
  /** The device allowed message text in notifications (plaintext bodies only). */
  previews?: boolean;
}
/** A notification owed to a device: the message that started its burst and the inbox ptr it got there. */
export interface PushMark {
  user: UserId;
  device: DeviceId;
  ptr: number;
  conv: ConversationId;
  seq: number;
  from: UserId;
  kind: MessageKind;
}
export interface DeviceRecord {
  user: UserId;
  id: DeviceId;
  name: string;
  platform: string;
  createdAt: number;
  /** Highest inbox ptr this device acknowledged. */
  acked: number;
  push?: PushRegistration;
  /** When the device was last connected (ms; absent: not since it signed in). */
  lastActive?: number;
}

/**
 * One phone number's one-time-code state: the pending code and what outlives it (the cooldown streak, the
 * wrong-code budget), so a new code resets neither. The policy over it is src/accounts/otp-policy.ts.
 */
export interface OtpRecord {
  /** HMAC of the pending code; absent when none is pending (used, withdrawn). */
  codeHash?: string;
  /** When the pending code stops working. */
  codeExpiresAt: number;
  /** Wrong codes against the pending code. */
  attempts: number;
  /** When the last code went out, and how many went out in the current streak (the cooldown grows with it). */
  sentAt: number;
  sends: number;
  /** Wrong codes against this number since `guessWindow` began, across codes... */
  guesses: number;
  guessWindow: number;
  /** ...and how many of them came from each address (keyed as src/transport/ip-key.ts does). */
  guessers: Record<string, number>;
  /** When the store may forget the record (a TTL). */
  expiresAt: number;
}

/** What an otpUpdate step decides: the record to store (none: leave it as it is) and the caller's answer. */
export interface OtpStep<T> { next?: OtpRecord; result: T }

export interface GroupRecord {
  id: GroupId;
  name: string;
  createdBy: UserId;
  createdAt: number;
  members: Record<UserId, GroupRole>;
}

/**
 * One persisted event. `data` is any msgpack-able value (a Uint8Array comes back as bytes); `tags` are
 * kept as given.
 */
export interface JournalEvent { seq: number; data: unknown; tags: string[]; createdAt: number }

/** The state of a key as of its event `seq` (the events after it replay on top). */
export interface SnapshotRecord { seq: number; data: unknown; createdAt: number }

export interface MediaRecord { id: string; mime: string; size: number; owner: UserId; createdAt: number }

/** `u:<user>`, `c:<conversation>`, or `*` (anyone signed in: a profile picture). */
export type MediaHolder = `u:${UserId}` | `c:${ConversationId}` | '*';
/** `seq`: for a conversation holder the highest seq naming the media; 0 for the others. */
export interface MediaRef { holder: MediaHolder; seq: number }
/** The refs a stored message adds to the media it names (see appendMessage). */
export interface MediaGrant { media: string; refs: MediaRef[] }
