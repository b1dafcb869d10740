import { useEffect, useState } from 'preact/hooks';
import { Icon } from './icons.js';
import type { ChatApp } from '../chat-app.js';
import { useApp } from './use-app.js';
import { ConversationList } from './ConversationList.js';
import { ChatView } from './ChatView.js';
import { NewChat, NewGroup } from './NewChat.js';
import { Settings } from './Settings.js';
import { Avatar } from './Avatar.js';

type Panel = 'chat' | 'group' | 'settings' | undefined;

/** The two panes of WhatsApp Web: the chat list, and the open chat (one at a time on a phone-sized window). */
export function Shell({ app, vapidPublicKey, onSignOut }: { app: ChatApp; vapidPublicKey?: string; onSignOut: () => void }) {
  useApp(app);
  const [open, setOpen] = useState<string>();
  const [panel, setPanel] = useState<Panel>();
  const choose = (conv: string) => { setOpen(conv); setPanel(undefined); };
  const unread = app.list().reduce((n, c) => n + c.unread, 0);
  useEffect(() => { document.title = unread ? `(${unread}) Parley` : 'Parley'; }, [unread]);

  return (
    <div class={`shell${open ? ' has-chat' : ''}`}>
      <aside class="sidebar" aria-label="Chats">
        <header class="bar">
          <Avatar app={app} user={app.me} />
          <span class="me">{app.profiles.get(app.me)?.name || app.session.phone}</span>
          <span class="grow" />
          <button type="button" class="icon" aria-label="New chat" title="New chat" onClick={() => setPanel('chat')}><Icon name="chat" /></button>
          <button type="button" class="icon" aria-label="New group" title="New group" onClick={() => setPanel('group')}><Icon name="group" /></button>
          <button type="button" class="icon" aria-label="Settings" title="Settings" onClick={() => setPanel('settings')}><Icon name="settings" /></button>
        </header>
        <StatusBanner app={app} />
        {panel === 'chat' && <NewChat app={app} onDone={(c) => (c ? choose(c) : setPanel(undefined))} />}
        {panel === 'group' && <NewGroup app={app} onDone={(c) => (c ? choose(c) : setPanel(undefined))} />}
        {panel === 'settings' && <Settings app={app} vapidPublicKey={vapidPublicKey} onClose={() => setPanel(undefined)} onSignOut={onSignOut} />}
        <ConversationList app={app} selected={open} onSelect={choose} />
      </aside>
      <main class="pane">
        {open ? <ChatView key={open} app={app} conv={open} onBack={() => setOpen(undefined)} onGone={() => setOpen(undefined)} />
          : <div class="empty"><p>Select a chat, or start a new one.</p></div>}
      </main>
    </div>
  );
}

function StatusBanner({ app }: { app: ChatApp }) {
  if (app.status === 'online' && !app.notice) return null;
  const text = app.status === 'offline' ? 'You are offline. Messages will be sent when you are back online.'
    : app.status === 'connecting' ? 'Connecting…' : app.notice;
  return <div class={`banner ${app.status}`} role="status">{text}</div>;
}
