import { useState } from 'preact/hooks';
import type { ChatApp, Pending } from '../chat-app.js';
import { clock, preview, systemText } from '../format.js';
import type { TimelineItem } from '../../../src/client/timeline.js';
import type { Tick } from '../../../src/client/conversations.js';
import { Icon } from './icons.js';
import { Location } from './LocationMap.js';

export const REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'];

const TICK_LABEL = { sent: 'Sent', delivered: 'Delivered', read: 'Read' } as const;
const GROUP_TICK_LABEL = { sent: 'Sent', delivered: 'Delivered to all', read: 'Read by all' } as const;

export function TickMark({ tick, group }: { tick: Tick | 'pending'; group: boolean }) {
  if (tick === 'pending') return <span class="tick pending" role="img" aria-label="Sending"><Icon name="clock" size={12} /></span>;
  const label = (group ? GROUP_TICK_LABEL : TICK_LABEL)[tick];
  return <span class={`tick ${tick}`} role="img" aria-label={label} title={label}>{tick === 'sent' ? '✓' : '✓✓'}</span>;
}

type Body = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A picture's box is sized before it loads (from the w/h its sender put in the body): no jump when it arrives. */
function boxSize(b: Body, maxW = 280, maxH = 320): { width: number; height: number } {
  const w = num(b.w) ?? 280;
  const h = num(b.h) ?? 210;
  const k = Math.min(1, maxW / w, maxH / h);
  return { width: Math.max(48, Math.round(w * k)), height: Math.max(48, Math.round(h * k)) };
}

function Media({ app, b, kind }: { app: ChatApp; b: Body; kind: 'image' | 'video' }) {
  const id = typeof b.media === 'string' ? b.media : '';
  const src = id ? app.mediaSrc(id) : undefined;
  const size = boxSize(b);
  const thumb = typeof b.thumb === 'string' && b.thumb.startsWith('data:image/') ? b.thumb : undefined;
  const caption = typeof b.caption === 'string' ? b.caption : '';
  return (
    <figure class="media" style={{ width: `${size.width}px` }}>
      <div class="media-box" style={{ width: `${size.width}px`, height: `${size.height}px` }}>
        {kind === 'image'
          ? (src ? <img src={src} alt={caption || 'Photo'} width={size.width} height={size.height} /> : thumb ? <img src={thumb} alt={caption || 'Photo (loading)'} class="thumb" /> : <span class="loading">Loading…</span>)
          : (src ? <video src={src} controls preload="metadata" poster={thumb} width={size.width} height={size.height} aria-label={caption || 'Video'} /> : <span class="loading">Loading…</span>)}
      </div>
      {caption && <figcaption>{caption}</figcaption>}
    </figure>
  );
}

function Content({ app, item }: { app: ChatApp; item: TimelineItem }) {
  const { m } = item;
  if (item.deleted) return <p class="deleted"><em>This message was deleted</em></p>;
  const b = (item.body && !(item.body instanceof Uint8Array) ? item.body : {}) as Body;
  switch (m.kind) {
    case 'text': return <p class="text">{String(b.text ?? '')}</p>;
    case 'image': case 'video': return <Media app={app} b={b} kind={m.kind} />;
    case 'location': return <Location lat={num(b.lat) ?? 0} lng={num(b.lng) ?? 0} name={typeof b.name === 'string' && b.name ? b.name : 'Location'} />;
    default: return <p class="text">{item.body instanceof Uint8Array ? '🔒 Encrypted message' : ''}</p>;
  }
}

interface RowProps { app: ChatApp; conv: string; item: TimelineItem; group: boolean; onReply: () => void; onEdit: () => void }

function Row({ app, conv, item, group, onReply, onEdit }: RowProps) {
  const { m } = item;
  const [menu, setMenu] = useState(false);
  if (m.kind === 'system') {
    return <div class="system" data-seq={m.seq} role="note">{systemText((item.body ?? {}) as Body, (u) => app.name(u))}</div>;
  }
  const mine = m.from === app.me;
  const quoted = m.reply !== undefined ? app.timeline(conv).get(m.reply) : undefined;
  const myReaction = Object.entries(item.reactions).find(([, users]) => users.includes(app.me))?.[0];
  const react = (emoji: string) => { app.send(conv, 'reaction', { emoji: emoji === myReaction ? '' : emoji }, { target: m.seq }); setMenu(false); };
  const label = `${mine ? 'You' : app.name(m.from)} at ${clock(m.ts)}`;
  return (
    <div class={`msg ${mine ? 'mine' : 'theirs'}`} data-seq={m.seq} aria-label={label}>
      <div class="bubble">
        {group && !mine && <p class="from">{app.name(m.from)}</p>}
        {m.reply !== undefined && (
          <blockquote class="quote">{quoted ? <><strong>{app.name(quoted.m.from)}</strong> {preview({ kind: quoted.m.kind, body: quoted.deleted ? undefined : quoted.body }, (u) => app.name(u))}</> : 'An earlier message'}</blockquote>
        )}
        <Content app={app} item={item} />
        <p class="meta">
          {item.edited && !item.deleted && <span class="edited">edited</span>}
          <time>{clock(m.ts)}</time>
          {mine && <TickMark tick={app.convs.tick(conv, m.seq)} group={group} />}
        </p>
        {Object.keys(item.reactions).length > 0 && (
          <p class="reactions">{Object.entries(item.reactions).map(([e, users]) => (
            <button type="button" key={e} class={`reaction${users.includes(app.me) ? ' own' : ''}`} aria-label={`${e} ${users.map((u) => app.name(u)).join(', ')}`} onClick={() => react(e)}>
              {e}{users.length > 1 ? ` ${users.length}` : ''}
            </button>
          ))}</p>
        )}
      </div>
      {!item.deleted && (
        <div class="actions">
          <button type="button" class="icon small" aria-label="Message actions" aria-expanded={menu} onClick={() => setMenu(!menu)}>⋯</button>
          {menu && (
            <div class="menu" role="menu" onKeyDown={(e) => e.key === 'Escape' && setMenu(false)}>
              <div class="react-row">{REACTIONS.map((e) => <button type="button" role="menuitem" key={e} aria-label={`React ${e}`} onClick={() => react(e)}>{e}</button>)}</div>
              <button type="button" role="menuitem" onClick={() => { setMenu(false); onReply(); }}>Reply</button>
              {mine && m.kind === 'text' && <button type="button" role="menuitem" onClick={() => { setMenu(false); onEdit(); }}>Edit</button>}
              {mine && <button type="button" role="menuitem" onClick={() => { setMenu(false); if (confirm('Delete this message for everyone?')) app.send(conv, 'delete', undefined, { target: m.seq }); }}>Delete for everyone</button>}
            </div>
          )}
        </div>
      )}
    </div>
  );
}

export const MessageRow = Row;

export function PendingRow({ app, p }: { app: ChatApp; p: Pending }) {
  const b = (p.body && !(p.body instanceof Uint8Array) ? p.body : {}) as Body;
  const progress = p.state === 'uploading' ? Math.round((p.progress ?? 0) * 100) : undefined;
  return (
    <div class="msg mine pending" data-cid={p.cid}>
      <div class="bubble">
        {p.kind === 'text' ? <p class="text">{String(b.text ?? '')}</p> : <p class="text">{preview({ kind: p.kind, body: b }, (u) => app.name(u))}</p>}
        {progress !== undefined && <progress max={100} value={progress} aria-label="Upload progress">{progress}%</progress>}
        <p class="meta"><time>{clock(p.ts)}</time><TickMark tick="pending" group={false} /></p>
      </div>
    </div>
  );
}
