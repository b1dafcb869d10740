import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { Icon } from './icons.js';
import type { ChatApp } from '../chat-app.js';
import { preview, textOf } from '../format.js';
import { mediaFacts } from '../media-facts.js';

export type Draft = { mode: 'new' } | { mode: 'reply'; seq: number } | { mode: 'edit'; seq: number };

/** Typing is said again this often while it goes on, and ends this long after the last key. */
const TYPING_RENEW_MS = 3_000;
const TYPING_IDLE_MS = 4_000;

export function Composer({ app, conv, draft, onDraft, onSent }: { app: ChatApp; conv: string; draft: Draft; onDraft: (d: Draft) => void; onSent: () => void }) {
  const [text, setText] = useState('');
  const [where, setWhere] = useState(false);
  const input = useRef<HTMLTextAreaElement>(null);
  const typing = useRef<{ since: number; idle?: ReturnType<typeof setTimeout> }>({ since: 0 });
  const target = draft.mode !== 'new' ? app.timeline(conv).get(draft.seq) : undefined;

  // Before paint: the box never shows empty between choosing Edit and the text to edit.
  useLayoutEffect(() => {
    if (draft.mode === 'edit' && target) setText(textOf(target.body));
    input.current?.focus();
  }, [draft]);

  const stopTyping = () => {
    const ty = typing.current;
    if (ty.idle) clearTimeout(ty.idle);
    if (ty.since) app.typing(conv, false);
    typing.current = { since: 0 };
  };
  useEffect(() => stopTyping, [conv]);

  const onInput = (v: string) => {
    setText(v);
    const ty = typing.current;
    const now = Date.now();
    if (!v) { stopTyping(); return; }
    if (now - ty.since > TYPING_RENEW_MS) { app.typing(conv, true); ty.since = now; }
    if (ty.idle) clearTimeout(ty.idle);
    ty.idle = setTimeout(stopTyping, TYPING_IDLE_MS);
  };

  const send = () => {
    const v = text.trim();
    if (!v) return;
    if (draft.mode === 'edit') app.send(conv, 'edit', { text: v }, { target: draft.seq });
    else app.send(conv, 'text', { text: v }, draft.mode === 'reply' ? { reply: draft.seq } : {});
    setText('');
    stopTyping();
    onDraft({ mode: 'new' });
    onSent();
  };

  const attach = async (files: FileList | null) => {
    const file = files?.[0];
    if (!file) return;
    onSent();
    await app.sendMedia(conv, file, await mediaFacts(file));
  };

  return (
    <footer class="composer">
      {target && (
        <div class="draft-note">
          <span>{draft.mode === 'edit' ? 'Editing' : `Replying to ${app.name(target.m.from)}`}: {preview({ kind: target.m.kind, body: target.body }, (u) => app.name(u))}</span>
          <button type="button" class="icon small" aria-label={draft.mode === 'edit' ? 'Cancel edit' : 'Cancel reply'} onClick={() => { onDraft({ mode: 'new' }); setText(''); }}><Icon name="close" size={16} /></button>
        </div>
      )}
      {where && <LocationForm onSend={(body) => { app.send(conv, 'location', body); setWhere(false); onSent(); }} onCancel={() => setWhere(false)} />}
      <div class="composer-row">
        <label class="icon button" title="Attach a photo or video">
          <Icon name="attach" />
          <input type="file" class="hidden" aria-label="Attach a photo or video" accept="image/jpeg,image/png,image/webp,image/gif,video/mp4,video/webm,video/quicktime"
            onChange={(e) => { void attach(e.currentTarget.files); e.currentTarget.value = ''; }} />
        </label>
        <button type="button" class="icon" aria-label="Share a location" aria-expanded={where} onClick={() => setWhere(!where)}><Icon name="place" /></button>
        <textarea ref={input} rows={1} aria-label="Message" placeholder="Type a message" value={text} maxLength={8192}
          onInput={(e) => onInput(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); }
            if (e.key === 'Escape' && draft.mode !== 'new') { onDraft({ mode: 'new' }); setText(''); }
          }} />
        <button type="button" class="send" aria-label="Send" onClick={send} disabled={!text.trim()}><Icon name="send" size={20} /></button>
      </div>
    </footer>
  );
}

function LocationForm({ onSend, onCancel }: { onSend: (b: { lat: number; lng: number; name?: string }) => void; onCancel: () => void }) {
  const [lat, setLat] = useState('');
  const [lng, setLng] = useState('');
  const [name, setName] = useState('');
  const [note, setNote] = useState<string>();
  const here = () => {
    if (!navigator.geolocation) { setNote('This browser cannot tell where you are.'); return; }
    navigator.geolocation.getCurrentPosition((p) => { setLat(p.coords.latitude.toFixed(6)); setLng(p.coords.longitude.toFixed(6)); },
      (e) => setNote(e.message), { timeout: 10_000 });
  };
  const ok = Number.isFinite(Number(lat)) && Number.isFinite(Number(lng)) && lat !== '' && lng !== '' && Math.abs(Number(lat)) <= 90 && Math.abs(Number(lng)) <= 180;
  return (
    <form class="panel inline" aria-label="Share a location" onSubmit={(e) => { e.preventDefault(); if (ok) onSend({ lat: Number(lat), lng: Number(lng), ...(name.trim() ? { name: name.trim() } : {}) }); }}>
      <div class="row">
        <label>Latitude <input value={lat} inputMode="decimal" onInput={(e) => setLat(e.currentTarget.value)} required /></label>
        <label>Longitude <input value={lng} inputMode="decimal" onInput={(e) => setLng(e.currentTarget.value)} required /></label>
      </div>
      <label>Place name (optional) <input value={name} maxLength={100} onInput={(e) => setName(e.currentTarget.value)} /></label>
      <div class="row">
        <button type="button" onClick={here}>Use my location</button>
        <button type="submit" disabled={!ok}>Send location</button>
        <button type="button" class="link" onClick={onCancel}>Cancel</button>
      </div>
      {note && <p class="error" role="alert">{note}</p>}
    </form>
  );
}
