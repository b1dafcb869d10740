import type { ConversationId, DeviceId, GroupId, UserId } from './ids.js';
import type { ErrorCode } from './errors.js';

/**
 * The wire protocol: every frame is a map with a type `t`. docs/protocol.md is the prose form of this file.
 * Client frames may carry `rid` (request id); the answer to a request echoes it.
 */

export const MESSAGE_KINDS = ['text', 'image', 'video', 'location', 'edit', 'delete', 'reaction', 'system', 'mls'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];
/** Kinds a client may send; `system` is written by the server only. */
export type ClientMessageKind = Exclude<MessageKind, 'system'>;
/** Kinds that act on an earlier message, named by `target` (its seq). */
export const TARGETED_KINDS: ReadonlySet<MessageKind> = new Set(['edit', 'delete', 'reaction']);

/** A body is opaque to routing: a plaintext map checked at the edge, or bytes (ciphertext) never read. */
export type Body = Uint8Array | { [key: string]: unknown };

/** One message as stored and as delivered. Everything but `body` is the envelope the node routes by. */
export interface Message {
  conv: ConversationId;
  seq: number;
  from: UserId;
  dev: DeviceId;
  /** Client message id: a resend with the same cid is answered with the first seq, not stored twice. */
  cid: string;
  kind: MessageKind;
  /** Server time of acceptance, ms since the epoch. */
  ts: number;
  body?: Body;
  /** seq of the message this one replies to. */
  reply?: number;
  /** seq of the message an edit, delete or reaction acts on. */
  target?: number;
}

export type LastSeenPrivacy = 'everyone' | 'contacts' | 'nobody';
export const PUSH_PLATFORMS = ['apns', 'fcm', 'webpush', 'wns'] as const;
export type PushPlatform = (typeof PUSH_PLATFORMS)[number];
export type GroupRole = 'admin' | 'member';

// ---- client → server -------------------------------------------------------------------------------------

/** `rid`, optional, is echoed by an error refusing the sync. */
export interface SyncFrame { t: 'sync'; since: number; rid?: string }
export interface SendFrame {
  t: 'send'; rid?: string; cid: string; kind: ClientMessageKind;
  /** Either `to` (a user: the 1:1 conversation is derived) or `conv`. */
  to?: UserId; conv?: ConversationId;
  body?: Body; reply?: number; target?: number;
  /**
   * The first attempt of this `cid`: the server need not look it up among stored messages (a store read it
   * saves on every message). Omit it on any send that might have gone before; a fresh resend is stored twice.
   */
  fresh?: true;
}
export interface AckFrame { t: 'ack'; ptr: number }
export interface ReadFrame { t: 'read'; conv: ConversationId; seq: number }
export interface TypingFrame { t: 'typing'; conv: ConversationId; on: boolean }
/** A history read as the conversation runs it (the frame's bounds, with the limit resolved). */
export interface HistoryQuery { before?: number; after?: number; from?: number; until?: number; limit: number }
export interface HistoryFrame {
  t: 'history'; rid: string; conv: ConversationId;
  before?: number; after?: number; from?: number; until?: number; limit?: number;
}
/** Every member's receipt cursors in a conversation (a group's per-member detail is asked for, not pushed). */
export interface ReceiptsFrame { t: 'receipts'; rid: string; conv: ConversationId }
export interface PresenceSubFrame { t: 'presence.sub' | 'presence.unsub'; users: UserId[] }
export interface GroupCreateFrame { t: 'group.create'; rid: string; name: string; members?: UserId[] }
export interface GroupMembersFrame { t: 'group.add' | 'group.remove'; rid: string; group: GroupId; users: UserId[] }
export interface GroupAdminFrame { t: 'group.admin'; rid: string; group: GroupId; user: UserId }
export interface GroupRenameFrame { t: 'group.rename'; rid: string; group: GroupId; name: string }
export interface GroupLeaveFrame { t: 'group.leave' | 'group.info'; rid: string; group: GroupId }
export interface ProfileSetFrame { t: 'profile.set'; rid: string; name?: string; avatar?: string }
export interface ProfileGetFrame { t: 'profile.get'; rid: string; user: UserId }
export interface SettingsSetFrame { t: 'settings.set'; rid: string; lastSeen: LastSeenPrivacy }
export interface ContactsFrame { t: 'contacts.add' | 'contacts.remove'; rid: string; users: UserId[] }
/** Contact discovery: which of these phone numbers have accounts, and their user ids. */
export interface LookupFrame { t: 'users.lookup'; rid: string; phones: string[] }
/**
 * This device's push registration: `token` (APNs, FCM, WNS: the channel URI) or, for Web Push, the
 * subscription (`endpoint` and `keys`). `app`: the APNs topic; `previews`: message text may show.
 */
export interface PushRegisterFrame {
  t: 'push.register'; rid: string; platform: PushPlatform; token?: string;
  endpoint?: string; keys?: { p256dh: string; auth: string }; app?: string; previews?: boolean;
}
export interface PushUnregisterFrame { t: 'push.unregister'; rid: string }
/** Mutes a conversation's notifications until `until` (ms; absent: until unmuted), or unmutes it (`until: 0`). */
export interface MuteFrame { t: 'mute'; rid: string; conv: ConversationId; until?: number }
export interface PingFrame { t: 'ping'; rid?: string }
/** The user's devices (DeviceInfo[], oldest first). */
export interface DevicesListFrame { t: 'devices.list'; rid: string }
/** `this`: the asking device; `others`: every device but it; `all`: every device, it too. */
export type SignOutScope = 'this' | 'others' | 'all';
/** Which devices a sign-out names: one by id, or a scope. */
export type SignOutTarget = { device: DeviceId } | { scope: SignOutScope };
/** Signs out one device (`device`) or a scope (default `this`); answered with `{signedOut: [ids]}`. */
export type DevicesSignOutFrame = { t: 'devices.signout'; rid: string } & SignOutTarget;

// ---- end-to-end encryption (docs/protocol.md "End-to-end encryption"; bytes are opaque to the server) ----

/** Uploads this device's keys: its identity (MLS signature public key), a last-resort and one-time KeyPackages. */
export interface KeysPublishFrame {
  t: 'keys.publish'; rid: string; identity?: Uint8Array; lastResort?: Uint8Array;
  oneTime?: { id: string; keyPackage: Uint8Array }[];
}
/**
 * One KeyPackage of every device of these users (of `devices` only, when given), each one-time package
 * handed out once; a device with none left answers its last resort.
 */
export interface KeysClaimFrame { t: 'keys.claim'; rid: string; users: UserId[]; devices?: DeviceId[] }
/** The identities of these users' devices (for safety numbers), claiming nothing. */
export interface KeysListFrame { t: 'keys.list'; rid: string; users: UserId[] }
/** How many one-time KeyPackages this device has left. */
export interface KeysCountFrame { t: 'keys.count'; rid: string }

/**
 * The body of a `mls` message: what the server may know of it. `epoch` is the MLS epoch the message was
 * made in (a commit moves the group from it to `epoch + 1`); `users`, on a commit, the users whose devices
 * are the group's members after it. `data` is the MLS message; a commit that adds devices carries the
 * Welcome for them in `welcome`. `media`: the id of encrypted media the message names (so its readers may fetch it).
 */
export type MlsBody =
  | { mls: 'app'; epoch: number; data: Uint8Array; media?: string }
  | { mls: 'commit'; epoch: number; users: UserId[]; data: Uint8Array; welcome?: Uint8Array }
  | { mls: 'proposal'; epoch: number; data: Uint8Array };

export type ClientFrame =
  | SyncFrame | SendFrame | AckFrame | ReadFrame | TypingFrame | HistoryFrame | ReceiptsFrame | PresenceSubFrame
  | GroupCreateFrame | GroupMembersFrame | GroupAdminFrame | GroupRenameFrame | GroupLeaveFrame
  | ProfileSetFrame | ProfileGetFrame | SettingsSetFrame | ContactsFrame | LookupFrame | PushRegisterFrame | PingFrame
  | PushUnregisterFrame | MuteFrame | DevicesListFrame | DevicesSignOutFrame
  | KeysPublishFrame | KeysClaimFrame | KeysListFrame | KeysCountFrame;

export type ClientFrameType = ClientFrame['t'];

// ---- server → client -------------------------------------------------------------------------------------

export interface Limits {
  maxFrameBytes: number; maxBodyBytes: number; maxTextChars: number; historyPageMax: number;
  maxGroupMembers: number; maxMediaBytes: number;
}
/** `token`: a renewed session token for this device, when the one it connected with is due (keep it). */
export interface WelcomeFrame { t: 'welcome'; user: UserId; device: DeviceId; acked: number; time: number; limits: Limits; token?: string }
/** One inbox entry. `ptr` is this device's inbox pointer: ack it, and send the last one held in `sync`. */
export interface DeliveryFrame { t: 'msg'; ptr: number; m: Message }
/** The inbox is sent up to `ptr`; with `more`, ack and send `sync` again from `ptr` for the next page. */
export interface SyncedFrame { t: 'synced'; ptr: number; more?: true }
export interface SentFrame { t: 'sent'; rid?: string; cid: string; conv: ConversationId; seq: number; ts: number; dup?: true }
export type ReceiptStatus = 'delivered' | 'read' | 'delivered_all' | 'read_all';
/** Status up to and including seq `upTo`; `user` is absent on the *_all aggregates of groups. */
export interface ReceiptFrame { t: 'receipt'; conv: ConversationId; status: ReceiptStatus; upTo: number; user?: UserId }
export interface TypingEventFrame { t: 'typing'; conv: ConversationId; user: UserId; on: boolean }
/** `lastSeen` is absent while online and when the user's privacy hides it from you. */
export interface PresenceFrame { t: 'presence'; user: UserId; online: boolean; lastSeen?: number }
export interface ResultFrame { t: 'res'; rid: string; data: unknown }
export interface ErrorFrame { t: 'error'; rid?: string; cid?: string; code: ErrorCode; message: string; retryable: boolean; retryAfterMs?: number }
export interface PongFrame { t: 'pong'; rid?: string; time: number }
/**
 * Another device of this user was signed in (`added`) or signed out (`removed`), at `time`. A device that
 * was offline when one was added is told after its next sync, before `synced`.
 */
export interface DeviceEventFrame { t: 'device'; event: 'added' | 'removed'; device: DeviceInfo; time: number }
/** A device of this user published its first keys: the other devices add it to their encrypted groups. */
export interface KeysEventFrame { t: 'keys'; event: 'published'; device: DeviceId }

export type ServerFrame =
  | WelcomeFrame | DeliveryFrame | SyncedFrame | SentFrame | ReceiptFrame | TypingEventFrame
  | PresenceFrame | ResultFrame | ErrorFrame | PongFrame | DeviceEventFrame | KeysEventFrame;

// ---- shapes returned in `res` -----------------------------------------------------------------------------

/** `name` is absent until the user sets one. */
export interface Profile { id: UserId; name?: string; avatar?: string; createdAt: number }
/** One signed-in device. `online` and `current` (the asking device) are in the device list only. */
export interface DeviceInfo {
  id: DeviceId; name: string; platform: string; createdAt: number;
  /** When it was last connected (absent: not since it signed in). */
  lastActive?: number;
  online?: boolean;
  current?: true;
}
export interface SignOutResult { signedOut: DeviceId[] }
/** One device's entry in the key directory; `keyPackage` only in a claim (`lastResort`: it was the last resort). */
export interface DeviceKeyInfo { user: UserId; device: DeviceId; identity: Uint8Array; keyPackage?: Uint8Array; lastResort?: true }
export interface GroupInfo {
  id: GroupId; conv: ConversationId; name: string; createdBy: UserId; createdAt: number;
  members: { user: UserId; role: GroupRole }[];
}
