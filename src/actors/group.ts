import { ParleyError } from '../protocol/errors.js';
import { groupConversationId, type GroupId, type UserId } from '../protocol/ids.js';
import type { GroupInfo, GroupRole } from '../protocol/frames.js';
import type { GroupRecord } from '../store/store.js';
import type { ActorDeps } from './deps.js';
import type { GroupEvent, GroupMsg } from '../messages/entity-messages.js';
import type { JournaledEntity, JournaledKind } from './region.js';
import { ERASED_USER } from '../gdpr/scrub.js';

/** What the group journals: each change, with the record as it stands after it. */
interface GroupChanged { record: GroupRecord; event: GroupEvent }
const SNAPSHOT_EVERY = 50;

/**
 * One group: its name, members and admins. Only members see it, only admins change it. The group is
 * event-sourced: each change is journaled (nact persistence on the node's store, snapshots every 50), then
 * projected to the group tables (group → members, user → groups) and handed to the group's conversation,
 * which logs it as a system message every member receives.
 */
export class Group implements JournaledEntity<GroupMsg> {
  static kind(deps: ActorDeps): JournaledKind<GroupMsg> {
    const load = async (id: GroupId) => new Group(id, deps);
    return { type: 'group', load, journal: { snapshotEvery: SNAPSHOT_EVERY, create: (id) => new Group(id, deps) } };
  }

  persist?: (event: unknown) => Promise<void>;
  private rec: GroupRecord | undefined;

  private constructor(private readonly id: GroupId, private readonly deps: ActorDeps) {}

  apply(event: unknown): void {
    this.rec = (event as GroupChanged).record;
  }

  snapshot(): unknown {
    return this.rec ?? null;
  }

  restore(snapshot: unknown): void {
    this.rec = (snapshot as GroupRecord | null) ?? undefined;
  }

  async handle(msg: GroupMsg): Promise<void> {
    const value = await this.decide(msg);
    this.deps.sharding.reply(msg.reply, { ok: true, value });
  }

  private async decide(msg: GroupMsg): Promise<GroupInfo | { erased: true }> {
    if (msg.t === 'create') {
      if (this.rec) throw new ParleyError('conflict', 'group exists');
      const members: Record<UserId, GroupRole> = { [msg.by]: 'admin' };
      for (const u of msg.members) members[u] ??= 'member';
      await this.checkUsers(Object.keys(members));
      return this.commit({ id: this.id, name: msg.name, createdBy: msg.by, createdAt: Date.now(), members }, { event: 'created', by: msg.by, name: msg.name, users: Object.keys(members) });
    }
    const g = this.rec;
    if (msg.t === 'erase') return this.erase(msg.by);
    if (!g || !(msg.by in g.members)) throw new ParleyError('not_found', 'no such group, or you are not a member');
    const members = { ...g.members };
    switch (msg.t) {
      case 'info':
        return this.info(g);
      case 'leave': {
        const { next, event } = leaving(g, msg.by);
        return this.commit(next, event, [msg.by]);
      }
    }
    if (g.members[msg.by] !== 'admin') throw new ParleyError('forbidden', 'only group admins may do that');
    switch (msg.t) {
      case 'add': {
        const added = msg.users.filter((u) => !(u in members));
        await this.checkUsers(added);
        for (const u of added) members[u] = 'member';
        this.checkSize(members);
        return this.commit({ ...g, members }, { event: 'added', by: msg.by, users: added });
      }
      case 'remove': {
        const removed = msg.users.filter((u) => u in members && u !== msg.by);
        for (const u of removed) delete members[u];
        return this.commit({ ...g, members }, { event: 'removed', by: msg.by, users: removed }, removed);
      }
      case 'admin':
        if (!(msg.user in members)) throw new ParleyError('not_found', 'that user is not a member');
        members[msg.user] = 'admin';
        return this.commit({ ...g, members }, { event: 'admin', by: msg.by, users: [msg.user] });
      case 'rename':
        return this.commit({ ...g, name: msg.name }, { event: 'renamed', by: msg.by, name: msg.name });
    }
  }

  /**
   * An erased member leaves as on leave (an admin is handed over), is told nothing (nobody is left to tell),
   * and is no longer named as the group's creator. Idempotent: a restarted erasure finds nothing to do.
   */
  private async erase(user: UserId): Promise<GroupInfo | { erased: true }> {
    const g = this.rec;
    // After a crash the erasure may have scrubbed the journal before this leave: the id replayed as ERASED_USER.
    const who = !g ? undefined : user in g.members ? user : ERASED_USER in g.members ? ERASED_USER : undefined;
    if (!g || (!who && g.createdBy !== user)) return { erased: true };
    const { next, event } = who ? leaving(g, who) : { next: { ...g }, event: { event: 'left' as const, by: ERASED_USER } };
    if (next.createdBy === user) next.createdBy = ERASED_USER;
    // The event names nobody: the journal and the group's log hold no trace of the id from here on.
    return this.commit(next, { ...event, by: ERASED_USER });
  }

  private async commit(next: GroupRecord, event: GroupEvent, alsoNotify: UserId[] = []): Promise<GroupInfo> {
    this.checkSize(next.members);
    const change: GroupChanged = { record: next, event };
    await this.persist!(change).catch((err: unknown) => {
      // Another activation (another node) journaled this seq first: this one's state is behind. A crash
      // replays the journal (the client is told to retry, and its retry sees the other change).
      if (err instanceof ParleyError && err.code === 'stale_owner') throw new Error(`group ${this.id}: ${err.message}`);
      throw err;
    });
    this.apply(change);
    await this.deps.store.putGroup(next);
    this.deps.sharding.tell('conv', groupConversationId(this.id), { t: 'members', members: next.members, event, notify: alsoNotify });
    return this.info(next);
  }

  private checkSize(members: Record<UserId, GroupRole>): void {
    const max = this.deps.config.limits.maxGroupMembers;
    if (Object.keys(members).length > max) throw new ParleyError('invalid', `a group has at most ${max} members`);
  }

  private async checkUsers(users: UserId[]): Promise<void> {
    // An account being erased is no longer one: it can't be added back to a group it is leaving.
    const found = await Promise.all(users.map(async (u) => (await this.deps.store.getUser(u)) && !(await this.deps.store.getErasure(u))));
    const missing = users.filter((_, i) => !found[i]);
    if (missing.length) throw new ParleyError('not_found', `no such user: ${missing.join(', ')}`);
  }

  private info(g: GroupRecord): GroupInfo {
    return {
      id: g.id, conv: groupConversationId(g.id), name: g.name, createdBy: g.createdBy, createdAt: g.createdAt,
      members: Object.entries(g.members).map(([user, role]) => ({ user, role })),
    };
  }
}

/** `user` leaves `g`: the record after, and the event. A group is never left without an admin: the longest-standing member is promoted. */
function leaving(g: GroupRecord, user: UserId): { next: GroupRecord; event: GroupEvent } {
  const members = { ...g.members };
  delete members[user];
  const heir = Object.keys(members)[0];
  if (heir && !Object.values(members).includes('admin')) members[heir] = 'admin';
  return { next: { ...g, members }, event: { event: 'left', by: user, ...(heir && members[heir] !== g.members[heir] ? { users: [heir] } : {}) } };
}
