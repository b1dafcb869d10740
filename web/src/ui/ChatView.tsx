import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { Icon } from './icons.js';
import type { ChatApp } from '../chat-app.js';
import { presenceText } from '../format.js';
import { parseConversationId } from '../../../src/protocol/ids.js';
import type { TimelineItem } from '../../../src/client/timeline.js';
import { Avatar } from './Avatar.js';
import { MessageRow, PendingRow } from './MessageRow.js';
import { Composer, type Draft } from './Composer.js';
import { GroupPanel } from './GroupPanel.js';
import { useApp } from './use-app.js';

/** Rows in the page at once, whatever the conversation's length; and how many a scroll to an edge adds. */
export const WINDOW = 150;
const STEP = 50;
/** Within this many pixels of an edge, the window moves (or an older page is loaded). */
const EDGE_PX = 400;

interface Anchor { seq: string; delta: number }

export function ChatView({ app, conv, onBack, onGone }: { app: ChatApp; conv: string; onBack: () => void; onGone: () => void }) {
  useApp(app);
  const list = useRef<HTMLDivElement>(null);
  const anchor = useRef<Anchor | undefined>(undefined);
  /** Following the newest message (the window ends at the end); else the window starts at `startSeq`. */
  const [stuck, setStuck] = useState(true);
  const [startSeq, setStartSeq] = useState(0);
  const [draft, setDraft] = useState<Draft>({ mode: 'new' });
  const [info, setInfo] = useState(false);

  useEffect(() => { app.open(conv); }, [conv]);

  const t = app.timeline(conv);
  const summary = app.convs.get(conv);
  const parsed = parseConversationId(conv);
  const group = parsed?.kind === 'group' ? app.groups.get(parsed.group) : undefined;
  const gone = parsed?.kind === 'group' && (!summary || app.outOf.has(conv));

  let start: number;
  let end: number;
  if (stuck) { end = t.size; start = Math.max(0, end - WINDOW); }
  else { start = Math.min(t.indexOf(startSeq), Math.max(0, t.size - WINDOW)); end = Math.min(t.size, start + WINDOW); }
  const items = t.slice(start, end);
  const pending = stuck ? app.pendingIn(conv) : [];

  // Where the reader is, before this render changes the rows: restored after it, so nothing jumps.
  const el = list.current;
  if (el && !stuck) {
    const rows = el.querySelectorAll<HTMLElement>('[data-seq]');
    for (const r of rows) {
      if (r.offsetTop + r.offsetHeight > el.scrollTop) { anchor.current = { seq: r.dataset.seq!, delta: r.offsetTop - el.scrollTop }; break; }
    }
  }

  /** Moves the window (or loads an older page) when the reader is near an edge. */
  const adjust = (el: HTMLDivElement) => {
    const fromBottom = el.scrollHeight - el.scrollTop - el.clientHeight;
    if (stuck && fromBottom > 40) { setStuck(false); setStartSeq(t.seqAt(start) ?? 0); }
    if (el.scrollTop < EDGE_PX) {
      if (start > 0) { setStuck(false); setStartSeq(t.seqAt(Math.max(0, start - STEP))!); }
      else if (!app.hasAllHistory(conv)) void app.loadOlder(conv);
    } else if (fromBottom < EDGE_PX && !stuck) {
      if (end < t.size) setStartSeq(t.seqAt(Math.min(t.size - 1, start + STEP))!);
      else if (fromBottom < 40) setStuck(true);
    }
  };

  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    if (stuck) el.scrollTop = el.scrollHeight;
    else {
      const a = anchor.current;
      const row = a && el.querySelector<HTMLElement>(`[data-seq="${a.seq}"]`);
      if (a && row) el.scrollTop = row.offsetTop - a.delta;
    }
    // Nothing loaded (opened offline), nothing to scroll yet, or resting at the top: go on filling (a scroll
    // at the very top fires no event). loadOlder asks only when connected and not refused a moment ago.
    if (!t.size || el.scrollHeight <= el.clientHeight || (!stuck && el.scrollTop < EDGE_PX)) adjust(el);
  });

  // Read while open, at the newest message, and the page is in view.
  useEffect(() => {
    const mark = () => { if (stuck && document.visibilityState === 'visible') app.seen(conv); };
    mark();
    document.addEventListener('visibilitychange', mark);
    return () => document.removeEventListener('visibilitychange', mark);
  });

  const onScroll = () => adjust(list.current!);

  const toBottom = () => { setStuck(true); };

  const typing = app.convs.typingIn(conv);
  const peer = summary?.peer;
  const subtitle = typing.length
    ? (parsed?.kind === 'group' ? `${typing.map((u) => app.name(u)).join(', ')} typing…` : 'typing…')
    : peer ? presenceText(app.presence.get(peer))
    : group ? group.members.map((m) => app.name(m.user)).join(', ') : '';

  const title = app.title(conv);
  return (
    <section class="chat" aria-label={`Chat with ${title}`}>
      <header class="bar">
        <button type="button" class="icon back" aria-label="Back to chats" onClick={onBack}><Icon name="back" /></button>
        <Avatar app={app} user={peer} group={parsed?.kind === 'group' ? title : undefined} />
        <div class="chat-head">
          <h2 class="chat-title">{title}</h2>
          <p class="chat-sub" aria-live="polite" data-testid="chat-status">{subtitle}</p>
        </div>
        <span class="grow" />
        {peer && !app.isContact(peer) && <button type="button" onClick={() => void app.addContact(peer)}>Add contact</button>}
        {parsed?.kind === 'group' && !gone && <button type="button" class="icon" aria-label="Group info" aria-expanded={info} onClick={() => setInfo(!info)}><Icon name="info" /></button>}
      </header>
      {info && group && <GroupPanel app={app} group={group} onClose={() => setInfo(false)} onLeft={onGone} />}
      <div class="messages" ref={list} onScroll={onScroll} role="log" aria-label="Messages" aria-busy={!app.hasAllHistory(conv) && t.size === 0}>
        {start === 0 && app.hasAllHistory(conv) && <p class="start">This is the start of the conversation.</p>}
        {start === 0 && !app.hasAllHistory(conv) && t.size > 0 && <p class="start">Loading older messages…</p>}
        {items.map((it: TimelineItem) => (
          <MessageRow key={it.m.seq} app={app} conv={conv} item={it} group={parsed?.kind === 'group'}
            onReply={() => setDraft({ mode: 'reply', seq: it.m.seq })} onEdit={() => setDraft({ mode: 'edit', seq: it.m.seq })} />
        ))}
        {pending.map((p) => <PendingRow key={p.cid} app={app} p={p} />)}
      </div>
      {!stuck && <button type="button" class="to-bottom" aria-label="Scroll to newest messages" onClick={toBottom}><Icon name="down" /></button>}
      {gone ? <p class="hint">You are no longer in this group.</p>
        : <Composer app={app} conv={conv} draft={draft} onDraft={setDraft} onSent={toBottom} />}
    </section>
  );
}
