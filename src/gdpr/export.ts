import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.js';
import { groupConversationId, type ConversationId, type UserId } from '../protocol/ids.js';
import type { Message } from '../protocol/frames.js';

/** Messages read per page while an archive is written: the most it holds at once, whatever the history's length. */
export const EXPORT_PAGE = 500;

/**
 * Export jobs are self-contained: `<user>.<expires>.<HMAC>`, so any node serves one (no job table, nothing to
 * clean up) and nobody else's id can be forged. The archive is written when it is fetched, from the store.
 */
export class ExportJobs {
  constructor(private readonly secret: Buffer, private readonly ttlMs: number) {}

  issue(user: UserId, now = Date.now()): { job: string; expiresAt: number } {
    const expiresAt = now + this.ttlMs;
    const body = `${user}.${expiresAt}`;
    return { job: `${body}.${this.mac(body)}`, expiresAt };
  }

  /** The user a job is for, if it is authentic and unexpired. */
  check(job: string, now = Date.now()): UserId | undefined {
    const m = /^([a-z2-7]{4,32})\.(\d{1,15})\.([\w-]{43})$/.exec(job);
    if (!m) return undefined;
    const want = Buffer.from(this.mac(`${m[1]}.${m[2]}`));
    const got = Buffer.from(m[3]!);
    if (want.length !== got.length || !timingSafeEqual(want, got) || Number(m[2]) <= now) return undefined;
    return m[1];
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update(`export:${body}`).digest('base64url');
  }
}

/** A push token in an archive: the SHA-256 of it, 16 hex digits (enough to match it with a device's own, not to use it). */
export const tokenFingerprint = (token: string): string => createHash('sha256').update(token).digest('hex').slice(0, 16);

/**
 * The archive (docs/protocol.md, "Export"), as JSON text in chunks: everything about the user first, then
 * their messages, a page of one conversation at a time. Nothing of other users beyond what the user sees
 * already: the ids of their contacts, of the other side of each 1:1 chat and of their groups' members.
 */
export async function* exportArchive(store: Store, user: UserId, now = Date.now()): AsyncGenerator<string> {
  const u = await store.getUser(user);
  if (!u) return;
  const [devices, contacts, lastSeen, mutes, groupIds, direct, uploads] = await Promise.all([
    store.listDevices(user), store.getContacts(user), store.getLastSeen(user), store.getMutes(user),
    store.userGroups(user), store.directConversations(user), store.uploadsOf(user),
  ]);
  const groups = (await Promise.all(groupIds.map((g) => store.getGroup(g)))).filter((g) => g && user in g.members);
  const media = (await Promise.all(uploads.map((id) => store.getMedia(id)))).filter((m) => m !== undefined);
  const head = {
    format: 'parley.export.v1',
    exportedAt: now,
    user: { id: u.id, phone: u.phone, name: u.name, ...(u.avatar ? { avatar: u.avatar } : {}), createdAt: u.createdAt },
    settings: { lastSeenPrivacy: u.lastSeenPrivacy, mutes: [...mutes].map(([conv, until]) => ({ conv, until })) },
    lastSeen: lastSeen ?? null,
    devices: devices.map((d) => ({
      id: d.id, name: d.name, platform: d.platform, createdAt: d.createdAt, lastActive: d.lastActive ?? null,
      push: d.push ? { platform: d.push.platform, tokenFingerprint: tokenFingerprint(d.push.token), ...(d.push.app ? { app: d.push.app } : {}), previews: d.push.previews === true } : null,
    })),
    contacts,
    groups: groups.map((g) => ({
      id: g!.id, conv: groupConversationId(g!.id), name: g!.name, role: g!.members[user], createdAt: g!.createdAt,
      createdByYou: g!.createdBy === user, members: Object.entries(g!.members).map(([id, role]) => ({ user: id, role })),
    })),
    conversations: [
      ...direct.map((conv) => ({ conv, kind: 'direct', with: conv.split('.').slice(1).find((x) => x !== user) })),
      ...groups.map((g) => ({ conv: groupConversationId(g!.id), kind: 'group' })),
    ],
    media: media.map((m) => ({ id: m!.id, mime: m!.mime, size: m!.size, createdAt: m!.createdAt, url: `/v1/media/${m!.id}` })),
  };
  const text = JSON.stringify(head);
  yield `${text.slice(0, -1)},"messages":[`;
  let first = true;
  for (const conv of [...direct, ...groups.map((g) => groupConversationId(g!.id))]) {
    for await (const m of sentBy(store, conv, user)) {
      yield `${first ? '' : ','}\n${JSON.stringify(archived(m))}`;
      first = false;
    }
  }
  yield '\n]}\n';
}

/** The user's messages in one conversation, oldest first, read a page at a time. */
async function* sentBy(store: Store, conv: ConversationId, user: UserId): AsyncGenerator<Message> {
  let after = 0;
  for (;;) {
    const page = await store.getMessages(conv, { after, limit: EXPORT_PAGE });
    for (const m of page) if (m.from === user) yield m;
    if (page.length < EXPORT_PAGE) return;
    after = page[page.length - 1]!.seq;
  }
}

/** A message as stored; a body that is bytes (ciphertext) as base64. */
function archived(m: Message): Record<string, unknown> {
  const { conv, seq, ts, kind, dev, cid, body, reply, target } = m;
  return {
    conv, seq, ts, kind, device: dev, cid,
    ...(body instanceof Uint8Array ? { bodyBase64: Buffer.from(body).toString('base64') } : body !== undefined ? { body } : {}),
    ...(reply !== undefined ? { reply } : {}), ...(target !== undefined ? { target } : {}),
  };
}
