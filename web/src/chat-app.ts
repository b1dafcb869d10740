import { ParleyClient, ServerError } from '../../src/client/parley-client.js';
import { Conversations, type ConversationSummary } from '../../src/client/conversations.js';
import { Timeline } from '../../src/client/timeline.js';
import { mediaUrl, uploadMedia, type UploadedMedia } from '../../src/client/accounts-api.js';
import type { Body, ClientMessageKind, GroupInfo, LastSeenPrivacy, Message, PresenceFrame, Profile } from '../../src/protocol/frames.js';
import { directConversationId, groupConversationId, parseConversationId } from '../../src/protocol/ids.js';
import { loadState, saveState, type SavedSession, type SavedState } from './saved.js';

/**
 * The web client's state: one ParleyClient (its only way to the node), the SDK's conversation list, a
 * timeline per conversation opened, and what the screens show of users and groups. Components read it and
 * re-render on `subscribe`.
 */

export type Status = 'connecting' | 'online' | 'offline';

/** A message on its way: shown at once, ticked when the node stores it, sent again after a reconnect. */
export interface Pending {
  cid: string; conv: string; kind: ClientMessageKind; body?: Body; reply?: number; target?: number;
  state: 'uploading' | 'sending' | 'waiting'; progress?: number; ts: number; error?: string;
}

const PAGE = 50;
/** What shows as a pending bubble (an edit, reaction or delete waiting to go shows nothing). */
const SHOWN_PENDING = new Set<ClientMessageKind>(['text', 'image', 'video', 'location']);
const SAVE_DELAY_MS = 300;
/** After a refused history page, or a media URL that could not be had, this long before asking again. */
const HISTORY_RETRY_MS = 3_000;
const MEDIA_RETRY_MS = 30_000;
const NOTICE_MS = 8_000;

export class ChatApp {
  readonly client: ParleyClient;
  readonly convs: Conversations;
  status: Status = 'connecting';
  /** The node's answer to the last thing that went wrong, for a banner. */
  notice?: string;
  private readonly timelines = new Map<string, Timeline>();
  /** Conversations whose history is loaded to its start. */
  private readonly historyDone = new Set<string>();
  /** Conversations with a history page loaded: messages that came live alone don't show what was before them. */
  private readonly paged = new Set<string>();
  private readonly loading = new Map<string, Promise<void>>();
  private readonly historyRetryAt = new Map<string, number>();
  readonly pending = new Map<string, Pending>();
  readonly profiles = new Map<string, Profile>();
  readonly presence = new Map<string, PresenceFrame>();
  readonly groups = new Map<string, GroupInfo>();
  /** Groups this user was removed from: their chat stays, read-only. */
  readonly outOf = new Set<string>();
  private readonly watched = new Set<string>();
  private readonly urls = new Map<string, { url: string; expiresAt: number } | Promise<string>>();
  private readonly saved: SavedState;
  private readonly listeners = new Set<() => void>();
  private saveTimer?: ReturnType<typeof setTimeout>;
  private noticeTimer?: ReturnType<typeof setTimeout>;
  private cidSeq = 0;

  constructor(readonly base: string, readonly session: SavedSession, private readonly onSession: (s: SavedSession | undefined) => void) {
    this.saved = loadState(session.device);
    this.client = new ParleyClient({ url: base, token: session.token, ptr: this.saved.ptr });
    this.convs = new Conversations(this.client, this.saved.convs);
    const c = this.client;
    c.on('welcome', () => {
      this.status = 'online';
      this.notice = undefined;
      this.resendPending();
      this.refreshNames();
      this.changed();
    });
    c.on('message', (m) => this.received(m));
    c.on('late', (m) => this.received(m));
    c.on('sent', (m) => { this.timeline(m.conv).add(m); this.pending.delete(m.cid); this.changed(); });
    c.on('synced', () => this.save());
    c.on('presence', (p) => { this.presence.set(p.user, p); this.changed(); });
    c.on('token', (token) => this.onSession({ ...this.session, token }));
    c.on('close', () => { if (this.status === 'online') this.status = 'connecting'; this.changed(); });
    c.on('signedOut', () => this.onSession(undefined));
    c.on('error', (e) => this.tell(e.message));
    this.convs.on('change', () => { this.changed(); this.save(); });
  }

  get me(): string { return this.session.user; }

  start(): void {
    addEventListener('offline', this.goOffline);
    addEventListener('online', this.goOnline);
    addEventListener('pagehide', this.flush);
    if (navigator.onLine === false) { this.status = 'offline'; return; }
    this.client.connect().catch(() => undefined); // it goes on trying; the status says so
  }

  stop(): void {
    removeEventListener('offline', this.goOffline);
    removeEventListener('online', this.goOnline);
    removeEventListener('pagehide', this.flush);
    this.save(true);
    if (this.noticeTimer) clearTimeout(this.noticeTimer);
    this.convs.dispose();
    this.client.close();
  }

  /** A reload or a closed tab runs no React cleanup: a save still waiting on its delay is written now. */
  private readonly flush = (): void => this.save(true);

  /** The browser says the network is gone: close now (a dead socket can take a minute to notice) and say so. */
  private readonly goOffline = (): void => {
    this.status = 'offline';
    this.client.close();
    this.changed();
  };
  private readonly goOnline = (): void => {
    this.status = 'connecting';
    this.client.connect().catch(() => undefined);
    this.changed();
  };

  subscribe(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private changed(): void { for (const f of this.listeners) f(); }

  /** A banner for what went wrong, gone after a while (or at the next welcome). */
  private tell(text: string): void {
    this.notice = text;
    if (this.noticeTimer) clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => { this.notice = undefined; this.changed(); }, NOTICE_MS);
    this.changed();
  }

  private save(now = false): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    const write = () => saveState(this.session.device, { ...this.saved, ptr: this.client.ptr, convs: this.convs.snapshot() });
    if (now) write();
    else this.saveTimer = setTimeout(write, SAVE_DELAY_MS);
  }

  private received(m: Message): void {
    this.timeline(m.conv).add(m);
    if (!this.profiles.has(m.from)) void this.profile(m.from);
    if (m.kind === 'system') {
      const g = parseConversationId(m.conv);
      const b = m.body as { event?: string; users?: string[] } | undefined;
      if (b?.users?.includes(this.me) && b.event === 'removed') this.outOf.add(m.conv);
      else if (b?.users?.includes(this.me) && b.event === 'added') this.outOf.delete(m.conv);
      if (g?.kind === 'group' && !this.outOf.has(m.conv)) void this.loadGroup(g.group);
    }
    this.changed();
  }

  // ---- conversations ----

  list(): ConversationSummary[] { return this.convs.list(); }

  timeline(conv: string): Timeline {
    let t = this.timelines.get(conv);
    if (!t) this.timelines.set(conv, (t = new Timeline()));
    return t;
  }

  hasAllHistory(conv: string): boolean { return this.historyDone.has(conv); }

  /** Loads the page before the oldest message held (the newest page, when none is). */
  loadOlder(conv: string): Promise<void> {
    // Offline, or refused a moment ago: the next welcome (or a later scroll) asks again, not every render.
    if (this.historyDone.has(conv) || !this.client.connected || Date.now() < (this.historyRetryAt.get(conv) ?? 0)) return Promise.resolve();
    const running = this.loading.get(conv);
    if (running) return running;
    const t = this.timeline(conv);
    const p = this.client.history(conv, { ...(t.first !== undefined ? { before: t.first } : {}), limit: PAGE }).then((ms) => {
      if (ms.length < PAGE) this.historyDone.add(conv);
      this.paged.add(conv);
      t.add(...ms);
      for (const m of ms) if (!this.profiles.has(m.from)) void this.profile(m.from);
    }, (e: unknown) => {
      this.tell((e as Error).message);
      this.historyRetryAt.set(conv, Date.now() + HISTORY_RETRY_MS);
    }).finally(() => { this.loading.delete(conv); this.changed(); });
    this.loading.set(conv, p);
    return p;
  }

  /** Opening a chat: its first page, its ticks, its people. */
  open(conv: string): void {
    this.convs.open(conv);
    if (!this.paged.has(conv)) void this.loadOlder(conv);
    this.convs.refresh(conv).catch(() => undefined);
    const p = parseConversationId(conv);
    if (p?.kind === 'direct') {
      const peer = p.users[0] === this.me ? p.users[1] : p.users[0];
      void this.profile(peer);
      this.watch(peer);
    } else if (p?.kind === 'group') {
      void this.loadGroup(p.group);
    }
  }

  /** Marks everything shown of `conv` read (the chat is open and the page visible). */
  seen(conv: string): void {
    const last = this.timeline(conv).last;
    const c = this.convs.get(conv);
    if (last === undefined || !c || last <= c.readUpTo || !this.client.connected) return;
    this.convs.markRead(conv, last);
  }

  private watch(user: string): void {
    if (this.watched.has(user)) return;
    this.watched.add(user);
    this.client.subscribePresence([user]); // the SDK renews it on every welcome
  }

  /** A chat with the owner of a phone number; they become a contact (they may see this user's last seen). */
  async chatWith(phone: string): Promise<string> {
    const user = await this.userByPhone(phone);
    if (user === this.me) throw new Error('that is your own number');
    await this.addContact(user);
    const conv = directConversationId(this.me, user);
    this.convs.open(conv);
    return conv;
  }

  async userByPhone(phone: string): Promise<string> {
    const p = phone.replace(/[\s()-]/g, '');
    const { users } = await this.client.lookup([p]);
    const user = users[p];
    if (!user) throw new Error(`nobody uses Parley with ${p}`);
    this.saved.phones[user] = p;
    return user;
  }

  isContact(user: string): boolean { return this.saved.contacts.includes(user); }

  async addContact(user: string): Promise<void> {
    await this.client.addContacts([user]);
    if (!this.saved.contacts.includes(user)) this.saved.contacts.push(user);
    this.save();
    this.changed();
  }

  // ---- names and pictures ----

  /** The list's people and groups as they are now (names change while this device was away). */
  private refreshNames(): void {
    void this.profile(this.me);
    for (const c of this.convs.list()) {
      const p = parseConversationId(c.conv);
      if (p?.kind === 'group') void this.loadGroup(p.group);
      else if (c.peer) void this.profile(c.peer);
    }
  }

  name(user: string): string {
    if (user === this.me) return 'You';
    return this.profiles.get(user)?.name || this.saved.names[user] || this.saved.phones[user] || `~${user.slice(0, 6)}`;
  }

  title(conv: ConversationSummary | string): string {
    const c = typeof conv === 'string' ? this.convs.get(conv) : conv;
    const p = parseConversationId(typeof conv === 'string' ? conv : conv.conv);
    if (p?.kind === 'group') return this.groups.get(p.group)?.name ?? this.saved.names[p.group] ?? 'Group';
    return c?.peer ? this.name(c.peer) : 'Chat';
  }

  async profile(user: string): Promise<Profile | undefined> {
    if (!this.client.connected) return this.profiles.get(user);
    try {
      const p = await this.client.getProfile(user);
      this.profiles.set(user, p);
      this.remember(user, p.name);
      this.changed();
      return p;
    } catch {
      return undefined;
    }
  }

  private remember(id: string, name: string | undefined): void {
    if (!name || this.saved.names[id] === name) return;
    this.saved.names[id] = name;
    this.save();
  }

  async setProfile(p: { name?: string; avatar?: string }): Promise<void> {
    this.profiles.set(this.me, await this.client.setProfile(p));
    this.changed();
  }

  async setLastSeen(v: LastSeenPrivacy): Promise<void> { await this.client.setLastSeenPrivacy(v); }

  /** A URL an <img> or <video> can load the media from (signed, short-lived; renewed when due). */
  mediaSrc(id: string): string | undefined {
    const u = this.urls.get(id);
    const held = u && !(u instanceof Promise) ? u : undefined;
    if (held?.url && held.expiresAt - Date.now() > 30_000) return this.base + held.url;
    // A failure is held as an empty URL for a while: gone media is not asked for on every render.
    if (held && !held.url && held.expiresAt > Date.now()) return undefined;
    if (!(u instanceof Promise)) {
      const p = mediaUrl(this.base, this.client.token, id).then((r) => { this.urls.set(id, r); this.changed(); return r.url; },
        () => { this.urls.set(id, { url: '', expiresAt: Date.now() + MEDIA_RETRY_MS }); return ''; });
      this.urls.set(id, p);
    }
    return held?.url ? this.base + held.url : undefined;
  }

  // ---- groups ----

  async loadGroup(group: string): Promise<GroupInfo | undefined> {
    try {
      const g = await this.client.groupInfo(group);
      this.groups.set(group, g);
      this.remember(group, g.name);
      for (const m of g.members) if (!this.profiles.has(m.user)) void this.profile(m.user);
      this.changed();
      return g;
    } catch {
      return undefined; // no longer a member
    }
  }

  async createGroup(name: string, phones: string[]): Promise<string> {
    const users = await Promise.all(phones.map((p) => this.userByPhone(p)));
    const g = await this.client.createGroup(name, users);
    this.groups.set(g.id, g);
    const conv = groupConversationId(g.id);
    this.convs.open(conv);
    return conv;
  }

  async groupChange(f: () => Promise<GroupInfo>): Promise<void> {
    const g = await f();
    this.groups.set(g.id, g);
    this.remember(g.id, g.name);
    this.changed();
  }

  async leave(group: string): Promise<void> {
    await this.client.leaveGroup(group);
    this.groups.delete(group);
    this.convs.remove(groupConversationId(group));
  }

  // ---- sending ----

  pendingIn(conv: string): Pending[] {
    return [...this.pending.values()].filter((p) => p.conv === conv && SHOWN_PENDING.has(p.kind)).sort((a, b) => a.ts - b.ts);
  }

  private newCid(): string { return `w${Date.now().toString(36)}${(++this.cidSeq).toString(36)}`; }

  /** Sends a message; it shows as pending until stored, and goes again after a reconnect with the same cid. */
  send(conv: string, kind: ClientMessageKind, body?: Body, extra: { reply?: number; target?: number } = {}): void {
    const p: Pending = { cid: this.newCid(), conv, kind, ...(body !== undefined ? { body } : {}), ...extra, state: 'sending', ts: Date.now() };
    if (kind !== 'reaction' && kind !== 'delete' && kind !== 'edit') this.pending.set(p.cid, p);
    this.transmit(p, true);
    this.changed();
  }

  private transmit(p: Pending, first: boolean): void {
    p.state = 'sending';
    this.client.send({ conv: p.conv }, p.kind, p.body, { cid: p.cid, fresh: first, ...(p.reply !== undefined ? { reply: p.reply } : {}), ...(p.target !== undefined ? { target: p.target } : {}) })
      .catch((e: unknown) => {
        if (e instanceof ServerError && e.retryable) {
          p.state = 'waiting'; // sent again on the next welcome
          if (!this.pending.has(p.cid)) this.pending.set(p.cid, p);
        } else {
          this.pending.delete(p.cid);
          this.tell(`Not sent: ${(e as Error).message}`);
        }
        this.changed();
      });
  }

  private resendPending(): void {
    for (const p of this.pending.values()) if (p.state === 'waiting') this.transmit(p, false);
  }

  /** Uploads a picture or video (with progress in its pending row), then sends it. */
  async sendMedia(conv: string, file: File, extra: { caption?: string; thumb?: string; w?: number; h?: number }): Promise<void> {
    const kind = file.type.startsWith('video/') ? 'video' : 'image';
    const p: Pending = { cid: this.newCid(), conv, kind, body: { mime: file.type, ...extra }, state: 'uploading', progress: 0, ts: Date.now() };
    this.pending.set(p.cid, p);
    this.changed();
    let up: UploadedMedia;
    try {
      up = await uploadMedia(this.base, this.client.token, file, file.type, { onProgress: (sent, total) => { p.progress = total ? sent / total : 0; this.changed(); } });
    } catch (e) {
      this.pending.delete(p.cid);
      this.tell(`Upload failed: ${(e as Error).message}`);
      this.changed();
      return;
    }
    this.urls.set(up.id, { url: up.url, expiresAt: up.urlExpiresAt });
    p.body = { media: up.id, mime: up.mime, size: up.size, ...extra };
    this.transmit(p, true);
    this.changed();
  }

  typing(conv: string, on: boolean): void {
    if (this.client.connected) this.client.typing(conv, on);
  }
}
