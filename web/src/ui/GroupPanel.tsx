import { useState } from 'preact/hooks';
import { Icon } from './icons.js';
import type { ChatApp } from '../chat-app.js';
import type { GroupInfo } from '../../../src/protocol/frames.js';
import { useAction } from './use-action.js';

/** Members and roles; an admin adds, removes, promotes and renames; anyone leaves. */
export function GroupPanel({ app, group, onClose, onLeft }: { app: ChatApp; group: GroupInfo; onClose: () => void; onLeft: () => void }) {
  const [phone, setPhone] = useState('');
  const [name, setName] = useState(group.name);
  const { error, busy, run } = useAction();
  const admin = group.members.some((m) => m.user === app.me && m.role === 'admin');
  const c = app.client;
  return (
    <section class="panel group-panel" aria-label="Group info" onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <div class="row"><h3>{group.name}</h3><span class="grow" /><button type="button" class="icon small" aria-label="Close group info" onClick={onClose}><Icon name="close" size={16} /></button></div>
      {admin && (
        <form class="row" onSubmit={run(async () => app.groupChange(() => c.renameGroup(group.id, name.trim())))}>
          <input aria-label="Group name" value={name} maxLength={100} onInput={(e) => setName(e.currentTarget.value)} />
          <button type="submit" disabled={busy || !name.trim() || name === group.name}>Rename</button>
        </form>
      )}
      <h4>{group.members.length} members</h4>
      <ul class="members" aria-label="Members">
        {group.members.map((m) => (
          <li key={m.user}>
            <span class="grow">{app.name(m.user)}{m.role === 'admin' && <span class="badge">admin</span>}</span>
            {admin && m.user !== app.me && (
              <>
                {m.role !== 'admin' && <button type="button" class="small" onClick={run(async () => app.groupChange(() => c.makeAdmin(group.id, m.user)))}>Make admin</button>}
                <button type="button" class="small danger" aria-label={`Remove ${app.name(m.user)}`} onClick={run(async () => app.groupChange(() => c.removeMembers(group.id, [m.user])))}>Remove</button>
              </>
            )}
          </li>
        ))}
      </ul>
      {admin && (
        <form class="row" onSubmit={run(async () => { const u = await app.userByPhone(phone); await app.groupChange(() => c.addMembers(group.id, [u])); setPhone(''); })}>
          <input aria-label="Phone number to add" type="tel" placeholder="+14155550104" value={phone} onInput={(e) => setPhone(e.currentTarget.value)} />
          <button type="submit" disabled={busy || !phone.trim()}>Add member</button>
        </form>
      )}
      <button type="button" class="danger" onClick={run(async () => { if (confirm(`Leave ${group.name}?`)) { await app.leave(group.id); onLeft(); } })}>Leave group</button>
      {error && <p class="error" role="alert">{error}</p>}
    </section>
  );
}
