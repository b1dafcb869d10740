import { ParleyError } from '../protocol/errors.js';
import type { UserId } from '../protocol/ids.js';
import type { MlsBody } from '../protocol/frames.js';
import type { GroupEpochRecord } from '../store/e2e-store.js';

/**
 * A conversation's MLS fence (docs/architecture.md, "End-to-end encryption"), pure: the epoch its accepted
 * commits reached and the users the last one declared. One commit per epoch is accepted (a second is
 * `epoch_conflict`), so members never fork; an encrypted message must come from the current epoch, and
 * while the conversation's members (the group admin API's) differ from the users the last commit declared,
 * encrypted messages are refused (`epoch_stale`) until a commit that matches them is accepted. A
 * conversation without an accepted commit is not encrypted: nothing is owed.
 */
export class MlsFence {
  private constructor(private epoch: number, private users: UserId[] | undefined) {}

  /** From the stored record; `pendingStored`: whether the pending commit's message is in the log. */
  static fromRecord(rec: GroupEpochRecord | undefined, pendingStored: boolean): MlsFence {
    if (!rec) return new MlsFence(0, undefined);
    if (rec.pending && pendingStored) return new MlsFence(rec.epoch + 1, rec.pending.users);
    return new MlsFence(rec.epoch, rec.users.length ? rec.users : undefined);
  }

  get current(): number { return this.epoch; }

  /**
   * An erased member: named no more (it becomes ERASED_USER, so the group still owes the commit removing
   * its leaves). Returns the record to store, or undefined if the user was not among the declared users.
   */
  erase(user: UserId, erased: UserId): GroupEpochRecord | undefined {
    if (!this.users?.includes(user)) return undefined;
    this.users = this.users.map((u) => (u === user ? erased : u));
    return { epoch: this.epoch, users: [...this.users] };
  }

  /** Encrypted, and its MLS members are not the conversation's. */
  owed(members: Iterable<UserId>): boolean {
    if (!this.users) return false;
    const m = new Set(members);
    return m.size !== this.users.length || this.users.some((u) => !m.has(u));
  }

  /**
   * Admits an `mls` message or refuses it. An admitted commit moves the fence at once (a second commit for
   * the epoch, arriving while the first is stored, is refused); `record` is what to store before appending
   * it, and `undo` puts the fence back if the append fails.
   */
  admit(body: MlsBody, members: Iterable<UserId>): CommitTicket | undefined {
    if (body.mls === 'commit') {
      if (body.epoch !== this.epoch) {
        throw new ParleyError('epoch_conflict', `the group is at epoch ${this.epoch}: a commit from epoch ${body.epoch} was refused (another member committed first; process its commit)`);
      }
      const before = { epoch: this.epoch, users: this.users };
      this.epoch = body.epoch + 1;
      this.users = [...body.users];
      const users = [...body.users];
      return {
        record: (s) => ({ epoch: before.epoch, users: before.users ?? [], pending: { seq: s, users } }),
        done: { epoch: this.epoch, users },
        undo: () => {
          if (this.epoch === before.epoch + 1) { this.epoch = before.epoch; this.users = before.users; }
        },
      };
    }
    if (body.epoch !== this.epoch) {
      throw new ParleyError('epoch_stale', `the group is at epoch ${this.epoch}, this message was made in ${body.epoch}: process the commits waiting, then send it again`);
    }
    if (body.mls === 'app' && this.owed(members)) {
      throw new ParleyError('epoch_stale', 'the group\'s membership changed: the encrypted group is owed a commit for it before more messages');
    }
    return undefined;
  }
}

/** An admitted commit: the record to store before its append (`pending` at its seq), after it, and the undo. */
export interface CommitTicket {
  record(seq: number): GroupEpochRecord;
  done: GroupEpochRecord;
  undo(): void;
}
