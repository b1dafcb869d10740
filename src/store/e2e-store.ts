import type { ConversationId, DeviceId, UserId } from '../protocol/ids.js';

/**
 * The end-to-end encryption domain of the store (docs/architecture.md, "End-to-end encryption"): the key
 * directory (per device: its identity key, a last-resort MLS KeyPackage and one-time KeyPackages) and, per
 * conversation, the MLS epoch its accepted commits reached. Everything here is opaque bytes to the server:
 * it never parses a KeyPackage. LMDB and Scylla implement it identically (test/store/e2e-conformance.ts).
 */
export interface E2eStore {
  // ---- key directory: per (user, device) ----
  /**
   * Uploads a device's keys: `identity` and `lastResort`, when given, replace the stored ones; each one-time
   * package is added under its id (an id already stored is left as it is: an upload sent again is harmless).
   */
  publishKeys(user: UserId, device: DeviceId, upload: KeyUpload): Promise<void>;
  /**
   * Hands out one KeyPackage of the device: a one-time package, which is deleted in the same step, so no
   * two claims (on any node, at the same moment) ever get the same one; when none is left, the last-resort
   * package, which is never deleted. Undefined: the device published no keys.
   */
  claimKey(user: UserId, device: DeviceId): Promise<ClaimedKey | undefined>;
  /** The user's devices that published keys, oldest first. */
  keyDevices(user: UserId): Promise<DeviceKeys[]>;
  /** One-time packages the device has left (so it knows when to upload more). */
  countKeys(user: UserId, device: DeviceId): Promise<number>;
  /** A device signed out: its identity and every package go. */
  dropDeviceKeys(user: UserId, device: DeviceId): Promise<void>;
  /** Erasure: every device's keys. */
  dropUserKeys(user: UserId): Promise<void>;

  // ---- the MLS epoch of a conversation (its conversation entity is the only writer) ----
  getGroupEpoch(conv: ConversationId): Promise<GroupEpochRecord | undefined>;
  putGroupEpoch(conv: ConversationId, rec: GroupEpochRecord): Promise<void>;
  dropGroupEpoch(conv: ConversationId): Promise<void>;
}

export interface KeyUpload {
  /** The device's MLS signature public key: what safety numbers are made of. */
  identity?: Uint8Array;
  lastResort?: Uint8Array;
  oneTime?: { id: string; keyPackage: Uint8Array }[];
}

export interface DeviceKeys { user: UserId; device: DeviceId; identity: Uint8Array; hasLastResort: boolean; publishedAt: number }

export interface ClaimedKey { user: UserId; device: DeviceId; identity: Uint8Array; keyPackage: Uint8Array; lastResort: boolean }

/**
 * `epoch` is the MLS epoch the conversation's group is at and `users` the members its last accepted commit
 * declared. `pending` is written before a commit is appended: if the message at `pending.seq` is stored, the
 * group is at `epoch + 1` with `pending.users`. The record is written again without it once the append
 * lands, so a conversation that restarts in between still knows its epoch (src/actors/mls-fence.ts).
 */
export interface GroupEpochRecord { epoch: number; users: UserId[]; pending?: { seq: number; users: UserId[] } }
