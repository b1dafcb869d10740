import { useState } from 'preact/hooks';
import type { ChatApp } from '../chat-app.js';
import { useAction } from './use-action.js';

/** A chat with someone by phone number. */
export function NewChat({ app, onDone }: { app: ChatApp; onDone: (conv?: string) => void }) {
  const [phone, setPhone] = useState('');
  const { error, busy, run } = useAction();
  return (
    <form class="panel" aria-label="New chat" onSubmit={run(async () => onDone(await app.chatWith(phone)))} onKeyDown={(e) => e.key === 'Escape' && onDone()}>
      <label for="new-chat-phone">Phone number</label>
      <input id="new-chat-phone" type="tel" value={phone} required autoFocus placeholder="+14155550102" onInput={(e) => setPhone(e.currentTarget.value)} />
      <div class="row"><button type="submit" disabled={busy}>Start chat</button><button type="button" class="link" onClick={() => onDone()}>Cancel</button></div>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}

/** A group: a name and its first members' phone numbers. */
export function NewGroup({ app, onDone }: { app: ChatApp; onDone: (conv?: string) => void }) {
  const [name, setName] = useState('');
  const [phones, setPhones] = useState('');
  const { error, busy, run } = useAction();
  const list = () => phones.split(/[,;\n]/).map((p) => p.trim()).filter(Boolean);
  return (
    <form class="panel" aria-label="New group" onSubmit={run(async () => onDone(await app.createGroup(name.trim(), list())))} onKeyDown={(e) => e.key === 'Escape' && onDone()}>
      <label for="new-group-name">Group name</label>
      <input id="new-group-name" value={name} required maxLength={100} autoFocus onInput={(e) => setName(e.currentTarget.value)} />
      <label for="new-group-members">Members' phone numbers (comma-separated)</label>
      <input id="new-group-members" value={phones} placeholder="+14155550102, +14155550103" onInput={(e) => setPhones(e.currentTarget.value)} />
      <div class="row"><button type="submit" disabled={busy}>Create group</button><button type="button" class="link" onClick={() => onDone()}>Cancel</button></div>
      {error && <p class="error" role="alert">{error}</p>}
    </form>
  );
}
