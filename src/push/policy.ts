import { createHash } from 'node:crypto';
import type { Body, MessageKind } from '../protocol/frames.js';
import type { ConversationId, UserId } from '../protocol/ids.js';

/**
 * What a push says, as pure functions: which messages push at all, what text a notification may carry, and
 * how a burst of messages for one device becomes one notification. Nothing here reads a clock or the network.
 */

/** A mute with no end (the `mute` frame without `until`). */
export const MUTED_FOREVER = Number.MAX_SAFE_INTEGER;
/** Conversations one user may have muted at once (the mute list is loaded with the user entity). */
export const MAX_MUTES = 5000;
/** Characters of message text a preview shows at most (APNs allows a 4 KB payload; a lock screen shows less). */
export const PREVIEW_CHARS = 180;

/** Kinds that notify. An edit or a delete changes a message the device will fetch anyway; system lines are the server's. */
const PUSHED: ReadonlySet<MessageKind> = new Set(['text', 'image', 'video', 'location', 'reaction', 'mls']); // mls: encrypted, never looked into
export const pushable = (kind: MessageKind): boolean => PUSHED.has(kind);

/** A mute in force at `now` (`until` in ms; MUTED_FOREVER never ends). */
export const mutedAt = (until: number | undefined, now: number): boolean => until !== undefined && until > now;

const LABELS: Partial<Record<MessageKind, string>> = { image: 'Photo', video: 'Video', location: 'Location', reaction: 'Reacted to a message' };

/**
 * The text a notification may show of a message: only of a plaintext body (bytes are ciphertext, never
 * looked into), truncated; media kinds show their label. Undefined: nothing to show.
 */
export function previewOf(kind: MessageKind, body: Body | undefined): string | undefined {
  if (body === undefined || body instanceof Uint8Array) return undefined;
  if (kind === 'text') {
    const text = body.text;
    if (typeof text !== 'string') return undefined;
    const oneLine = text.replace(/\s+/g, ' ').trim();
    return [...oneLine].length > PREVIEW_CHARS ? `${[...oneLine].slice(0, PREVIEW_CHARS - 1).join('')}…` : oneLine;
  }
  return LABELS[kind];
}

/** One device's messages not yet notified: the latest of them, and how many. */
export interface Burst {
  conv: ConversationId;
  seq: number;
  from: UserId;
  kind: MessageKind;
  /** Messages in the burst. */
  count: number;
  /** Conversations they came from (up to a few: only "one or several" matters). */
  convs: ConversationId[];
  /** The latest message's preview, when the device allowed previews and the body was plaintext. */
  preview?: string;
}

export interface BurstNotice { conv: ConversationId; seq: number; from: UserId; kind: MessageKind; preview?: string }

/** A new burst, or `b` with one more message (the newer one's text replaces the older's). */
export function addToBurst(b: Burst | undefined, n: BurstNotice): Burst {
  const convs = b ? (b.convs.includes(n.conv) || b.convs.length >= 8 ? b.convs : [...b.convs, n.conv]) : [n.conv];
  return {
    conv: n.conv, seq: n.seq, from: n.from, kind: n.kind, count: (b?.count ?? 0) + 1, convs,
    ...(n.preview !== undefined ? { preview: n.preview } : {}),
  };
}

/** Two bursts as one: a retry of `older` that a newer burst caught up with covers both. */
export function mergeBursts(older: Burst, newer: Burst): Burst {
  const convs = [...older.convs];
  for (const c of newer.convs) if (!convs.includes(c) && convs.length < 8) convs.push(c);
  return { ...newer, count: older.count + newer.count, convs };
}

/** What every provider renders in its own format. */
export interface Notification {
  /** `alert`: shown to the user; `wake`: content-free, the app wakes, syncs and shows what it decrypts. */
  type: 'alert' | 'wake';
  title?: string;
  body?: string;
  /** Messages this notification stands for (a badge). */
  count: number;
  /**
   * Per conversation: a newer notification replaces the device's older one of that conversation. 16
   * base64url characters, within every provider's limit (WNS tags are at most 16, Web Push topics 32).
   */
  collapseId: string;
  /** For the app: which conversation and seq to open (it syncs its inbox either way). */
  conv: ConversationId;
  seq: number;
  /** Seconds the push service may hold it for an unreachable device. */
  ttlSec: number;
}

export const collapseIdOf = (conv: ConversationId): string => createHash('sha256').update(conv).digest('base64url').slice(0, 16);

/**
 * `mode`: `sender` (the default) says who wrote ("New message from Ann"); `wake` sends every notification
 * content-free. Text of the message appears only with `previews` and a preview (a plaintext body).
 */
export function render(b: Burst, o: { previews: boolean; senderName: string | undefined; mode: 'sender' | 'wake'; ttlSec: number }): Notification {
  const base = { count: b.count, collapseId: collapseIdOf(b.conv), conv: b.conv, seq: b.seq, ttlSec: o.ttlSec };
  if (o.mode === 'wake') return { type: 'wake', ...base };
  const who = o.senderName;
  const several = b.convs.length > 1;
  if (o.previews && b.preview !== undefined) {
    const more = b.count > 1 ? ` (+${b.count - 1} more)` : '';
    return { type: 'alert', ...base, title: who ?? 'New message', body: `${b.preview}${more}` };
  }
  const body = b.count === 1
    ? (who ? `New message from ${who}` : 'New message')
    : several ? `${b.count} new messages in ${b.convs.length} chats` : who ? `${b.count} new messages from ${who}` : `${b.count} new messages`;
  return { type: 'alert', ...base, body };
}

/**
 * The wait before retry `attempt` (1, 2, …): the service's Retry-After when it gave one, else exponential
 * backoff from `baseMs`, capped at `maxMs`, with "equal jitter" (half fixed, half random: the retries of many
 * devices failed at once spread out, and none comes back at once). `random` in [0, 1).
 */
export function retryDelay(attempt: number, retryAfterMs: number | undefined, baseMs: number, maxMs: number, random: number): number {
  if (retryAfterMs !== undefined && retryAfterMs >= 0) return retryAfterMs;
  const cap = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.max(1, Math.floor(cap / 2 + (random * cap) / 2));
}

/** A Retry-After header (seconds, or an HTTP date) as ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(v: string | null | undefined, now: number): number | undefined {
  if (!v) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
