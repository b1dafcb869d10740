import type { Body, Message, PresenceFrame } from '../../src/protocol/frames.js';

const time = (ts: number): string => new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

export function clock(ts: number): string { return time(ts); }

/** "today 14:05", "yesterday 09:12", or a date. */
export function when(ts: number, now = Date.now()): string {
  const d = new Date(ts);
  const day = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const days = Math.round((day(new Date(now)) - day(d)) / 86_400_000);
  if (days === 0) return `today at ${time(ts)}`;
  if (days === 1) return `yesterday at ${time(ts)}`;
  return `${d.toLocaleDateString()} at ${time(ts)}`;
}

/** The header line under a 1:1 chat's name; empty when the other user's privacy hides it. */
export function presenceText(p: PresenceFrame | undefined): string {
  if (!p) return '';
  if (p.online) return 'online';
  return p.lastSeen ? `last seen ${when(p.lastSeen)}` : '';
}

export const textOf = (body: Body | undefined): string =>
  body && !(body instanceof Uint8Array) && typeof body.text === 'string' ? body.text : '';

export function osmLink(lat: number, lng: number): string {
  return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lng}#map=16/${lat}/${lng}`;
}

/** One line for a conversation list or a quoted reply. */
export function preview(m: Pick<Message, 'kind' | 'body'>, name: (u: string) => string): string {
  const b = (m.body && !(m.body instanceof Uint8Array) ? m.body : undefined) as Record<string, unknown> | undefined;
  switch (m.kind) {
    case 'text': return b ? String(b.text ?? '') : 'This message was deleted';
    case 'image': return b ? `📷 ${typeof b.caption === 'string' && b.caption ? b.caption : 'Photo'}` : 'This message was deleted';
    case 'video': return b ? `🎥 ${typeof b.caption === 'string' && b.caption ? b.caption : 'Video'}` : 'This message was deleted';
    case 'location': return b ? `📍 ${typeof b.name === 'string' && b.name ? b.name : 'Location'}` : 'This message was deleted';
    case 'system': return b ? systemText(b, name) : '';
    default: return '';
  }
}

export function systemText(b: Record<string, unknown>, name: (u: string) => string): string {
  const by = name(String(b.by ?? ''));
  const users = Array.isArray(b.users) ? b.users.map((u) => name(String(u))).join(', ') : '';
  switch (b.event) {
    case 'created': return `${by} created the group${b.name ? ` "${String(b.name)}"` : ''}`;
    case 'added': return `${by} added ${users}`;
    case 'removed': return `${by} removed ${users}`;
    case 'left': return `${by} left`;
    case 'admin': return `${by} made ${users} an admin`;
    case 'renamed': return `${by} renamed the group to "${String(b.name ?? '')}"`;
    default: return String(b.event ?? '');
  }
}
