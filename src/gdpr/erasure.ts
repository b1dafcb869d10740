import type { Store, ErasureRecord, MediaHolder } from '../store/store.js';
import type { Sharding } from '../routing/sharding.js';
import type { MediaBlobs } from '../media/media-blobs.js';
import { ParleyError } from '../protocol/errors.js';
import { groupConversationId, parseConversationId, type ConversationId, type GroupId, type UserId } from '../protocol/ids.js';
import { log } from '../log.js';
import type { Audit } from './audit.js';
import { ERASED_USER, erasedMessage, names, scrubUser } from './scrub.js';

/** Messages read per page while a conversation's log is walked: at most this many are held at once. */
const PAGE = 500;
/** An entity may wait for a slow store before it answers (a barrier waits for the writes in flight). */
const ASK_MS = 60_000;
/** A step that failed with a retryable error (the store away, an entity that timed out) runs again after 1 s, doubling to a minute. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 60_000;

export interface ErasureDeps { store: Store; sharding: Sharding; media: MediaBlobs; audit: Audit }

/**
 * Account erasure (issue #15 §6; docs/architecture.md, "GDPR"): a job of idempotent steps behind a marker row
 * (`Store.putErasure`), written before the first step and advanced after each. A node that stops or dies
 * half-way finishes it when it starts (`resume`); two erasures of one user at once run the same steps,
 * each harmless done twice. The order matters:
 *
 *   0. revoke   the user entity signs every device out (records, sockets 4401, push tokens, inboxes, fences);
 *               from the marker on, no sign-in, group add or 1:1 conversation activation accepts the user
 *   1. groups   per group: wait for the group conversation's writes in flight, turn the user's messages
 *               into tombstones and scrub the id from system messages, the journal and the snapshot, then
 *               leave (admin handed over; the event names nobody), then the tail of the log once more
 *   2. direct   every 1:1 conversation is closed and dropped whole (its id names the user)
 *   3. contacts the user is removed from every contact list holding them
 *   4. media    what they uploaded loses their refs; bytes nobody else references are deleted
 *   5. account  the profile, phone claim, one-time-code state, last seen, contacts, mutes and indexes; then
 *               any device a racing sign-in left, and the marker
 *
 * Key-directory entries (end-to-end encryption, a later issue) go in `keyDirectory`, step 0.
 */
export class Erasures {
  private readonly running = new Map<UserId, Promise<void>>();
  private stopped = false;

  constructor(private readonly deps: ErasureDeps, private readonly keyDirectory: (user: UserId) => Promise<void> = async () => undefined) {}

  /** Marks the user for erasure (if it isn't yet) and runs it; joins one already running on this node. */
  async start(user: UserId): Promise<void> {
    const running = this.running.get(user);
    if (running) return running;
    const { store } = this.deps;
    let rec = await store.getErasure(user);
    if (!rec) {
      const u = await store.getUser(user);
      if (!u) throw new ParleyError('not_found', 'no such user');
      rec = { user, phone: u.phone, at: Date.now(), step: 0 };
      await store.putErasure(rec);
    }
    return this.run(rec, user);
  }

  /** At start: every erasure a node left unfinished (this one, or another that is gone). */
  async resume(): Promise<number> {
    const pending = await this.deps.store.listErasures();
    for (const rec of pending) {
      this.deps.audit.write({ action: 'erasure.resumed', actor: 'node', subject: rec.user, detail: { step: rec.step } });
      void this.run(rec, 'node').catch((err: unknown) => log('error', 'erasure not finished; it runs again at the next start', { user: rec.user, error: String(err) }));
    }
    return pending.length;
  }

  /** The node is stopping: no step starts again (the marker has the rest for the next start). */
  stop(): void {
    this.stopped = true;
  }

  private run(rec: ErasureRecord, actor: string): Promise<void> {
    const p = this.retrying(rec, actor).finally(() => this.running.delete(rec.user));
    this.running.set(rec.user, p);
    return p;
  }

  private async retrying(rec: ErasureRecord, actor: string): Promise<void> {
    for (let wait = RETRY_FIRST_MS; ; wait = Math.min(wait * 2, RETRY_MAX_MS)) {
      try {
        return await this.steps(rec, actor);
      } catch (err) {
        if (this.stopped || !(err instanceof ParleyError && err.retryable)) throw err;
        log('warn', 'erasure step failed; trying again', { user: rec.user, error: err.code, waitMs: wait });
        await new Promise((r) => setTimeout(r, wait).unref());
        rec = (await this.deps.store.getErasure(rec.user)) ?? rec;
      }
    }
  }

  private async steps(rec: ErasureRecord, actor: string): Promise<void> {
    const { store, audit } = this.deps;
    const steps: (() => Promise<number>)[] = [
      () => this.revoke(rec.user),
      () => this.groups(rec.user),
      () => this.direct(rec.user),
      () => this.contacts(rec.user),
      () => this.uploads(rec.user),
      () => this.account(rec),
    ];
    const counts: Record<string, number> = {};
    const labels = ['devices', 'groups', 'direct', 'contacts', 'media', 'account'];
    for (let i = rec.step; i < steps.length; i++) {
      counts[labels[i]!] = await steps[i]!();
      if (i < steps.length - 1) await store.putErasure({ ...rec, step: i + 1 });
    }
    await store.deleteErasure(rec.user);
    audit.write({ action: 'erasure.done', actor, subject: rec.user, detail: counts });
  }

  private async revoke(user: UserId): Promise<number> {
    const { devices } = await this.deps.sharding.ask<'user', { devices: number }>('user', user, (reply) => ({ t: 'erase', reply }), ASK_MS);
    await this.keyDirectory(user);
    return devices;
  }

  private async groups(user: UserId): Promise<number> {
    const { store, sharding } = this.deps;
    const groups = await store.userGroups(user);
    for (const g of groups) {
      const conv = groupConversationId(g);
      await this.barrier(conv, user);
      const upTo = await this.scrubLog(conv, user, 0);
      await this.scrubJournal(g, user);
      await sharding.ask('group', g, (reply) => ({ t: 'erase', reply, by: user }), ASK_MS);
      // Whatever named the user while the log was walked (an admin's change, a message in flight).
      await this.barrier(conv, user);
      await this.scrubLog(conv, user, upTo);
      await store.deleteCursor(conv, user);
    }
    return groups.length;
  }

  /** The conversation has stored everything in flight, and waits for none of the user's deliveries. */
  private barrier(conv: ConversationId, user: UserId): Promise<unknown> {
    return this.deps.sharding.ask('conv', conv, (reply) => ({ t: 'erase', reply, user }), ASK_MS);
  }

  /**
   * Walks the log after `after` a page at a time: the user's messages become tombstones (and their client
   * ids go), system messages naming them are scrubbed. Returns the last seq it saw.
   */
  private async scrubLog(conv: ConversationId, user: UserId, after: number): Promise<number> {
    const { store } = this.deps;
    for (;;) {
      const page = await store.getMessages(conv, { after, limit: PAGE });
      const cids: string[] = [];
      for (const m of page) {
        const e = erasedMessage(m, user);
        if (e) await store.replaceMessage(e);
        if (m.from === user) cids.push(m.cid);
      }
      await store.dropClientIds(conv, user, cids);
      if (page.length) after = page[page.length - 1]!.seq;
      if (page.length < PAGE) return after;
    }
  }

  /** The group's journal (nact's events) and snapshot, with the id replaced wherever it appears. */
  private async scrubJournal(group: GroupId, user: UserId): Promise<void> {
    const { store } = this.deps;
    const key = `group:${group}`;
    let after = 0;
    for (;;) {
      const page = await store.journalRead(key, after, PAGE);
      for (const e of page) if (names(e.data, user)) await store.journalReplace(key, { ...e, data: scrubUser(e.data, user) });
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.seq;
    }
    const snap = await store.snapshotLatest(key);
    if (snap && names(snap.data, user)) await store.snapshotPut(key, { ...snap, data: scrubUser(snap.data, user) });
  }

  private async direct(user: UserId): Promise<number> {
    const { store } = this.deps;
    const convs = await store.directConversations(user);
    for (const conv of convs) {
      // Not active (it can't start again: the user is being erased), so nothing of it is in flight.
      await this.barrier(conv, user).catch((err: unknown) => { if (!(err instanceof ParleyError && err.code === 'not_found')) throw err; });
      const other = parseConversationId(conv);
      if (other?.kind === 'direct') for (const u of other.users) if (u !== user) await store.setMute(u, conv, 0);
      await Promise.all([store.dropConversation(conv), store.e2e.dropGroupEpoch(conv)]);
    }
    return convs.length;
  }

  private async contacts(user: UserId): Promise<number> {
    const { store } = this.deps;
    const holders = await store.contactOf(user);
    for (const h of holders) await store.setContacts(h, [], [user]);
    return holders.length;
  }

  /**
   * The user's refs go (their own, and the public one of their profile picture); media someone else still
   * holds a ref to (a group it was sent in, the other side of a 1:1 chat, another uploader of the same
   * bytes) stays for them, its record no longer naming the user; the rest is deleted, bytes and all.
   */
  private async uploads(user: UserId): Promise<number> {
    const { store, media } = this.deps;
    let deleted = 0;
    for (const id of await store.uploadsOf(user)) {
      const rec = await store.getMedia(id);
      const own: MediaHolder[] = [`u:${user}`, ...(rec?.owner === user ? ['*' as const] : [])];
      const refs = await store.listMediaRefs(id);
      const others = refs.filter((r) => !own.includes(r.holder));
      if (others.length) {
        await store.removeMediaRefs(id, own);
        if (rec?.owner === user) await store.setMediaOwner(id, ERASED_USER);
        continue;
      }
      await store.deleteMedia(id);
      await media.delete(id);
      deleted++;
    }
    return deleted;
  }

  private async account(rec: ErasureRecord): Promise<number> {
    const { store } = this.deps;
    await store.deleteAccount(rec.user, rec.phone);
    // A sign-in that passed its check just before the marker was written may have stored a device since.
    const late = await store.listDevices(rec.user);
    for (const d of late) {
      await store.deleteDevice(rec.user, d.id);
      await store.inboxDrop(`${rec.user}.${d.id}`);
    }
    return late.length;
  }
}
