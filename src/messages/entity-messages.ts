import type { ConversationId, DeviceId, UserId } from '../protocol/ids.js';
import type {
  Body, ClientMessageKind, LastSeenPrivacy, MessageKind, PushPlatform, SignOutTarget,
} from '../protocol/frames.js';
import type { HistoryQuery } from '../protocol/frames.js';
import type { PushRegistration } from '../store/store.js';
import type { ErrorBody } from '../protocol/errors.js';
import type { ConnRef, Envelope, ReplyTo } from './seam.js';

/**
 * The messages entities exchange, as plain data: what sharding carries to an entity by id. Each type has a
 * schema in ./codec.ts (a cluster decodes and checks them there), and adding one here without it fails to compile.
 */

// ---- conversation ----
export interface ConvSend extends Envelope {
  t: 'send'; origin: ConnRef; cid: string; from: UserId; dev: DeviceId;
  kind: ClientMessageKind; body?: Body; replyTo?: number; target?: number;
  /** The sender's first attempt of `cid` (SendFrame.fresh): no dedupe lookup in the store. */
  fresh?: true;
}
/** From a user entity: a device acked up to `upTo`; `fanned`: seqs this ack confirmed, as in ConvFanned. */
export interface ConvDelivered extends Envelope { t: 'delivered'; user: UserId; upTo: number; fanned?: number[] }
export interface ConvRead extends Envelope { t: 'read'; user: UserId; seq: number }
export interface ConvTyping extends Envelope { t: 'typing'; user: UserId; on: boolean }
export interface ConvHistory extends Envelope { t: 'history'; reply: ReplyTo; user: UserId; q: HistoryQuery }
export interface ConvReceipts extends Envelope { t: 'receipts'; reply: ReplyTo; user: UserId }
/** From the group actor after it stored a membership change: the conversation logs it and fans it out. */
export interface ConvMembers extends Envelope { t: 'members'; members: Record<UserId, string>; event: GroupEvent; notify: UserId[] }
/** From a user entity: these seqs are in all its devices' inboxes. */
export interface ConvFanned extends Envelope { t: 'fanned'; user: UserId; seqs: number[] }
/** May `user` see message `seq` (a member, added at or before it)? Answers a boolean: media access asks it. */
export interface ConvVisible extends Envelope { t: 'visible'; reply: ReplyTo; user: UserId; seq: number }
/**
 * A conversation's own store write came back (its append, and for a delete the redact too): `error` when it
 * failed. `inc` names the incarnation that issued it; any other incarnation ignores it (the sender resends by cid).
 */
export interface ConvStored extends Envelope { t: 'stored'; inc: string; seq: number; error?: ErrorBody }
/** The conversation's fan-out timer: retry and slow notices are due, in a turn of incarnation `inc`. */
export interface ConvRetry extends Envelope { t: 'fanout.retry'; inc: string }
/**
 * From the conversation itself: how a seq reservation it started in the background ended. `epoch` is the
 * activation that started it: another activation (after a crash) ignores it.
 */
export interface ConvFence extends Envelope { t: 'fence'; epoch: number; upTo: number; outcome: 'reserved' | 'stale' | 'failed' }
/** From the cursor timer: delivered-only cursor moves are due to be stored, in a turn of incarnation `inc`. */
export interface ConvCursorsDue extends Envelope { t: 'cursors.due'; inc: string }
/** From the conversation itself: `user`'s read cursor is stored; its receipts ([from, to] moves) may go now. */
export interface ConvCursorStored extends Envelope { t: 'cursor.stored'; inc: string; user: UserId; read: [number, number]; delivered?: [number, number] }
/** From the conversation itself: the read cursors behind these "…_all" moves are stored. */
export interface ConvAllStored extends Envelope { t: 'all.stored'; inc: string; read?: [number, number]; delivered?: [number, number] }
/** From the node as it starts: the conversation may have deliveries to re-drive; activating it does that. Answers true. */
export interface ConvRecover extends Envelope { t: 'recover'; reply: ReplyTo }
/**
 * From an erasure (src/gdpr/erasure.ts): `user`'s account is being erased. Answered once the writes in flight
 * have landed; nothing waits for the user's deliveries from then on, and a 1:1 conversation closes for good.
 */
export interface ConvErase extends Envelope { t: 'erase'; reply: ReplyTo; user: UserId }
/** From the conversation itself: re-drive the next page of its log, after `after` (a takeover's backlog). */
export interface ConvRedrive extends Envelope { t: 'redrive'; inc: string; after: number }
export type ConvMsg =
  | ConvSend | ConvDelivered | ConvRead | ConvTyping | ConvHistory | ConvReceipts | ConvMembers | ConvFanned | ConvVisible
  | ConvStored | ConvRetry | ConvFence | ConvCursorsDue | ConvCursorStored | ConvAllStored | ConvRedrive | ConvRecover | ConvErase;

export interface GroupEvent { event: 'created' | 'added' | 'removed' | 'left' | 'admin' | 'renamed'; by: UserId; users?: UserId[]; name?: string }

// ---- user ----
export interface UserAttach extends Envelope { t: 'attach'; reply: ReplyTo; device: DeviceId; conn: ConnRef }
export interface UserDetach extends Envelope { t: 'detach'; device: DeviceId; conn: ConnRef }
/** `room`: bytes the socket can take now; the page goes in slices of what it can take (`sync.more` asks for the next). */
export interface UserSync extends Envelope { t: 'sync'; device: DeviceId; conn: ConnRef; since: number; room: number }
/** From the socket: its send buffer drained while a sync waited; it can take `room` bytes. */
export interface UserSyncMore extends Envelope { t: 'sync.more'; device: DeviceId; conn: ConnRef; room: number }
export interface UserAck extends Envelope { t: 'ack'; device: DeviceId; ptr: number }
/**
 * One stored message for every device of this user; `packed` is the Message as msgpack, packed once.
 * The user entity answers with ConvFanned once the inbox writes are durable. A `redelivery` may already be
 * there and is written only where it is missing.
 */
export interface UserDeliver extends Envelope {
  t: 'deliver'; conv: ConversationId; seq: number; from: UserId; dev: DeviceId; kind: MessageKind; packed: Uint8Array;
  redelivery?: true;
  /** The message's server time (ms): times send → ack for analytics (optional: an older node leaves it out). */
  ts?: number;
}
export interface UserPresenceSub extends Envelope { t: 'presence.sub' | 'presence.unsub'; viewer: UserId; conn: ConnRef }
export interface UserProfileSet extends Envelope { t: 'profile.set'; reply: ReplyTo; name?: string; avatar?: string }
export interface UserProfileGet extends Envelope { t: 'profile.get'; reply: ReplyTo; viewer: UserId }
export interface UserSettingsSet extends Envelope { t: 'settings.set'; reply: ReplyTo; lastSeen: LastSeenPrivacy }
export interface UserContacts extends Envelope { t: 'contacts'; reply: ReplyTo; add: UserId[]; remove: UserId[] }
export interface UserPushRegister extends Envelope { t: 'push.register'; reply: ReplyTo; device: DeviceId; push: PushRegistration }
export interface UserPushUnregister extends Envelope { t: 'push.unregister'; reply: ReplyTo; device: DeviceId }
/**
 * The device's registration at `token` is dead: the provider said so (`invalid`), or the token now belongs to
 * another device (`moved`). Removed only if the device still has that token (it may have registered anew).
 */
export interface UserPushDrop extends Envelope { t: 'push.drop'; device: DeviceId; platform: PushPlatform; token: string; why: 'invalid' | 'moved' }
export interface UserMute extends Envelope { t: 'mute'; reply: ReplyTo; conv: ConversationId; until: number }
/** From accounts: a device was signed in for this user; from now on its inbox receives the user's messages. */
export interface UserDeviceAdded extends Envelope { t: 'device.added'; reply: ReplyTo; device: DeviceId }
/** The user's devices as its entity holds them; `device` (the asker's) is marked current. */
export interface UserDevicesList extends Envelope { t: 'devices.list'; reply: ReplyTo; device: DeviceId }
/**
 * Signs devices out, asked by device `by`. `asker`: the socket it asked on, left open so that its session
 * can send the answer before it closes it. Answered with SignOutResult.
 */
export interface UserDevicesRemove extends Envelope { t: 'devices.remove'; reply: ReplyTo; by: DeviceId; which: SignOutTarget; asker?: ConnRef }
/**
 * From the user entity itself: a renewal of a device's inbox pointers was refused because a newer activation
 * (after a crash, or on another node) claimed them. `epoch` is the activation that asked: another ignores it.
 */
/** A renewal of a device's inbox pointer reservation ended (as ConvFence, for one device's pointers). */
export interface UserInboxFence extends Envelope { t: 'inbox.fence'; device: DeviceId; epoch: number; upTo: number; outcome: ConvFence['outcome'] }
/** From the user entity itself: an inbox write it issued in incarnation `inc` came back (`failed`: it didn't land). */
export interface UserInboxWritten extends Envelope { t: 'inbox.written'; inc: string; device: DeviceId; ptr: number; failed?: true }
/** From the node's timers: deferred inbox writes are due, or acks are to be stored, in a turn of incarnation `inc`. */
export interface UserWake extends Envelope { t: 'inbox.due' | 'acks.due'; inc: string }
/**
 * From an erasure: every device is signed out at once (records deleted, sockets closed with 4401, push tokens
 * released, inboxes dropped), and the entity answers nothing but not_found from then on. Answers {devices}.
 */
export interface UserErase extends Envelope { t: 'erase'; reply: ReplyTo }
/** In a cluster: a node left or failed; its sockets are gone (from every user entity on the surviving nodes). */
export interface UserNodeGone extends Envelope { t: 'node.gone'; node: string }
export type UserMsg =
  | UserInboxFence | UserInboxWritten | UserWake | UserNodeGone
  | UserAttach | UserDetach | UserSync | UserSyncMore | UserAck | UserDeliver | UserPresenceSub
  | UserProfileSet | UserProfileGet | UserSettingsSet | UserContacts | UserPushRegister | UserDeviceAdded
  | UserDevicesList | UserDevicesRemove | UserPushUnregister | UserPushDrop | UserMute | UserErase;

// ---- group ----
export interface GroupCreate extends Envelope { t: 'create'; reply: ReplyTo; by: UserId; name: string; members: UserId[] }
export interface GroupMembers extends Envelope { t: 'add' | 'remove'; reply: ReplyTo; by: UserId; users: UserId[] }
export interface GroupAdmin extends Envelope { t: 'admin'; reply: ReplyTo; by: UserId; user: UserId }
export interface GroupRename extends Envelope { t: 'rename'; reply: ReplyTo; by: UserId; name: string }
export interface GroupLeave extends Envelope { t: 'leave' | 'info'; reply: ReplyTo; by: UserId }
/** From an erasure: `by` leaves (admin handed over as on leave) and is no longer named as the group's creator. */
export interface GroupErase extends Envelope { t: 'erase'; reply: ReplyTo; by: UserId }
export type GroupMsg = GroupCreate | GroupMembers | GroupAdmin | GroupRename | GroupLeave | GroupErase;

export interface EntityMessages { user: UserMsg; conv: ConvMsg; group: GroupMsg }
export type EntityType = keyof EntityMessages;
export type AnyEntityMsg = EntityMessages[EntityType];

/**
 * What an entity sends itself: a store call's outcome, a timer's wake-up (tagged with its incarnation, or the
 * epoch it claimed). The cluster still delivers these to an entity that is finishing its work before its shard
 * moves (Region.handOff), when everything else for the shard waits for the next owner.
 */
type SelfMessage = ConvStored | ConvRetry | ConvFence | ConvCursorsDue | ConvCursorStored | ConvAllStored | ConvRedrive
  | UserInboxFence | UserInboxWritten | UserWake;
const SELF: Record<SelfMessage['t'], true> = {
  stored: true, 'fanout.retry': true, fence: true, 'cursors.due': true, 'cursor.stored': true, 'all.stored': true, redrive: true,
  'inbox.fence': true, 'inbox.written': true, 'inbox.due': true, 'acks.due': true,
};
export const isSelfMessage = (m: { t: string }): boolean => Object.hasOwn(SELF, m.t);
