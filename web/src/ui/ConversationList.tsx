import type { ChatApp } from '../chat-app.js';
import { clock, preview } from '../format.js';
import { Avatar } from './Avatar.js';
import { parseConversationId } from '../../../src/protocol/ids.js';

export function ConversationList({ app, selected, onSelect }: { app: ChatApp; selected?: string; onSelect: (conv: string) => void }) {
  const list = app.list();
  if (!list.length) return <p class="hint">No chats yet.</p>;
  return (
    <ul class="convs" aria-label="Conversations">
      {list.map((c) => {
        const title = app.title(c);
        const typing = app.convs.typingIn(c.conv);
        const p = parseConversationId(c.conv);
        const last = c.last ? `${c.last.from === app.me && c.last.kind !== 'system' ? 'You: ' : ''}${preview(c.last, (u) => app.name(u))}` : '';
        return (
          <li key={c.conv}>
            <button type="button" class={`conv${selected === c.conv ? ' selected' : ''}`} aria-current={selected === c.conv ? 'true' : undefined}
              aria-label={`${title}${c.unread ? `, ${c.unread} unread` : ''}`} onClick={() => onSelect(c.conv)}>
              <Avatar app={app} user={c.peer} group={p?.kind === 'group' ? title : undefined} />
              <span class="conv-main">
                <span class="conv-top"><span class="conv-title">{title}</span>{c.last && <time class="conv-time">{clock(c.last.ts)}</time>}</span>
                <span class="conv-bottom">
                  <span class="conv-last">{typing.length ? <em>typing…</em> : last}</span>
                  {c.unread > 0 && <span class="unread" aria-label={`${c.unread} unread messages`}>{c.unread}</span>}
                </span>
              </span>
            </button>
          </li>
        );
      })}
    </ul>
  );
}
