import type { types } from 'cassandra-driver';
import type { ConversationId, DeviceId, UserId } from '../../protocol/ids.js';
import { ParleyError } from '../../protocol/errors.js';
import type { ClaimedKey, DeviceKeys, E2eStore, GroupEpochRecord, KeyUpload } from '../e2e-store.js';
import type { CqlRunner } from './media-blobs.js';

/** One-time packages read per round of a claim: the candidates it tries to delete, one after another. */
const CLAIM_CANDIDATES = 8;
/** Rounds of candidates a claim goes through before it answers store_unavailable (every one lost to a racer). */
const CLAIM_ROUNDS = 16;

/**
 * The key directory and group epochs on ScyllaDB (schema v13). A claim reads a few one-time packages and
 * deletes them one by one with `DELETE ... IF EXISTS`: only the claim whose delete was applied hands the
 * package out; a claim that lost the row to a concurrent one tries the next. With none left it answers the
 * last-resort package, which is never deleted.
 */
export class ScyllaE2e implements E2eStore {
  private readonly q: ReturnType<typeof e2eStatements>;

  constructor(ks: string, private readonly cql: CqlRunner) {
    this.q = e2eStatements(ks);
  }

  private read(query: string, params: unknown[]): Promise<types.ResultSet> {
    return this.cql.run(query, params, { idempotent: true });
  }

  async publishKeys(user: UserId, device: DeviceId, upload: KeyUpload): Promise<void> {
    const row = (await this.read(this.q.getDevice, [user, device])).first();
    if (!row && !upload.identity) throw new ParleyError('invalid', 'a device publishes its identity key first');
    await Promise.all((upload.oneTime ?? []).map((p) => this.read(this.q.putPackage, [user, device, p.id, Buffer.from(p.keyPackage)])));
    // The device row last: a device is listed once its packages are there.
    const identity = upload.identity ? Buffer.from(upload.identity) : (row!.get('identity') as Buffer);
    const lastResort = upload.lastResort ? Buffer.from(upload.lastResort) : (row?.get('last_resort') as Buffer | null) ?? null;
    const at = row ? Number(row.get('published_at')) : Date.now();
    await this.read(this.q.putDevice, [user, device, identity, lastResort, at]);
  }

  async claimKey(user: UserId, device: DeviceId): Promise<ClaimedKey | undefined> {
    const row = (await this.read(this.q.getDevice, [user, device])).first();
    if (!row) return undefined;
    const identity = bytes(row.get('identity') as Buffer);
    for (let round = 0; round < CLAIM_ROUNDS; round++) {
      const candidates = (await this.read(this.q.somePackages, [user, device, CLAIM_CANDIDATES])).rows;
      if (candidates.length === 0) break;
      for (const c of candidates) {
        const rs = await this.cql.run(this.q.takePackage, [user, device, c.get('id') as string], { idempotent: false });
        if (rs.first()?.get('[applied]') === true) return { user, device, identity, keyPackage: bytes(c.get('key_package') as Buffer), lastResort: false };
      }
    }
    const lastResort = row.get('last_resort') as Buffer | null;
    if (!lastResort) {
      if ((await this.read(this.q.somePackages, [user, device, 1])).rowLength) throw new ParleyError('store_unavailable', 'every key package was claimed by others meanwhile; ask again');
      return undefined;
    }
    return { user, device, identity, keyPackage: bytes(lastResort), lastResort: true };
  }

  async keyDevices(user: UserId): Promise<DeviceKeys[]> {
    const rs = await this.read(this.q.devicesOf, [user]);
    return rs.rows.map((r) => ({
      user, device: r.get('device') as DeviceId, identity: bytes(r.get('identity') as Buffer),
      hasLastResort: r.get('last_resort') !== null, publishedAt: Number(r.get('published_at')),
    })).sort((a, b) => a.publishedAt - b.publishedAt);
  }

  async countKeys(user: UserId, device: DeviceId): Promise<number> {
    const rs = await this.read(this.q.countPackages, [user, device]);
    return Number(rs.first()?.get('count') ?? 0);
  }

  async dropDeviceKeys(user: UserId, device: DeviceId): Promise<void> {
    await Promise.all([this.read(this.q.dropDevice, [user, device]), this.read(this.q.dropPackages, [user, device])]);
  }

  async dropUserKeys(user: UserId): Promise<void> {
    const devices = (await this.read(this.q.devicesOf, [user])).rows.map((r) => r.get('device') as DeviceId);
    await Promise.all(devices.map((d) => this.read(this.q.dropPackages, [user, d])));
    await this.read(this.q.dropUser, [user]);
  }

  async getGroupEpoch(conv: ConversationId): Promise<GroupEpochRecord | undefined> {
    const r = (await this.read(this.q.getEpoch, [conv])).first();
    if (!r) return undefined;
    const rec: GroupEpochRecord = { epoch: Number(r.get('epoch')), users: (r.get('users') as string[] | null) ?? [] };
    const seq = r.get('pending_seq') as types.Long | null;
    if (seq !== null) rec.pending = { seq: Number(seq), users: (r.get('pending_users') as string[] | null) ?? [] };
    return rec;
  }

  async putGroupEpoch(conv: ConversationId, rec: GroupEpochRecord): Promise<void> {
    await this.read(this.q.putEpoch, [conv, rec.epoch, rec.users, rec.pending?.seq ?? null, rec.pending?.users ?? null]);
  }

  async dropGroupEpoch(conv: ConversationId): Promise<void> {
    await this.read(this.q.dropEpoch, [conv]);
  }
}

const bytes = (b: Buffer): Uint8Array => new Uint8Array(b);

function e2eStatements(ks: string) {
  return {
    getDevice: `SELECT identity, last_resort, published_at FROM ${ks}.key_devices WHERE user_id = ? AND device = ?`,
    putDevice: `INSERT INTO ${ks}.key_devices (user_id, device, identity, last_resort, published_at) VALUES (?, ?, ?, ?, ?)`,
    devicesOf: `SELECT device, identity, last_resort, published_at FROM ${ks}.key_devices WHERE user_id = ?`,
    dropDevice: `DELETE FROM ${ks}.key_devices WHERE user_id = ? AND device = ?`,
    dropUser: `DELETE FROM ${ks}.key_devices WHERE user_id = ?`,
    putPackage: `INSERT INTO ${ks}.key_packages (user_id, device, id, key_package) VALUES (?, ?, ?, ?)`,
    somePackages: `SELECT id, key_package FROM ${ks}.key_packages WHERE user_id = ? AND device = ? LIMIT ?`,
    takePackage: `DELETE FROM ${ks}.key_packages WHERE user_id = ? AND device = ? AND id = ? IF EXISTS`,
    countPackages: `SELECT COUNT(*) AS count FROM ${ks}.key_packages WHERE user_id = ? AND device = ?`,
    dropPackages: `DELETE FROM ${ks}.key_packages WHERE user_id = ? AND device = ?`,
    getEpoch: `SELECT epoch, users, pending_seq, pending_users FROM ${ks}.group_epochs WHERE conv = ?`,
    putEpoch: `INSERT INTO ${ks}.group_epochs (conv, epoch, users, pending_seq, pending_users) VALUES (?, ?, ?, ?, ?)`,
    dropEpoch: `DELETE FROM ${ks}.group_epochs WHERE conv = ?`,
  };
}
