/** User ids, group ids and device ids are short lowercase base32 strings: safe in actor names, CQL keys and NATS subjects. */
export type UserId = string;
export type GroupId = string;
export type DeviceId = string;
/** `d.<a>.<b>` for a 1:1 chat (a < b), `g.<groupId>` for a group. */
export type ConversationId = string;

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const ID_RE = /^[a-z2-7]{4,32}$/;

/** Web Crypto (a global in Node 20 and browsers), so the SDK's browser bundle needs no Node module. */
export function newId(length = 16): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(length));
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! & 31];
  return out;
}

export const isId = (s: unknown): s is string => typeof s === 'string' && ID_RE.test(s);

/** Order-independent: both participants derive the same id without asking anyone. */
export function directConversationId(a: UserId, b: UserId): ConversationId {
  return a < b ? `d.${a}.${b}` : `d.${b}.${a}`;
}

export const groupConversationId = (g: GroupId): ConversationId => `g.${g}`;

export type ParsedConversation =
  | { kind: 'direct'; users: [UserId, UserId] }
  | { kind: 'group'; group: GroupId };

export function parseConversationId(conv: unknown): ParsedConversation | undefined {
  if (typeof conv !== 'string') return undefined;
  const parts = conv.split('.');
  if (parts[0] === 'd' && parts.length === 3 && isId(parts[1]) && isId(parts[2]) && parts[1]! < parts[2]!) {
    return { kind: 'direct', users: [parts[1]!, parts[2]!] };
  }
  if (parts[0] === 'g' && parts.length === 2 && isId(parts[1])) return { kind: 'group', group: parts[1]! };
  return undefined;
}

/** The device key addresses one device of one user: its inbox, its token, its push registration. */
export const deviceKey = (user: UserId, device: DeviceId): string => `${user}.${device}`;
