import { useState } from 'preact/hooks';
import type { ChatApp } from '../chat-app.js';
import type { LastSeenPrivacy } from '../../../src/protocol/frames.js';
import { uploadMedia } from '../../../src/client/accounts-api.js';
import { useAction } from './use-action.js';
import { Avatar } from './Avatar.js';
import { disablePush, enablePush, pushSupported } from '../web-push.js';

/** Profile name and picture, who sees last seen, signing out. */
export function Settings({ app, vapidPublicKey, onClose, onSignOut }: { app: ChatApp; vapidPublicKey?: string; onClose: () => void; onSignOut: () => void }) {
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
      <Notifications app={app} vapidPublicKey={vapidPublicKey} />
      <p class="small">Signed in as {app.session.phone}</p>
      <button type="button" class="danger" onClick={() => { void app.client.signOut().catch(() => undefined).finally(onSignOut); }}>Sign out</button>
    </form>
  );
}

/** Web Push: on where the node has a VAPID key and the browser a push service. */
function Notifications({ app, vapidPublicKey }: { app: ChatApp; vapidPublicKey?: string }) {
  const [on, setOn] = useState(() => pushSupported() && Notification.permission === 'granted' && localStorage.getItem('parley.push') === '1');
  const [previews, setPreviews] = useState(false);
  const [state, setState] = useState<string>();
  if (!vapidPublicKey) return <p class="small">This node sends no browser notifications (no VAPID key).</p>;
  if (!pushSupported()) return <p class="small">This browser cannot show notifications.</p>;
  const toggle = async () => {
    setState(undefined);
    try {
      if (on) await disablePush(app.client);
      else await enablePush(app.client, vapidPublicKey, previews);
      localStorage.setItem('parley.push', on ? '0' : '1');
      setOn(!on);
      setState(on ? 'Notifications are off.' : 'Notifications are on.');
    } catch (e) {
      setState((e as Error).message);
    }
  };
  return (
    <fieldset class="panel inline">
      <legend>Notifications</legend>
      <label class="row"><input type="checkbox" checked={previews} disabled={on} onChange={(e) => setPreviews(e.currentTarget.checked)} /> Show message text in notifications</label>
      <button type="button" onClick={() => void toggle()}>{on ? 'Turn off notifications' : 'Turn on notifications'}</button>
      {state && <p role="status" data-testid="push-state">{state}</p>}
    </fieldset>
  );
}
