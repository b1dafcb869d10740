import type { Message } from '../protocol/frames.js';
import type { UserId } from '../protocol/ids.js';

/**
 * What erasure leaves in place of an erased user (docs/protocol.md, "Erasure"): not a valid user id, so
 * nothing can address it, sign in as it or start a conversation with it.
 */
export const ERASED_USER = '~erased';

/**
 * `value` with every string equal to `user`, and every object key equal to it, replaced by ERASED_USER;
 * a new value, the input is left as it was. For the ids inside journaled group events and system messages.
 */
export function scrubUser<T>(value: T, user: UserId): T {
  return scrub(value, user) as T;
}

function scrub(v: unknown, user: UserId): unknown {
  if (v === user) return ERASED_USER;
  if (Array.isArray(v)) return v.map((x) => scrub(x, user));
  if (v instanceof Uint8Array || v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k === user ? ERASED_USER : k] = scrub(x, user);
  return out;
}

/** True when `value` holds `user` as a string or an object key anywhere. */
export function names(value: unknown, user: UserId): boolean {
  if (value === user) return true;
  if (Array.isArray(value)) return value.some((x) => names(x, user));
  if (value instanceof Uint8Array || value === null || typeof value !== 'object') return false;
  for (const [k, x] of Object.entries(value)) if (k === user || names(x, user)) return true;
  return false;
}

/**
 * What erasure does to one stored message of a conversation the user stays in the history of (a group):
 * a message they sent becomes a tombstone — its seq, time, kind and the seqs it replied to or targeted, no
 * body, sender, device or client id — so seqs stay contiguous; a system message naming them has the name
 * replaced. Undefined: the message is left as it is.
 */
export function erasedMessage(m: Message, user: UserId): Message | undefined {
  if (m.from === user && m.kind !== 'system') {
    const t: Message = { conv: m.conv, seq: m.seq, from: ERASED_USER, dev: '', cid: '', kind: m.kind, ts: m.ts };
    if (m.reply !== undefined) t.reply = m.reply;
    if (m.target !== undefined) t.target = m.target;
    return t;
  }
  return names(m, user) ? scrubUser(m, user) : undefined;
}
