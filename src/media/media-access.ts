import { groupConversationId, parseConversationId, type ConversationId, type UserId } from '../protocol/ids.js';
import type { Body, MessageKind } from '../protocol/frames.js';
import type { MediaHolder, MediaRef, Store } from '../store/store.js';

/**
 * Who may fetch a media: whoever uploaded it, and the members of a conversation where a message names it
 * (in a group, only members who may see that message: added before it). Everyone else is told it doesn't
 * exist, so a content hash can't be used to confirm that some bytes were shared.
 */

export const isMediaId = (s: unknown): s is string => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);

export const userHolder = (u: UserId): MediaHolder => `u:${u}`;
export const convHolder = (c: ConversationId): MediaHolder => `c:${c}`;
export const PUBLIC_HOLDER: MediaHolder = '*';

/** The media a message names: a plaintext image or video body, or an encrypted (`mls`) message that names its media id outside. */
export function mediaOf(kind: MessageKind, body: Body | undefined): string | undefined {
  if ((kind !== 'image' && kind !== 'video' && kind !== 'mls') || !body || body instanceof Uint8Array) return undefined;
  const media = body.media;
  return typeof media === 'string' ? media : undefined;
}

/**
 * The refs a message naming a media grants: both users of a 1:1 chat (its members never change), or the
 * group conversation as of the message's seq (its members do; who may see what is the conversation's to say).
 */
export function refsForMessage(conv: ConversationId, seq: number): MediaRef[] {
  const parsed = parseConversationId(conv);
  if (parsed?.kind === 'direct') return parsed.users.map((u) => ({ holder: userHolder(u), seq: 0 }));
  return [{ holder: convHolder(conv), seq }];
}

/** May `user` see message `seq` of group conversation `conv`? (A member, added at or before it.) */
export type SeesMessage = (conv: ConversationId, user: UserId, seq: number) => Promise<boolean>;

export interface MediaGate {
  /** True when `user` may fetch the media (and so may also name it in a message). */
  mayFetch(user: UserId, media: string): Promise<boolean>;
}

export class MediaAccess implements MediaGate {
  constructor(private readonly store: Store, private readonly sees: SeesMessage) {}

  async mayFetch(user: UserId, media: string): Promise<boolean> {
    if (!isMediaId(media)) return false;
    // The user's own ref and its groups in parallel: the common cases (an uploader, a 1:1 chat) are one round trip.
    const [own, groups] = await Promise.all([
      this.store.getMediaRefs(media, [userHolder(user), PUBLIC_HOLDER]),
      this.store.userGroups(user),
    ]);
    if (own.length > 0) return true;
    if (groups.length > 0) {
      const refs = await this.store.getMediaRefs(media, groups.map((g) => convHolder(groupConversationId(g))));
      // user → groups may be a step behind a removal: the conversation has the last word.
      for (const r of refs) if (await this.sees(r.holder.slice(2), user, r.seq)) return true;
    }
    // Media uploaded before refs were kept has none: its first uploader still has it.
    return (await this.store.getMedia(media))?.owner === user;
  }
}
