import { useState } from 'preact/hooks';
import type { ChatApp } from '../chat-app.js';
import type { LastSeenPrivacy } from '../../../src/protocol/frames.js';
import { uploadMedia } from '../../../src/client/accounts-api.js';
import { useAction } from './NewChat.js';
import { Avatar } from './Avatar.js';

/** Profile name and picture, who sees last seen, signing out. */
export function Settings({ app, onClose, onSignOut }: { app: ChatApp; onClose: () => void; onSignOut: () => void }) {
  const [name, setName] = useState(app.profiles.get(app.me)?.name ?? '');
  const [lastSeen, setLastSeen] = useState<LastSeenPrivacy>('contacts');
  const [saved, setSaved] = useState(false);
  const { error, busy, run } = useAction();
  const save = run(async () => {
    await app.setProfile({ name: name.trim() });
    await app.setLastSeen(lastSeen);
    setSaved(true);
  });
  const picture = async (file: File | undefined) => {
    if (!file) return;
    const up = await uploadMedia(app.base, app.client.token, file, file.type);
    await app.setProfile({ avatar: up.id });
  };
  return (
    <form class="panel" aria-label="Settings" onSubmit={save} onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <div class="row"><Avatar app={app} user={app.me} />
        <label class="button">Change picture<input type="file" accept="image/jpeg,image/png,image/webp,image/gif" class="hidden"
          onChange={(e) => void picture(e.currentTarget.files?.[0]).catch((err: Error) => alert(err.message))} /></label>
      </div>
      <label for="profile-name">Your name</label>
      <input id="profile-name" value={name} maxLength={64} onInput={(e) => { setName(e.currentTarget.value); setSaved(false); }} />
      <label for="last-seen">Who can see my last seen and online</label>
      <select id="last-seen" value={lastSeen} onChange={(e) => { setLastSeen(e.currentTarget.value as LastSeenPrivacy); setSaved(false); }}>
        <option value="everyone">Everyone</option>
        <option value="contacts">My contacts</option>
        <option value="nobody">Nobody</option>
      </select>
      <div class="row"><button type="submit" disabled={busy}>Save</button><button type="button" class="link" onClick={onClose}>Close</button></div>
      {saved && <p role="status">Saved.</p>}
      {error && <p class="error" role="alert">{error}</p>}
      <p class="small">Signed in as {app.session.phone}</p>
      <button type="button" class="danger" onClick={() => { void app.client.signOut().catch(() => undefined).finally(onSignOut); }}>Sign out</button>
    </form>
  );
}
