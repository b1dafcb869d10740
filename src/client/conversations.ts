import type { Message, ReceiptFrame, TypingEventFrame } from '../protocol/frames.js';
import { parseConversationId, type ConversationId, type UserId } from '../protocol/ids.js';
import { Emitter } from './emitter.js';
import type { ParleyClient } from './parley-client.js';

/**
 * What a chat app's conversation list and ticks need, kept from a client's events (docs/protocol.md, "The
 * SDK in a UI"). The node keeps no list of a device's conversations: a device knows the ones it
 * has seen traffic of (received, sent, or opened), so an app keeps a `snapshot()` and passes it back.
 */

/** The tick of a message this user sent: stored, on a device of every recipient, read by every recipient. */
export type Tick = 'sent' | 'delivered' | 'read';

export interface ConversationSummary {
  conv: ConversationId;
  kind: 'direct' | 'group';
  /** A 1:1 chat's other user. */
  peer?: UserId;
  /** The newest message that shows in a list (not an edit, reaction or delete). */
  last?: Message;
  /** Messages from others above `readUpTo`, as far as this device has seen them. */
  unread: number;
  /** This user has read up to this seq (on any of its devices). */
  readUpTo: number;
  /** The recipients' watermarks for this user's messages: the other user in 1:1, every member in a group. */
  delivered: number;
  read: number;
}

/** `gone`: groups this user left or was removed from (their last system messages don't bring them back). */
export interface ConversationsSnapshot { v: 1; convs: ConversationSummary[]; gone?: ConversationId[] }

/** The kinds that show in a list and count as unread. */
const CONTENT = new Set(['text', 'image', 'video', 'location', 'system']);
/** A typing indicator not renewed in this long has ended (the sender's client renews it while typing). */
export const TYPING_TTL_MS = 6_000;

/** The two timer calls typing needs. */
export interface Timers { setTimeout(f: () => void, ms: number): unknown; clearTimeout(handle: unknown): void }

interface Events {
  /** Something about `conv` changed: its summary, its ticks, or who is typing in it. */
  change: (conv: ConversationId) => void;
}

export class Conversations extends Emitter<Events> {
  private readonly convs = new Map<ConversationId, ConversationSummary>();
  private readonly gone = new Set<ConversationId>();
  private readonly typers = new Map<ConversationId, Map<UserId, unknown>>();
  private readonly off: (() => void)[];
  private readonly timers: Timers;

  /** `timers`: where typing's expiry is scheduled (tests pass a fake clock's). */
  constructor(private readonly client: ParleyClient, snapshot?: ConversationsSnapshot, opts: { timers?: Timers } = {}) {
    super();
    this.timers = opts.timers ?? { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>) };
    if (snapshot?.v === 1) {
      for (const c of snapshot.convs) this.convs.set(c.conv, { ...c });
      for (const g of snapshot.gone ?? []) this.gone.add(g);
    }
    this.off = [
      client.on('message', (m) => this.message(m)),
      client.on('late', (m) => this.message(m)),
      client.on('sent', (m) => this.message(m)),
      client.on('receipt', (r) => this.receipt(r)),
      client.on('typing', (t) => this.typing(t)),
    ];
  }

  /** Newest activity first. */
  list(): ConversationSummary[] {
    return [...this.convs.values()].sort((a, b) => (b.last?.ts ?? 0) - (a.last?.ts ?? 0));
  }

  get(conv: ConversationId): ConversationSummary | undefined { return this.convs.get(conv); }

  /** Makes sure a conversation is listed (one opened before any message: a new chat, a group just made). */
  open(conv: ConversationId): ConversationSummary {
    let c = this.convs.get(conv);
    if (c) return c;
    const p = parseConversationId(conv);
    if (!p) throw new Error(`not a conversation id: ${conv}`);
    c = { conv, kind: p.kind, unread: 0, readUpTo: 0, delivered: 0, read: 0 };
    if (p.kind === 'direct') c.peer = p.users[0] === this.client.user ? p.users[1] : p.users[0];
    this.convs.set(conv, c);
    this.emit('change', conv);
    return c;
  }

  /**
   * Forgets a conversation (a group left): what still comes of it (the `left` message itself) is ignored,
   * until a message adds this user again.
   */
  remove(conv: ConversationId): void {
    this.gone.add(conv);
    if (this.convs.delete(conv)) this.emit('change', conv);
  }

  /** This user read `conv` up to `seq`: tells the node (the senders' read ticks) and clears the unread count. */
  markRead(conv: ConversationId, seq: number): void {
    const c = this.open(conv);
    if (seq <= c.readUpTo) return;
    c.readUpTo = seq;
    if (!c.last || seq >= c.last.seq) c.unread = 0;
    this.client.read(conv, seq);
    this.emit('change', conv);
  }

  /** The tick of this user's message `seq` in `conv`. */
  tick(conv: ConversationId, seq: number): Tick {
    const c = this.convs.get(conv);
    if (c && c.read >= seq) return 'read';
    if (c && c.delivered >= seq) return 'delivered';
    return 'sent';
  }

  /** Who is typing in `conv` now (never this user). */
  typingIn(conv: ConversationId): UserId[] {
    return [...(this.typers.get(conv)?.keys() ?? [])];
  }

  /**
   * Asks the node for the conversation's receipt cursors (a device that was offline, or new, has missed the
   * pushed receipts): the ticks of this user's messages, and how far this user has read.
   */
  async refresh(conv: ConversationId): Promise<void> {
    const { members, all } = await this.client.receipts(conv);
    const c = this.open(conv);
    const me = this.client.user;
    const mine = me ? members[me] : undefined;
    if (mine && mine.read > c.readUpTo) {
      c.readUpTo = mine.read;
      if (!c.last || mine.read >= c.last.seq) c.unread = 0;
    }
    const theirs = c.kind === 'group' ? all : c.peer ? members[c.peer] : undefined;
    if (theirs) {
      c.delivered = Math.max(c.delivered, theirs.delivered, theirs.read);
      c.read = Math.max(c.read, theirs.read);
    }
    this.emit('change', conv);
  }

  snapshot(): ConversationsSnapshot {
    return { v: 1, convs: [...this.convs.values()].map((c) => ({ ...c })), gone: [...this.gone] };
  }

  /** Stops following the client (and the typing timers). */
  dispose(): void {
    for (const f of this.off) f();
    for (const m of this.typers.values()) for (const t of m.values()) this.timers.clearTimeout(t);
    this.typers.clear();
  }

  private message(m: Message): void {
    if (this.gone.has(m.conv)) {
      const b = m.body as { event?: unknown; users?: unknown } | undefined;
      const me = this.client.user;
      if (!(m.kind === 'system' && b?.event === 'added' && Array.isArray(b.users) && me && b.users.includes(me))) return;
      this.gone.delete(m.conv);
    }
    const c = this.open(m.conv);
    const mine = m.from === this.client.user;
    if (mine) {
      // Sent from here or from another device of this user: everything below it was seen.
      if (m.seq > c.readUpTo) c.readUpTo = m.seq;
    } else {
      this.stopTyping(m.conv, m.from, false);
    }
    if (CONTENT.has(m.kind) && (!c.last || m.seq > c.last.seq)) {
      c.last = m;
      if (mine) c.unread = 0;
      else if (m.seq > c.readUpTo && m.kind !== 'system') c.unread++;
    } else if (c.last && m.target === c.last.seq && (m.kind === 'edit' || m.kind === 'delete')) {
      // The list shows the newest message as it is now.
      c.last = { ...c.last, body: m.kind === 'delete' ? undefined : m.body };
    }
    this.emit('change', m.conv);
  }

  private receipt(r: ReceiptFrame): void {
    if (this.gone.has(r.conv)) return;
    const c = this.open(r.conv);
    if (r.user === this.client.user) {
      // This user read it on another device.
      if (r.status === 'read' && r.upTo > c.readUpTo) {
        c.readUpTo = r.upTo;
        if (!c.last || r.upTo >= c.last.seq) c.unread = 0;
      }
    } else if (r.status === 'read' || r.status === 'read_all') {
      c.read = Math.max(c.read, r.upTo);
      c.delivered = Math.max(c.delivered, r.upTo);
    } else {
      c.delivered = Math.max(c.delivered, r.upTo);
    }
    this.emit('change', r.conv);
  }

  private typing(t: TypingEventFrame): void {
    if (t.user === this.client.user) return;
    if (t.on) this.startTyping(t.conv, t.user);
    else this.stopTyping(t.conv, t.user);
  }

  private startTyping(conv: ConversationId, user: UserId): void {
    let m = this.typers.get(conv);
    if (!m) this.typers.set(conv, (m = new Map()));
    const old = m.get(user);
    if (old) this.timers.clearTimeout(old);
    m.set(user, this.timers.setTimeout(() => this.stopTyping(conv, user), TYPING_TTL_MS));
    if (!old) this.emit('change', conv);
  }

  private stopTyping(conv: ConversationId, user: UserId, tell = true): void {
    const m = this.typers.get(conv);
    const t = m?.get(user);
    if (!t) return;
    this.timers.clearTimeout(t);
    m!.delete(user);
    if (tell) this.emit('change', conv);
  }
}
