import { ParleyError } from '../../protocol/errors.js';
import type { ConversationId, DeviceId, UserId } from '../../protocol/ids.js';
import type { ClaimedKey, DeviceKeys, E2eStore, GroupEpochRecord, KeyUpload } from '../e2e-store.js';
import type { Table } from './table.js';
import type { WriteBatch } from './write-batch.js';

type Key = (string | number)[];
interface DeviceRow { identity: Uint8Array; lastResort?: Uint8Array; publishedAt: number }

/**
 * The key directory and group epochs on LMDB. A claim reads and deletes its one-time package inside one
 * write transaction, and LMDB's write lock serializes transactions across every process on the directory:
 * two claims never see the same package.
 */
export class LmdbE2e implements E2eStore {
  constructor(
    private readonly batch: WriteBatch,
    /** [user, device] → identity and last resort. */
    private readonly devices: Table<DeviceRow, Key>,
    /** [user, device, id] → a one-time KeyPackage. */
    private readonly packages: Table<Uint8Array, Key>,
    private readonly epochs: Table<GroupEpochRecord, string>,
  ) {}

  publishKeys(user: UserId, device: DeviceId, upload: KeyUpload): Promise<void> {
    return this.batch.run(() => {
      const row = this.devices.get([user, device]);
      const identity = upload.identity ?? row?.identity;
      if (!identity) throw new ParleyError('invalid', 'a device publishes its identity key first');
      const lastResort = upload.lastResort ?? row?.lastResort;
      this.devices.put([user, device], { identity, ...(lastResort ? { lastResort } : {}), publishedAt: row?.publishedAt ?? Date.now() });
      for (const p of upload.oneTime ?? []) if (!this.packages.get([user, device, p.id])) this.packages.put([user, device, p.id], p.keyPackage);
    });
  }

  claimKey(user: UserId, device: DeviceId): Promise<ClaimedKey | undefined> {
    return this.batch.run(() => {
      const row = this.devices.get([user, device]);
      if (!row) return undefined;
      for (const { key, value } of this.packages.entries({ start: [user, device], end: [user, device, '\uffff'], limit: 1 })) {
        this.packages.remove(key);
        return { user, device, identity: bytes(row.identity), keyPackage: bytes(value), lastResort: false };
      }
      if (!row.lastResort) return undefined;
      return { user, device, identity: bytes(row.identity), keyPackage: bytes(row.lastResort), lastResort: true };
    });
  }

  async keyDevices(user: UserId): Promise<DeviceKeys[]> {
    const out: DeviceKeys[] = [];
    for (const { key, value } of this.devices.entries({ start: [user], end: [user, '\uffff'] })) {
      out.push({ user, device: key[1] as DeviceId, identity: bytes(value.identity), hasLastResort: !!value.lastResort, publishedAt: value.publishedAt });
    }
    return out.sort((a, b) => a.publishedAt - b.publishedAt);
  }

  async countKeys(user: UserId, device: DeviceId): Promise<number> {
    let n = 0;
    for (const _ of this.packages.keys({ start: [user, device], end: [user, device, '\uffff'] })) n++;
    return n;
  }

  dropDeviceKeys(user: UserId, device: DeviceId): Promise<void> {
    return this.batch.run(() => {
      this.devices.remove([user, device]);
      for (const key of [...this.packages.keys({ start: [user, device], end: [user, device, '\uffff'] })]) this.packages.remove(key);
    });
  }

  dropUserKeys(user: UserId): Promise<void> {
    return this.batch.run(() => {
      for (const t of [this.devices, this.packages] as Table<unknown, Key>[]) {
        for (const key of [...t.keys({ start: [user], end: [user, '\uffff'] })]) t.remove(key);
      }
    });
  }

  async getGroupEpoch(conv: ConversationId): Promise<GroupEpochRecord | undefined> {
    return this.epochs.get(conv);
  }

  putGroupEpoch(conv: ConversationId, rec: GroupEpochRecord): Promise<void> {
    return this.batch.run(() => this.epochs.put(conv, rec));
  }

  dropGroupEpoch(conv: ConversationId): Promise<void> {
    return this.batch.run(() => void this.epochs.remove(conv));
  }
}

/** LMDB's msgpack gives Buffers; callers get plain bytes. */
const bytes = (b: Uint8Array): Uint8Array => new Uint8Array(b);
