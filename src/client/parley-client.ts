import { Packr } from 'msgpackr';
import type {
  Body, ClientFrame, ClientMessageKind, DeviceInfo, ErrorFrame, GroupInfo, LastSeenPrivacy, Message, PresenceFrame, Profile,
  PushPlatform, PushRegisterFrame, ReceiptFrame, SentFrame, ServerFrame, SignOutResult, TypingEventFrame, WelcomeFrame,
} from '../protocol/frames.js';
import { directConversationId, parseConversationId, type ConversationId } from '../protocol/ids.js';
import { E2eEngine } from './e2e/e2e-engine.js';
import { decryptMedia, encryptMedia, type MediaKey } from './e2e/media-crypto.js';
import { Emitter } from './emitter.js';
import { SeqOrder } from './seq-order.js';
import { PRESENCE_USERS_PER_FRAME } from '../protocol/limits.js';
import { DEFAULT_BACKOFF, backoffDelay, nextUrl, nodeUrls, type BackoffPolicy } from './failover.js';

/** The subset of the WebSocket API the client needs: the browser's, or the `ws` package's in Node. */
interface SocketLike {
  binaryType: string;
  readyState: number;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
type SocketCtor = new (url: string) => SocketLike;

export interface ClientOptions {
  /** http(s)://host:port of a node (or of a load balancer in front of several). */
  url?: string;
  /**
   * Several nodes of one cluster: the client connects to the first and, whenever a socket closes or can't
   * connect, tries the next, with exponential backoff and full jitter (docs/protocol.md, "Failover").
   */
  urls?: string[];
  /** The reconnect schedule (default: windows from 250 ms doubling to 10 s). */
  backoff?: Partial<BackoffPolicy>;
  /** Draws the jitter ([0, 1), default Math.random): tests pass their own. */
  random?: () => number;
  /**
   * A socket with no `welcome` this long after it was opened is given up as failed (default 10 s), so a node
   * that accepts connections but doesn't answer (hung, or a black hole) costs one wait, not the OS's TCP timeout.
   */
  connectTimeoutMs?: number;
  token: string;
  format?: 'msgpack' | 'json';
  /** The last inbox pointer this device holds (persist it across restarts of the app). */
  ptr?: number;
  /** Ack deliveries automatically, batched (default true). */
  autoAck?: boolean;
  /** Reconnect with backoff after an unexpected close (default true). */
  reconnect?: boolean;
  WebSocket?: SocketCtor;
  /**
   * End-to-end encryption (MLS): the client makes and publishes this device's keys, encrypts what it sends
   * and decrypts what it receives (docs/protocol.md, "End-to-end encryption"). Off: plaintext, for bots and tests.
   */
  e2e?: boolean | E2eOptions;
}

export interface E2eOptions {
  /** How often a send first checks the group against the key directory (default 30 s). */
  reconcileEveryMs?: number;
  /** What `e2e.save()` gave in an earlier run of this device: its identity, keys and groups go on. */
  state?: Uint8Array;
}

interface Cursor { delivered: number; read: number }
/** A conversation's receipt cursors: per member, and in a group its "…_all" watermarks. */
export interface Receipts { conv: string; members: Record<string, Cursor>; all?: Cursor }

export class ServerError extends Error {
  /**
   * A refused send's client id: when `retryable`, send it again with `{ cid }` (a new cid would be a second
   * message if the first was stored after all).
   */
  cid?: string;
  /** `retryAfterMs`: a rate limit's wait before the same request may pass. */
  constructor(readonly code: string, message: string, readonly retryable: boolean, readonly retryAfterMs?: number) { super(message); }
}

interface Events {
  welcome: (w: WelcomeFrame) => void;
  /** A conversation's messages, in increasing seq (gaps are normal: see `late`). */
  message: (m: Message, ptr: number) => void;
  /**
   * A message that came after a later one of its conversation: its first delivery was interrupted by a crash
   * and it came again when its sender resent it. Emitted, never dropped, for the app to put in its place by seq.
   */
  late: (m: Message, ptr: number) => void;
  synced: (ptr: number) => void;
  /**
   * A message this client sent was stored (the "sent" tick), as it now is in the conversation's log: the
   * same shape as a received `message`, so a UI adds it to its timeline by seq. Also for a `dup` resend.
   */
  sent: (m: Message) => void;
  receipt: (r: ReceiptFrame) => void;
  typing: (t: TypingEventFrame) => void;
  presence: (p: PresenceFrame) => void;
  error: (e: ErrorFrame) => void;
  close: (code: number, reason: string) => void;
  /** Another device of this user signed in (told live, or after the sync that follows being offline). */
  deviceAdded: (device: DeviceInfo, time: number) => void;
  deviceRemoved: (device: DeviceInfo, time: number) => void;
  /** This device was signed out (here or from another device): the client stops; sign in again. */
  signedOut: () => void;
  /** The node renewed this device's token: persist it in place of the old one. */
  token: (token: string) => void;
  /** An encrypted message this device could not open (tampered with, or not for it). */
  undecryptable: (m: Message, reason: string) => void;
  /** This device joined a conversation's encrypted group, or the group moved to `epoch`. */
  e2e: (conv: string, epoch: number) => void;
}

/** The close code of a socket whose device was signed out (docs/protocol.md). */
export const SIGNED_OUT_CLOSE = 4401;
/** The code the client reports (in `close`) for a socket it gave up on: no welcome within `connectTimeoutMs`. */
export const CONNECT_TIMEOUT_CLOSE = 4008;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const ACK_DELAY_MS = 20;
const ACK_EVERY = 100;
const SEEN_MAX = 10_000;
/**
 * Conversations whose sent messages are followed for receipts missed while offline: the most recently sent
 * to. Each costs one request per reconnect, so a few, well inside a socket's frame rate (docs/protocol.md).
 */
const AWAITING_MAX = 100;

/** A conversation this client sent to and hasn't seen all of it read: the receipts it saw, per status and user. */
interface Awaiting { sent: number; group: boolean; seen: Map<string, number> }

/** JSON has no bytes: they travel as {"$bin": base64} both ways (docs/protocol.md). btoa/atob work in browsers and Node. */
function jsonReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key]; // before toJSON: a Buffer would otherwise arrive here as {type, data}
  if (!(raw instanceof Uint8Array)) return value;
  let s = '';
  for (let i = 0; i < raw.length; i += 0x8000) s += String.fromCharCode(...raw.subarray(i, i + 0x8000));
  return { $bin: btoa(s) };
}
function jsonReviver(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && typeof (value as { $bin?: unknown }).$bin === 'string' && Object.keys(value).length === 1) {
    return Uint8Array.from(atob((value as { $bin: string }).$bin), (c) => c.charCodeAt(0));
  }
  return value;
}

/**
 * A Parley client for Node and browsers. It keeps the device's inbox pointer: on every (re)connect it
 * syncs from it, drops any delivery it already holds, and acks in batches, so the app sees each message
 * exactly once, each conversation's in seq order (`message`). A gap in a conversation's seqs is not waited
 * for: it is a message whose write failed, one this device may not see (before it joined a group, or its
 * own), or, rarely, one still to come as `late` after a crash interrupted its delivery.
 */
export class ParleyClient extends Emitter<Events> {
  /** Highest inbox pointer received; what `sync` resumes from. */
  ptr: number;
  /** This device's session token: the one it was given, or the node's renewal of it. */
  token: string;
  user?: string;
  device?: string;
  private ws?: SocketLike;
  private readonly format: 'msgpack' | 'json';
  private readonly waiting = new Map<string, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private seq = 0;
  private acked = 0;
  private ackTimer?: ReturnType<typeof setTimeout>;
  private closedByUser = false;
  /** The nodes, and the index of the one connected to (or being tried). */
  readonly urls: readonly string[];
  private at = 0;
  /** Sockets that closed since the last welcome (the backoff's exponent), and of those, never welcomed. */
  private attempt = 0;
  private failed = 0;
  private welcomed?: SocketLike;
  private retryTimer?: ReturnType<typeof setTimeout>;
  private welcomeTimer?: ReturnType<typeof setTimeout>;
  private readonly policy: BackoffPolicy;
  private readyWaiter?: { resolve(w: WelcomeFrame): void; reject(e: unknown): void };
  private readonly seen = new Set<string>();
  /** Per conversation, the highest seq emitted as `message`. */
  private readonly order = new SeqOrder(SEEN_MAX);
  private readonly awaiting = new Map<string, Awaiting>();
  private syncRid?: string;
  /** The end-to-end encryption, when on. */
  readonly e2e?: E2eEngine;

  constructor(private readonly opts: ClientOptions) {
    super();
    if (opts.e2e) {
      const self = this; // eslint-disable-line @typescript-eslint/no-this-alias
      this.e2e = new E2eEngine({
        get user() { return self.user!; },
        get device() { return self.device!; },
        request: (frame) => this.request(frame as ClientFrame),
        sendMls: (conv, body) => this.send({ conv }, 'mls', body as unknown as Body, { plain: true }),
        members: (conv) => this.membersOf(conv),
        deliver: (m, ptr) => this.emitInOrder(m, ptr),
        undecryptable: (m, reason) => this.emit('undecryptable', m, reason),
        changed: (conv, epoch) => this.emit('e2e', conv, epoch),
      }, typeof opts.e2e === 'object' ? opts.e2e.reconcileEveryMs : undefined, typeof opts.e2e === 'object' ? opts.e2e.state : undefined);
    }
    this.ptr = opts.ptr ?? 0;
    this.token = opts.token;
    this.acked = this.ptr;
    this.format = opts.format ?? 'msgpack';
    this.urls = nodeUrls(opts);
    this.policy = { ...DEFAULT_BACKOFF, ...opts.backoff };
  }

  /** The node this client is connected to (or trying). */
  get url(): string { return this.urls[this.at]!; }

  /**
   * Opens a socket and resolves on the welcome frame; the inbox sync follows by itself. With several URLs,
   * a node that can't be reached is passed over for the next (with backoff); it rejects once every URL failed
   * once in a row (with `reconnect` on, the client goes on trying in the background, as after a close).
   */
  connect(): Promise<WelcomeFrame> {
    this.closedByUser = false;
    this.failed = 0;
    return new Promise<WelcomeFrame>((resolve, reject) => {
      this.readyWaiter?.reject(new ServerError('connect_failed', 'connect() was called again', true));
      this.readyWaiter = { resolve, reject };
      this.open();
    });
  }

  private open(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const Ctor = this.opts.WebSocket ?? (globalThis as { WebSocket?: SocketCtor }).WebSocket ?? loadNodeWs();
    const url = `${this.url.replace(/^http/, 'ws')}/v1/ws?token=${encodeURIComponent(this.token)}&format=${this.format}`;
    const ws = new Ctor(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onerror = () => undefined; // a close follows
    ws.onclose = (ev) => this.onClose(ws, ev.code, ev.reason);
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = setTimeout(() => {
      if (this.ws !== ws || this.welcomed === ws) return;
      // Given up here, not when (or whether) the socket reports its close.
      ws.onclose = null;
      ws.onmessage = null;
      try { ws.close(); } catch { /* not open yet: nothing to close */ }
      this.onClose(ws, CONNECT_TIMEOUT_CLOSE, 'no welcome in time');
    }, this.opts.connectTimeoutMs ?? 10_000);
  }

  close(): void {
    this.closedByUser = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.retryTimer = this.welcomeTimer = undefined;
    if (this.opts.autoAck !== false) this.flushAck(); // with autoAck off, acking is the app's decision
    this.ws?.close(1000, 'bye');
  }

  get connected(): boolean { return this.ws?.readyState === 1; }

  // ---- messages ----

  /**
   * Sends a message; resolves when the node has stored it (the "sent" tick) with its seq. With `e2e` on it
   * is encrypted (its kind, body, reply and target travel inside an `mls` message), unless `plain`.
   */
  send(dest: { to: string } | { conv: string }, kind: ClientMessageKind, body?: Body, extra: { cid?: string; reply?: number; target?: number; fresh?: boolean; plain?: boolean } = {}): Promise<SentFrame> {
    if (this.e2e && !extra.plain && kind !== 'mls') {
      const conv = 'to' in dest ? directConversationId(this.user!, dest.to) : dest.conv;
      // Media named inside is named outside too (its id only), so the node lets the conversation fetch it.
      const media = (kind === 'image' || kind === 'video') && body && !(body instanceof Uint8Array) && typeof body.media === 'string' ? body.media : undefined;
      return this.e2e.send(conv, { kind, ...(body !== undefined ? { body } : {}), ...(extra.reply !== undefined ? { reply: extra.reply } : {}), ...(extra.target !== undefined ? { target: extra.target } : {}) }, media);
    }
    // A cid made here is new by construction; one the app passes may be a resend, unless it says otherwise.
    const fresh = extra.cid === undefined || extra.fresh === true;
    const cid = extra.cid ?? `c${Date.now().toString(36)}${(++this.seq).toString(36)}`;
    const frame = { t: 'send', cid, kind, ...dest, ...(body !== undefined ? { body } : {}), ...(extra.reply !== undefined ? { reply: extra.reply } : {}), ...(extra.target !== undefined ? { target: extra.target } : {}), ...(fresh ? { fresh: true } : {}) } as ClientFrame;
    return (this.expect(`cid:${cid}`, frame) as Promise<SentFrame>).then((s) => {
      this.emit('sent', {
        conv: s.conv, seq: s.seq, from: this.user!, dev: this.device!, cid, kind, ts: s.ts,
        ...(body !== undefined ? { body } : {}), ...(extra.reply !== undefined ? { reply: extra.reply } : {}), ...(extra.target !== undefined ? { target: extra.target } : {}),
      });
      return s;
    }, (err: unknown) => {
      if (err instanceof ServerError) err.cid = cid;
      throw err;
    });
  }

  text(dest: { to: string } | { conv: string }, text: string): Promise<SentFrame> {
    return this.send(dest, 'text', { text });
  }

  // ---- end-to-end encryption ----

  /** The safety number of this user and `other` (docs/protocol.md): equal on both sides when no key was swapped. */
  safetyNumber(other: string): Promise<string> {
    if (!this.e2e) throw new ServerError('e2e_off', 'end-to-end encryption is off', false);
    return this.e2e.safetyNumber(other);
  }

  /**
   * Sends a picture or video encrypted: the bytes are encrypted here (AES-GCM, a fresh key), uploaded as
   * application/octet-stream, and the key, IV and hash travel inside the encrypted message.
   */
  async sendMedia(dest: { to: string } | { conv: string }, kind: 'image' | 'video', bytes: Uint8Array, mime: string, caption?: string): Promise<SentFrame> {
    if (!this.e2e) throw new ServerError('e2e_off', 'end-to-end encryption is off', false);
    const { ciphertext, media } = await encryptMedia(bytes);
    const res = await fetch(`${this.url}/v1/media`, { method: 'POST', headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/octet-stream' }, body: ciphertext });
    if (!res.ok) throw new ServerError('upload_failed', `media upload answered ${res.status}`, res.status >= 500);
    const { id } = (await res.json()) as { id: string };
    return this.send(dest, kind, { media: id, mime, key: media.key, iv: media.iv, sha256: media.sha256, ...(caption ? { caption } : {}) });
  }

  /** Downloads and decrypts the media an encrypted message names (its body as received). */
  async fetchMedia(body: { media: string; key: Uint8Array; iv: Uint8Array; sha256: Uint8Array }): Promise<Uint8Array> {
    const res = await fetch(`${this.url}/v1/media/${body.media}`, { headers: { authorization: `Bearer ${this.token}` } });
    if (!res.ok) throw new ServerError('not_found', `media answered ${res.status}`, false);
    const key: MediaKey = { key: body.key, iv: body.iv, sha256: body.sha256 };
    return decryptMedia(new Uint8Array(await res.arrayBuffer()), key);
  }

  /** A conversation's users as the server has them: a 1:1 chat's two, a group's members. */
  private async membersOf(conv: string): Promise<string[]> {
    const parsed = parseConversationId(conv);
    if (!parsed) throw new ServerError('invalid', `not a conversation id: ${conv}`, false);
    if (parsed.kind === 'direct') return [...parsed.users];
    return (await this.groupInfo(parsed.group)).members.map((m) => m.user);
  }

  read(conv: string, seq: number): void { this.raw({ t: 'read', conv, seq }); }
  typing(conv: string, on: boolean): void { this.raw({ t: 'typing', conv, on }); }
  /**
   * Follows these users' presence. A subscription lives as long as the server's socket, so the SDK renews
   * every one on each welcome (a reconnect, a node's failover): presence keeps coming across them.
   */
  subscribePresence(users: string[]): void {
    for (const u of users) this.presenceSubs.add(u);
    if (this.ready) this.raw({ t: 'presence.sub', users });
  }

  unsubscribePresence(users: string[]): void {
    for (const u of users) this.presenceSubs.delete(u);
    if (this.ready) this.raw({ t: 'presence.unsub', users });
  }

  private readonly presenceSubs = new Set<string>();
  /** Welcomed on a socket that is open: frames sent now reach this session. */
  private get ready(): boolean {
    return this.ws !== undefined && this.welcomed === this.ws && this.ws.readyState === 1;
  }

  private renewPresence(): void {
    const users = [...this.presenceSubs];
    for (let i = 0; i < users.length; i += PRESENCE_USERS_PER_FRAME) this.raw({ t: 'presence.sub', users: users.slice(i, i + PRESENCE_USERS_PER_FRAME) });
  }

  history(conv: string, q: { before?: number; after?: number; from?: number; until?: number; limit?: number } = {}): Promise<Message[]> {
    return this.request({ t: 'history', rid: '', conv, ...q }) as Promise<Message[]>;
  }

  /** Every member's delivered and read cursors (in a group, the per-member detail behind `…_all`). */
  receipts(conv: string): Promise<Receipts> {
    return this.request({ t: 'receipts', rid: '', conv }) as Promise<Receipts>;
  }

  // ---- groups, profile, settings ----

  createGroup(name: string, members: string[] = []): Promise<GroupInfo> { return this.request({ t: 'group.create', rid: '', name, members }) as Promise<GroupInfo>; }
  addMembers(group: string, users: string[]): Promise<GroupInfo> { return this.request({ t: 'group.add', rid: '', group, users }) as Promise<GroupInfo>; }
  removeMembers(group: string, users: string[]): Promise<GroupInfo> { return this.request({ t: 'group.remove', rid: '', group, users }) as Promise<GroupInfo>; }
  makeAdmin(group: string, user: string): Promise<GroupInfo> { return this.request({ t: 'group.admin', rid: '', group, user }) as Promise<GroupInfo>; }
  renameGroup(group: string, name: string): Promise<GroupInfo> { return this.request({ t: 'group.rename', rid: '', group, name }) as Promise<GroupInfo>; }
  leaveGroup(group: string): Promise<GroupInfo> { return this.request({ t: 'group.leave', rid: '', group }) as Promise<GroupInfo>; }
  groupInfo(group: string): Promise<GroupInfo> { return this.request({ t: 'group.info', rid: '', group }) as Promise<GroupInfo>; }
  setProfile(p: { name?: string; avatar?: string }): Promise<Profile> { return this.request({ t: 'profile.set', rid: '', ...p }) as Promise<Profile>; }
  getProfile(user: string): Promise<Profile> { return this.request({ t: 'profile.get', rid: '', user }) as Promise<Profile>; }
  setLastSeenPrivacy(lastSeen: LastSeenPrivacy): Promise<unknown> { return this.request({ t: 'settings.set', rid: '', lastSeen }); }
  addContacts(users: string[]): Promise<unknown> { return this.request({ t: 'contacts.add', rid: '', users }); }
  removeContacts(users: string[]): Promise<unknown> { return this.request({ t: 'contacts.remove', rid: '', users }); }
  lookup(phones: string[]): Promise<{ users: Record<string, string> }> { return this.request({ t: 'users.lookup', rid: '', phones }) as Promise<{ users: Record<string, string> }>; }
  /** `token` for APNs, FCM and WNS (the channel URI); for Web Push, `opts.endpoint` and `opts.keys` instead. */
  registerPush(platform: PushPlatform, token?: string, opts: Omit<PushRegisterFrame, 't' | 'rid' | 'platform' | 'token'> = {}): Promise<unknown> {
    return this.request({ t: 'push.register', rid: '', platform, ...(token !== undefined ? { token } : {}), ...opts });
  }
  unregisterPush(): Promise<unknown> { return this.request({ t: 'push.unregister', rid: '' }); }
  /** No notifications from `conv` until `until` (ms; absent: until unmuted); `until: 0` unmutes. */
  mute(conv: ConversationId, until?: number): Promise<unknown> { return this.request({ t: 'mute', rid: '', conv, ...(until !== undefined ? { until } : {}) }); }
  ping(): Promise<unknown> { return this.request({ t: 'ping', rid: '' }); }

  // ---- devices ----

  /** This user's signed-in devices, oldest first; this one is `current`. */
  async listDevices(): Promise<DeviceInfo[]> {
    return ((await this.request({ t: 'devices.list', rid: '' })) as { devices: DeviceInfo[] }).devices;
  }
  /** Signs this device out (`all`: every device of the user); the socket closes and `signedOut` follows. */
  signOut(scope: 'this' | 'all' = 'this'): Promise<SignOutResult> {
    return this.request({ t: 'devices.signout', rid: '', scope }) as Promise<SignOutResult>;
  }
  /** Signs another device out by id (see listDevices). */
  signOutDevice(device: string): Promise<SignOutResult> {
    return this.request({ t: 'devices.signout', rid: '', device }) as Promise<SignOutResult>;
  }
  /** Signs out every device of the user but this one. */
  signOutOthers(): Promise<SignOutResult> {
    return this.request({ t: 'devices.signout', rid: '', scope: 'others' }) as Promise<SignOutResult>;
  }

  /** Sends any frame as is (for tools and tests that speak the protocol directly). */
  raw(frame: ClientFrame | Record<string, unknown>): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1) throw new ServerError('not_connected', 'the socket is not open', true);
    ws.send(this.format === 'msgpack' ? packr.pack(frame) : JSON.stringify(frame, jsonReplacer));
  }

  /** Sends any request frame (a rid is added) and resolves with its `res` data: for tools and tests. */
  ask(frame: Record<string, unknown>): Promise<unknown> {
    return this.request(frame as unknown as ClientFrame);
  }

  private request(frame: ClientFrame & { rid?: string }): Promise<unknown> {
    const rid = `r${(++this.seq).toString(36)}`;
    return this.expect(`rid:${rid}`, { ...frame, rid } as ClientFrame);
  }

  private expect(key: string, frame: ClientFrame): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.set(key, { resolve, reject });
      try {
        this.raw(frame);
      } catch (e) {
        this.waiting.delete(key);
        reject(e);
      }
    });
  }

  private settle(key: string, value: unknown, error?: ErrorFrame): boolean {
    const w = this.waiting.get(key);
    if (!w) return false;
    this.waiting.delete(key);
    if (error) w.reject(new ServerError(error.code, error.message, error.retryable, error.retryAfterMs));
    else w.resolve(value);
    return true;
  }

  // ---- inbound ----

  private receive(data: unknown): void {
    const f = (typeof data === 'string' ? JSON.parse(data, jsonReviver) : packr.unpack(new Uint8Array(data as ArrayBuffer))) as ServerFrame;
    switch (f.t) {
      case 'welcome':
        this.user = f.user;
        this.device = f.device;
        if (f.token) {
          this.token = f.token; // reconnects use it
          this.emit('token', f.token);
        }
        this.attempt = 0;
        this.failed = 0;
        this.welcomed = this.ws;
        if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
        this.welcomeTimer = undefined;
        this.acked = this.ptr; // sync acks everything up to ptr
        this.sync();
        if (this.e2e) this.e2e.start().catch((err: unknown) => this.emit('error', { t: 'error', code: 'internal', message: `keys not published: ${String(err)}`, retryable: true }));
        this.emit('welcome', f);
        this.readyWaiter?.resolve(f);
        this.readyWaiter = undefined;
        this.catchUpReceipts();
        this.renewPresence();
        return;
      case 'msg':
        if (f.ptr <= this.ptr) return; // already held: a resend after a reconnect
        this.ptr = f.ptr;
        // A redelivery after a server crash can carry a message again under a new ptr.
        if (!this.remember(`${f.m.conv}:${f.m.seq}`)) this.arrived(f.m, f.ptr);
        this.scheduleAck();
        return;
      case 'synced':
        this.flushAck();
        if (f.more) this.sync();
        else this.emit('synced', f.ptr);
        return;
      case 'sent': this.await(f); this.settle(`cid:${f.cid}`, f); return;
      case 'res': this.settle(`rid:${f.rid}`, f.data); return;
      case 'pong': if (f.rid) this.settle(`rid:${f.rid}`, f); return;
      case 'receipt': this.receipt(f); return;
      case 'typing': this.emit('typing', f); return;
      case 'presence': this.emit('presence', f); return;
      case 'device':
        this.emit(f.event === 'added' ? 'deviceAdded' : 'deviceRemoved', f.device, f.time);
        if (f.event === 'removed') this.reconcileAll(); // its leaves leave this user's groups
        return;
      case 'keys': this.reconcileAll(); return; // a new device of this user: into this user's groups
      case 'error': {
        if (f.rid !== undefined && f.rid === this.syncRid) return this.syncRefused(f);
        const settled = (f.cid && this.settle(`cid:${f.cid}`, undefined, f)) || (f.rid && this.settle(`rid:${f.rid}`, undefined, f));
        if (!settled) this.emit('error', f);
        return;
      }
    }
  }

  /** Asks for the inbox after the pointer held; the rid matches a refusal to it. */
  private sync(): void {
    this.syncRid = `s${(++this.seq).toString(36)}`;
    this.raw({ t: 'sync', since: this.ptr, rid: this.syncRid });
  }

  /** A refused sync (rate limited, a store outage) is asked again on the same socket once the node says it may. */
  private syncRefused(f: ErrorFrame): void {
    this.emit('error', f);
    if (!f.retryable) return;
    const ws = this.ws;
    setTimeout(() => { if (this.ws === ws && this.connected) this.sync(); }, f.retryAfterMs ?? 1000);
  }

  // ---- receipts missed while offline ----
  // The node pushes receipts to the sockets open at the time; a sender offline then would never hear them.
  // So the client follows the conversations where something it sent is not yet read (by the other user, or
  // by all), and on every welcome asks each for its cursors, emitting what moved as ordinary receipts.

  private await(s: SentFrame): void {
    const a = this.awaiting.get(s.conv) ?? { sent: 0, group: parseConversationId(s.conv)?.kind === 'group', seen: new Map() };
    a.sent = Math.max(a.sent, s.seq);
    this.awaiting.delete(s.conv); // re-inserted last: the map's order is recency
    this.awaiting.set(s.conv, a);
    if (this.awaiting.size > AWAITING_MAX) this.awaiting.delete(this.awaiting.keys().next().value!);
  }

  /** Emits a receipt (one caught up only if it says more than those seen); forgets a conversation all read. */
  private receipt(r: ReceiptFrame, caughtUp = false): void {
    const a = this.awaiting.get(r.conv);
    if (a) {
      const key = `${r.status}:${r.user ?? ''}`;
      const seen = a.seen.get(key) ?? 0;
      if (caughtUp && seen >= r.upTo) return;
      a.seen.set(key, Math.max(seen, r.upTo));
      const readByAll = a.group ? r.status === 'read_all' : r.status === 'read' && r.user !== this.user;
      if (readByAll && r.upTo >= a.sent) this.awaiting.delete(r.conv);
    }
    this.emit('receipt', r);
  }

  private catchUpReceipts(): void {
    for (const [conv, a] of this.awaiting) {
      this.receipts(conv).then(({ members, all }) => {
        if (a.group) {
          if (all?.delivered) this.receipt({ t: 'receipt', conv, status: 'delivered_all', upTo: all.delivered }, true);
          if (all?.read) this.receipt({ t: 'receipt', conv, status: 'read_all', upTo: all.read }, true);
          return;
        }
        for (const [user, c] of Object.entries(members)) {
          if (user === this.user) continue;
          if (c.delivered) this.receipt({ t: 'receipt', conv, status: 'delivered', user, upTo: c.delivered }, true);
          if (c.read) this.receipt({ t: 'receipt', conv, status: 'read', user, upTo: c.read }, true);
        }
      }, () => undefined); // gone, or no longer a member: nothing to catch up
    }
  }

  /**
   * A message from the inbox. With e2e on, an encrypted one is opened first, and every message of its
   * conversation waits its turn behind it; a group change this user made is carried into the encrypted group.
   */
  private arrived(m: Message, ptr: number): void {
    const e2e = this.e2e;
    if (!e2e) return this.emitInOrder(m, ptr);
    if (m.kind === 'mls') return void e2e.receive(m, ptr);
    e2e.after(m.conv, () => this.emitInOrder(m, ptr));
    const by = m.kind === 'system' ? (m.body as { by?: string } | undefined)?.by : undefined;
    if (by === this.user && e2e.epoch(m.conv) !== undefined) void e2e.reconcile(m.conv).catch((err: unknown) => this.emit('error', { t: 'error', code: 'internal', message: `group change not committed: ${String(err)}`, retryable: true }));
  }

  private reconcileAll(): void {
    for (const conv of this.e2e?.conversations() ?? []) void this.e2e!.reconcile(conv).catch(() => undefined);
  }

  /** The node delivers a conversation in seq order; one below a seq already emitted can only come late. */
  private emitInOrder(m: Message, ptr: number): void {
    this.emit(this.order.place(m.conv, m.seq), m, ptr);
  }

  /** False if (conv, seq) was seen among the last SEEN_MAX messages. */
  private remember(key: string): boolean {
    if (this.seen.has(key)) return true;
    this.seen.add(key);
    if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value!);
    return false;
  }

  private scheduleAck(): void {
    if (this.opts.autoAck === false) return;
    if (this.ptr - this.acked >= ACK_EVERY) return this.flushAck();
    this.ackTimer ??= setTimeout(() => this.flushAck(), ACK_DELAY_MS);
  }

  /** Acks everything received so far (cumulative). Call it yourself when autoAck is off. */
  flushAck(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.ptr > this.acked && this.connected) {
      this.raw({ t: 'ack', ptr: this.ptr });
      this.acked = this.ptr;
    }
  }

  private onClose(ws: SocketLike, code: number, reason: string): void {
    if (ws !== this.ws) return;
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = undefined;
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.acked = Math.min(this.acked, this.ptr);
    for (const [k, w] of this.waiting) {
      w.reject(new ServerError('disconnected', `socket closed (${code}) before an answer; send again`, true));
      this.waiting.delete(k);
    }
    const url = this.url;
    if (ws !== this.welcomed) this.failed++;
    // The next node: a close of a working socket (the node stopping, or dying) and a refused connect alike.
    this.at = nextUrl(this.at, this.urls.length);
    const connecting = this.readyWaiter;
    const gaveUp = code === SIGNED_OUT_CLOSE || this.closedByUser || this.failed >= this.urls.length;
    if (connecting && gaveUp) {
      this.readyWaiter = undefined;
      connecting.reject(new ServerError('connect_failed', `socket to ${url} closed (${code}) ${reason}`.trim(), true));
    }
    this.emit('close', code, reason);
    if (code === SIGNED_OUT_CLOSE) {
      this.closedByUser = true; // the token is dead: reconnecting would be refused
      this.emit('signedOut');
      return;
    }
    if (this.closedByUser) return;
    // Without reconnect, only a connect() under way goes on to the next URL.
    if (this.opts.reconnect === false && !this.readyWaiter) return;
    const delay = backoffDelay(this.attempt++, this.opts.random, this.policy);
    this.retryTimer = setTimeout(() => { if (!this.closedByUser) this.open(); }, delay);
  }
}

function loadNodeWs(): SocketCtor {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('ws') as SocketCtor;
}
