import { Icon } from './icons.js';
import type { ChatApp } from '../chat-app.js';

/** A profile picture, or the name's initial on a colour of its own. */
export function Avatar({ app, user, group }: { app: ChatApp; user?: string; group?: string }) {
  const avatar = user ? app.profiles.get(user)?.avatar : undefined;
  const src = avatar ? app.mediaSrc(avatar) : undefined;
  if (src) return <img class="avatar" src={src} alt={user === app.me ? 'Your picture' : user ? `${app.name(user)}'s picture` : ''} />;
  const hue = [...(user ?? group ?? '')].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7);
  const named = group ?? (user ? app.profiles.get(user)?.name : undefined);
  const initial = named ? /\p{L}|\p{N}/u.exec(named)?.[0]?.toUpperCase() : undefined;
  return (
    <span class={`avatar initial hue-${Math.floor(hue / 30)}`} aria-hidden="true">
      {initial ?? <Icon name={group ? 'group' : 'person'} />}
    </span>
  );
}
