import { ParleyError, errorFrame, rateLimited, toErrorBody, type ErrorBody } from '../protocol/errors.js';
import { parseConversationId, type ConversationId, type UserId } from '../protocol/ids.js';
import type { Message, ReceiptFrame, ReceiptStatus, SentFrame } from '../protocol/frames.js';
import { pack } from '../protocol/codec.js';
import { fenceKeys, type FenceKey, type ReceiptCursor } from '../store/store.js';
import { log } from '../log.js';
import type { ActorDeps } from './deps.js';
import type { ConvCursorStored, ConvErase, ConvDelivered, ConvFence, ConvHistory, ConvMembers, ConvMsg, ConvRead, ConvReceipts, ConvSend, ConvStored, ConvTyping, ConvVisible, GroupEvent, UserDeliver } from '../messages/entity-messages.js';
import { SEQ_BLOCK, SeqFence } from './seq-fence.js';
import type { Entity, EntityKind } from './region.js';
import { RecentWindow } from './recent-window.js';
import { allWatermark } from './receipts.js';
import { FanOut } from './fanout.js';
import { Sweeper } from './sweeper.js';
import { newIncarnation } from './incarnation.js';
import { mediaOf, refsForMessage } from '../media/media-access.js';
import { ReorderBuffer } from './reorder.js';
import { ERASED_USER } from '../gdpr/scrub.js';
import { MlsFence, type CommitTicket } from './mls-fence.js';
import type { MlsBody } from '../protocol/frames.js';

/**
 * Client ids of messages being stored, for resends meanwhile; once the sender is ticked the store's index
 * answers. Kept no longer: holding the last thousand cost a busy conversation up to ~75 KB, each entry
 * promoted to the old generation only to die there.
 */
const DEDUPE_MEMORY = 1_000;
/** Messages re-driven per turn after a takeover (the log above the fan-out mark, read a page at a time). */
const REDRIVE_PAGE = 500;
const HISTORY_DEFAULT = 50;
/** Delivered-only cursor moves are stored once per this period, in one write per moved cursor. */
const cursorStores = new Sweeper<Conversation>(1000, 100, (c) => (c.wake(), false));
const CONTENT_KINDS = new Set(['text', 'image', 'video', 'location']);

/** A message whose write is in flight, and what waits on it: its sender, and resends of its cid meanwhile. */
interface Writing {
  message: Message;
  packed: Uint8Array;
  recipients: UserId[];
  origin?: ConvSend;
  cidKey?: string;
  resends?: ConvSend[];
  /** The write itself: a delete's redact waits for its target's write, so it can't land first and miss it. */
  write: Promise<unknown>;
  /** It waited on the conversation being remembered (Store.rememberConversation) too. */
  remembers: boolean;
  /** An MLS commit: the fence moved when it was admitted, and is put back if it is not stored. */
  commit?: CommitTicket;
}

/**
 * One conversation (1:1 or group): the single writer of its log. It gives each accepted message the next
 * seq and stores it; the store's answer comes back into its mailbox, and stored messages are fanned out to
 * every member's user entity in seq order; the sender is ticked once every recipient holds it. It also keeps
 * the per-member receipt cursors and answers history.
 */
export class Conversation implements Entity<ConvMsg> {
  static kind(deps: ActorDeps): EntityKind<ConvMsg> {
    return { type: 'conv', load: (id) => Conversation.load(id, deps) };
  }

  private readonly recent = new RecentWindow();
  /** Client id → seq of the messages being stored (their resends wait on the write, in `writing`). */
  private readonly cids = new Map<string, number>();
  private readonly fanout: FanOut;
  /** This activation: store completions and timers it started are tagged with it, and only it acts on them. */
  private readonly inc = newIncarnation();
  /** Writes in flight, released in seq order whatever order the store completes them in. */
  private readonly writing = new ReorderBuffer<Writing, ErrorBody | undefined>();
  private deliveredAll = 0;
  private readAll = 0;

  private constructor(
    private readonly id: ConversationId,
    private readonly deps: ActorDeps,
    private readonly isGroup: boolean,
    private members: Map<UserId, string>,
    private readonly cursors: Map<UserId, ReceiptCursor>,
    /** The highest seq this activation handed out (or, before its first, where it starts). */
    private lastSeq: number,
    private lastTs: number,
    private readonly fence: SeqFence,
    /** The fan-out mark as stored (Store.getFanoutMark): every message at or below it reached its recipients. */
    private markStored: number,
  ) {
    const send = (user: UserId, deliver: UserDeliver) => this.deps.sharding.tell('user', user, deliver);
    this.fanout = new FanOut(send, deps.config.fanout.retryMs, () => this.deps.sharding.tell('conv', this.id, { t: 'fanout.retry', inc: this.inc }));
    this.released = lastSeq;
  }

  /** Every seq up to here was released by the reorder buffer: fanned out, or failed (or before this activation). */
  private released: number;
  /**
   * The seqs the re-drive at activation could not see: above the last stored then, up to where this activation
   * starts. A write of the last owner's still in flight may land there; its resend is fanned out again.
   */
  private unseen = { after: 0, upTo: 0 };
  /** This activation is remembered in the store (its first stored message waited for it), or being remembered. */
  private remembered = false;
  private remembering?: Promise<void>;

  /** The MLS fence: one commit per epoch, encrypted messages from the current one (src/actors/mls-fence.ts). */
  private mls = MlsFence.fromRecord(undefined, false);

  /** A 1:1 conversation one of whose users was erased: it answers nothing but not_found, and leaves no trace. */
  private closed = false;

  /** A conversation with writes in flight or deliveries not yet confirmed stays in memory to finish them. */
  canPassivate(): boolean {
    return this.closed || this.fanout.idle && this.writing.size === 0 && !this.fence.renewing;
  }

  /**
   * Once no write is in flight (their senders wait for the tick): deliveries not yet confirmed are re-driven
   * by the next owner from the log above the fan-out mark (this activation stays remembered until then).
   */
  canHandOff(): boolean {
    return this.closed || this.writing.size === 0 && !this.fence.renewing;
  }

  /**
   * Crashed or passivated: whoever waits on a write in flight or a fan-out is told to resend (same cid); the
   * completions still to come belong to this incarnation and change nothing in the next one.
   */
  dispose(): void {
    if (this.closed) return; // its data is gone: no cursor, mark, fence or remembrance is written again
    // Passivated with every delivery confirmed: once the mark is stored, nothing is left to re-drive.
    const clean = this.fanout.idle && this.writing.size === 0 && this.remembered;
    const interrupted = new ParleyError('internal', 'delivery was interrupted; send the message again (same cid)');
    for (const w of this.writing.clear()) {
      for (const m of w.origin ? [w.origin, ...(w.resends ?? [])] : w.resends ?? []) this.deps.gateway.send(m.origin, errorFrame(m, interrupted));
    }
    this.handBack();
    cursorStores.delete(this);
    // The mark first, while the fan-out still holds what is unconfirmed: the next activation re-drives from it.
    const mark = this.storeCursors();
    this.fanout.abandon();
    if (clean) {
      const { store } = this.deps;
      const { id } = this;
      const { epoch } = this.fence;
      mark.then(() => store.forgetConversation(id, epoch)).catch((err) => log('warn', 'conversation not forgotten (it is re-driven at the next start)', { conv: id, error: String(err) }));
    }
  }

  static async load(id: ConversationId, deps: ActorDeps): Promise<Conversation> {
    const parsed = parseConversationId(id);
    if (!parsed) throw new ParleyError('invalid', `not a conversation id: ${id}`);
    let members: Map<UserId, string>;
    if (parsed.kind === 'direct') {
      // An account being erased is gone already: its 1:1 conversations are being dropped, none starts again.
      const users = await Promise.all(parsed.users.map(async (u) => (await deps.store.getUser(u)) && !(await deps.store.getErasure(u))));
      if (users.some((u) => !u)) throw new ParleyError('not_found', 'no such user');
      members = new Map(parsed.users.map((u) => [u, 'member']));
    } else {
      // A group conversation starts empty; the group actor sends its members when it creates it.
      const g = await deps.store.getGroup(parsed.group);
      members = new Map(Object.entries(g?.members ?? {}));
    }
    // This activation owns the log from here: seqs start above every earlier activation's reservation
    // (their writes may still be in flight) and above the last stored seq (data from before fences).
    // Two round trips, each of independent reads (on Scylla every read is one).
    const [claim, stored, mark, cursors, epochRec] = await Promise.all([
      deps.store.claimEpoch(fenceKeys.conv(id)), deps.store.lastSeq(id), deps.store.getFanoutMark(id), deps.store.getCursors(id), deps.store.e2e.getGroupEpoch(id),
    ]);
    // The MLS epoch as stored; a commit that was being stored when the last activation stopped counts if it landed.
    const [last, pending] = await Promise.all([
      stored ? deps.store.getMessage(id, stored) : undefined,
      epochRec?.pending ? deps.store.getMessage(id, epochRec.pending.seq) : undefined,
    ]);
    const start = Math.max(claim.reserved, stored);
    const c = new Conversation(id, deps, parsed.kind === 'group', members, cursors, start, last?.ts ?? 0, new SeqFence(claim.epoch, start), mark ?? 0);
    c.mls = MlsFence.fromRecord(epochRec, pending !== undefined);
    if (c.isGroup) {
      c.deliveredAll = c.minCursor('delivered');
      c.readAll = c.minCursor('read');
    }
    // Senders were ticked when the log write landed: what the last owner had not fanned out when it stopped
    // (a crash, a node gone) goes out again now, before any new message, so recipients get the log in order.
    // A conversation from before marks counts as fanned out up to what every member has had delivered.
    const from = mark ?? c.minCursor('delivered');
    c.unseen = { after: stored, upTo: start };
    if (stored > from) await c.redrive(from);
    return c;
  }

  /**
   * Fans out again, as redeliveries (each user entity writes only what its devices lack), one page of the log
   * after `after`; a full page asks for the next in a later turn (`redrive`), so a long backlog never holds
   * the entity's first turn.
   */
  private async redrive(after: number): Promise<void> {
    const { store } = this.deps;
    const page = await store.getMessages(this.id, { after, limit: REDRIVE_PAGE });
    // An owner killed inside an append may have left a message without its client id (Scylla writes them one
    // after the other); its sender, never ticked, resends it, and that resend must find this seq.
    const senders = page.filter((m) => m.kind !== 'system' && m.from !== ERASED_USER);
    if (senders.length) await store.indexClientIds(this.id, senders.map((m) => ({ from: m.from, cid: m.cid, seq: m.seq })));
    for (const message of page) {
      this.fanout.start({ ...this.deliverOf(message, pack(message)), redelivery: true }, this.recipientsOf(message));
    }
    if (page.length === REDRIVE_PAGE) this.deps.sharding.tell('conv', this.id, { t: 'redrive', inc: this.inc, after: page[page.length - 1]!.seq });
    if (page.length) log('info', 'conversation re-drove its log above the fan-out mark', { conv: this.id, after, messages: page.length });
  }

  /**
   * Who a stored message goes to: the members who may see it (a member added later sees from its join), and
   * for a membership change, the users it names (a removed member hears it was removed).
   */
  private recipientsOf(message: Message): UserId[] {
    const out = new Set<UserId>();
    for (const u of this.members.keys()) if ((this.cursors.get(u)?.from ?? 0) <= message.seq) out.add(u);
    if (message.kind === 'system') {
      const e = message.body as Partial<GroupEvent> | undefined;
      for (const u of e?.users ?? []) out.add(u);
      if (e?.by) out.add(e.by);
      out.delete(ERASED_USER); // an erased member named in a system message: nobody to deliver to
    }
    return [...out];
  }

  /** From the cursor timer: a message into the mailbox; the cursors are stored in the entity's turn. */
  wake(): void {
    this.deps.sharding.tell('conv', this.id, { t: 'cursors.due', inc: this.inc });
  }

  /** The end of an actor turn: "…_all" watermarks once for every cursor move the turn made. */
  endTurn(): void {
    if (this.allAfter) this.advanceAll();
  }

  handle(msg: ConvMsg): Promise<void> | void {
    if (this.closed) {
      if (msg.t === 'send' || msg.t === 'history' || msg.t === 'receipts') throw new ParleyError('not_found', 'no such user');
      if (msg.t === 'erase' || msg.t === 'recover') return this.deps.sharding.reply(msg.reply, { ok: true, value: true });
      if (msg.t === 'visible') return this.deps.sharding.reply(msg.reply, { ok: true, value: false });
      return;
    }
    switch (msg.t) {
      case 'erase': return this.erase(msg);
      case 'send': return this.send(msg);
      case 'delivered': return this.delivered(msg);
      case 'read': return this.read(msg);
      case 'typing': return this.typing(msg);
      case 'history': return this.history(msg);
      case 'receipts': return this.receipts(msg);
      case 'members': return this.membersChanged(msg);
      case 'fanned': return this.confirmed(msg.user, msg.seqs);
      case 'redrive': if (msg.inc === this.inc) return this.redrive(msg.after); return;
      case 'recover': return this.deps.sharding.reply(msg.reply, { ok: true, value: true });
      case 'visible': return this.visible(msg);
      case 'stored': return this.stored(msg);
      case 'fanout.retry': if (msg.inc === this.inc) this.fanout.retry(); return;
      case 'fence': return this.fenced(msg);
      case 'cursors.due': if (msg.inc === this.inc) this.storeCursors(); return;
      case 'cursor.stored': if (msg.inc === this.inc) this.readStored(msg); return;
      case 'all.stored': if (msg.inc === this.inc) this.allStored(msg.delivered, msg.read); return;
    }
  }

  // ---- seqs: reserved per activation (src/actors/seq-fence.ts) ----

  private get fenceKey(): FenceKey {
    return fenceKeys.conv(this.id);
  }

  /**
   * The next seq. Out of reserved seqs (at the first send, or 500 sends within one renewal's round trip) it
   * waits for a reservation in this turn; a renewal halfway through a block runs in the background.
   */
  private nextSeq(): number | Promise<number> {
    if (this.fence.stale) throw this.staleError();
    if (!this.fence.covers(this.lastSeq + 1)) return this.reserveNow().then(() => this.nextSeq());
    const seq = ++this.lastSeq;
    const upTo = this.fence.renewal(seq);
    if (upTo !== undefined) {
      const { epoch } = this.fence;
      const tell = (outcome: ConvFence['outcome']) => this.deps.sharding.tell('conv', this.id, { t: 'fence', epoch, upTo, outcome });
      this.deps.store.reserve(this.fenceKey, epoch, upTo).then(() => tell('reserved'), (err: unknown) => {
        if (!isStale(err)) log('warn', 'conversation seqs not reserved; retried with the next message', { conv: this.id, error: String(err) });
        tell(isStale(err) ? 'stale' : 'failed');
      });
    }
    return seq;
  }

  private async reserveNow(): Promise<void> {
    const upTo = this.lastSeq + SEQ_BLOCK;
    try {
      await this.deps.store.reserve(this.fenceKey, this.fence.epoch, upTo);
    } catch (err) {
      if (isStale(err)) this.superseded();
      throw err;
    }
    this.fence.reservedUpTo(upTo);
  }

  /** A background reservation ended; one started by an earlier activation changes nothing. */
  private fenced(m: ConvFence): void {
    if (m.epoch !== this.fence.epoch) return;
    this.fence.renewing = false;
    if (m.outcome === 'reserved') this.fence.reservedUpTo(m.upTo);
    else if (m.outcome === 'stale') this.superseded();
  }

  /**
   * Another activation (a restart here, or another node on the same store) claimed the conversation: this one
   * hands out no more seqs, and its senders are told to resend, which reaches the owner. It stays until it
   * passivates; what it stored stays, at seqs no one else uses.
   */
  private superseded(): void {
    if (this.fence.stale) return;
    this.fence.stale = true;
    log('warn', 'conversation taken over by a newer activation: no more seqs here', { conv: this.id, epoch: this.fence.epoch, lastSeq: this.lastSeq });
  }

  private staleError(): ParleyError {
    return new ParleyError('stale_owner', 'this conversation moved to a newer owner; send the message again (same cid)');
  }

  /** A clean stop hands back the seqs it reserved and did not use, so seqs stay dense across it. */
  private handBack(): void {
    const { fence } = this;
    if (fence.stale || fence.reserved <= this.lastSeq) return;
    this.deps.store.release(this.fenceKey, fence.epoch, this.lastSeq).catch((err: unknown) => {
      if (!isStale(err)) log('warn', 'unused conversation seqs not handed back (a gap follows)', { conv: this.id, error: String(err) });
    });
  }

  // ---- messages ----

  private async send(m: ConvSend): Promise<void> {
    if (!this.members.has(m.from)) throw new ParleyError('forbidden', 'you are not a member of this conversation');
    const key = `${m.from}\u0000${m.cid}`;
    // Still being stored: the resend is answered with the original's tick (or its failure).
    const storing = this.cids.get(key);
    const w = storing === undefined ? undefined : this.writing.get(storing);
    if (w) return void (w.resends ??= []).push(m);
    // Before the seq: a refused send takes none. A resend of a stored message fans it out again, so it costs too.
    this.charge(m.from, this.members.size);
    // A first attempt can't have been stored before: no read. Anything else is looked up (a resend after a
    // reconnect, or a client that doesn't say): this read is the dedupe's whole cost.
    const stored = m.fresh ? undefined : await this.deps.store.seqForClientId(this.id, m.from, m.cid);
    if (stored !== undefined) {
      // Stored before: its tick again. Its fan-out is confirmed, pending, or re-driven — unless its write was
      // in flight when the last owner died and landed after this activation re-drove the log: that one goes out now.
      const prior = await this.deps.store.getMessage(this.id, stored);
      if (!prior) {
        // At or below the fan-out mark it was stored and delivered: gone since by retention, so it is ticked again.
        if (stored <= this.markStored) return this.tick(m, stored, this.lastTs, true);
        throw new ParleyError('store_unavailable', 'the message is being stored; send it again');
      }
      this.tick(m, stored, prior.ts, true);
      if (stored > this.unseen.after && stored <= this.unseen.upTo) {
        this.fanout.start({ ...this.deliverOf(prior, pack(prior)), redelivery: true }, this.recipientsOf(prior));
      }
      return;
    }
    if (m.target !== undefined) await this.checkTarget(m);
    if (m.replyTo !== undefined && (m.replyTo > this.lastSeq || m.replyTo < (this.cursors.get(m.from)?.from ?? 1))) {
      throw new ParleyError('not_found', `no message ${m.replyTo} in this conversation to reply to`);
    }

    const commit = m.kind === 'mls' ? this.mls.admit(m.body as MlsBody, this.members.keys()) : undefined;
    let seq: number;
    try {
      const next = this.nextSeq();
      seq = typeof next === 'number' ? next : await next;
      // Before the append: a restart finds the commit pending and looks for it in the log.
      if (commit) await this.deps.store.e2e.putGroupEpoch(this.id, commit.record(seq));
    } catch (err) {
      commit?.undo();
      throw err;
    }
    const ts = (this.lastTs = Math.max(Date.now(), this.lastTs));
    const message: Message = { conv: this.id, seq, from: m.from, dev: m.dev, cid: m.cid, kind: m.kind, ts };
    if (m.body !== undefined) message.body = m.body;
    if (m.replyTo !== undefined) message.reply = m.replyTo;
    if (m.target !== undefined) message.target = m.target;
    this.recent.add(seq, m.from, m.kind);
    if (m.kind === 'delete') this.recent.markDeleted(m.target!);
    this.append(message, [...this.members.keys()], m, key, commit);
  }

  /**
   * Takes `recipients` from the sender's fan-out budget (node-wide, per sender): one sender can't drive a big
   * group faster than PARLEY_FANOUT_PER_S recipients a second. A cost over the burst is charged as the burst,
   * so even the largest group can be written to.
   */
  private charge(sender: UserId, recipients: number): void {
    const { budgets, config } = this.deps;
    const wait = budgets.fanout.take(sender, Date.now(), Math.min(recipients, config.shaping.fanout.burst));
    if (wait) throw rateLimited(`over your fan-out budget: this message goes to ${recipients} recipients; not stored`, wait);
  }

  /**
   * Stores; the outcome comes back into the mailbox (`stored`), where the fan-out starts in seq order and the
   * sender is ticked once every recipient's inboxes hold it. The actor goes on with the next message meanwhile.
   */
  private append(message: Message, recipients: UserId[], origin?: ConvSend, cidKey?: string, commit?: CommitTicket): void {
    const { store, sharding } = this.deps;
    const packed = pack(message);
    // Who may fetch the media it names is stored with it (not after: a crash can't leave a message whose
    // media its readers can't fetch; if that write fails, so does the send).
    const media = mediaOf(message.kind, message.body);
    const stored = store.appendMessage(message, packed, media ? { media, refs: refsForMessage(this.id, message.seq) } : undefined, this.fence.epoch);
    let write: Promise<unknown> = stored;
    if (message.kind === 'delete') {
      // A target still being written is redacted once its write is done (on Scylla the redact could land first
      // and find nothing); a target whose write failed has nothing to redact.
      const target = this.writing.get(message.target!)?.write;
      const redact = () => store.redactMessage(this.id, message.target!);
      write = Promise.all([stored, target ? target.then(redact, () => undefined) : redact()]);
    }
    // Until this activation is remembered, no tick may go: after a crash nobody would re-drive the message.
    const remembers = !this.remembered;
    // A 1:1 conversation's users are indexed with the remembrance (once per activation): export and erasure find it.
    if (remembers) write = Promise.all([write, (this.remembering ??= this.remember())]);
    this.writing.add(message.seq, { message, packed, recipients, origin, cidKey, write, remembers, ...(commit ? { commit } : {}) });
    if (cidKey) this.rememberCid(cidKey, message.seq);
    const { id, inc } = this;
    const seq = message.seq;
    const epoch = this.fence.epoch;
    write.then(
      () => sharding.tell('conv', id, { t: 'stored', inc, seq }),
      (err: unknown) => {
        // Refused as stale (LMDB checks the epoch in the commit): this activation learns it through its mailbox.
        if (isStale(err)) sharding.tell('conv', id, { t: 'fence', epoch, upTo: seq, outcome: 'stale' });
        sharding.tell('conv', id, { t: 'stored', inc, seq, error: toErrorBody(err) });
      },
    );
  }

  private remember(): Promise<void> {
    const { store } = this.deps;
    const remembered = store.rememberConversation(this.id, this.fence.epoch);
    if (this.isGroup) return remembered;
    return Promise.all([remembered, store.noteDirectConversation(this.id, [...this.members.keys()])]).then(() => undefined);
  }

  /**
   * An erasure of `user` (src/gdpr/erasure.ts): once the writes in flight have landed it is answered, so the
   * erasure walks a log nothing more is written to for the user; nothing waits for the user's deliveries from
   * here on. A 1:1 conversation closes: its data is dropped next, and it never writes again.
   */
  private async erase(m: ConvErase): Promise<void> {
    await Promise.allSettled(this.writing.pending().map((w) => w.write));
    this.fanout.exclude(m.user);
    this.unstored?.delete(m.user);
    if (!this.isGroup) {
      this.closed = true;
      this.fanout.abandon();
      cursorStores.delete(this);
    } else {
      this.members.delete(m.user);
      this.cursors.delete(m.user);
      const rec = this.mls.erase(m.user, ERASED_USER);
      if (rec) await this.deps.store.e2e.putGroupEpoch(this.id, rec);
    }
    this.deps.sharding.reply(m.reply, { ok: true, value: true });
  }

  /**
   * A write came back: what it releases, in seq order, is ticked and fanned out (or fails) now. Another
   * incarnation's: nothing. The tick needs nothing but the log write: the fan-out goes on, retried until
   * every recipient confirms, and the fan-out mark (stored about once a second) lets a next owner re-drive it.
   */
  private stored(m: ConvStored): void {
    if (m.inc !== this.inc) return;
    for (const { value: w, outcome: error } of this.writing.settle(m.seq, m.error)) {
      const { message, origin, cidKey } = w;
      this.released = message.seq;
      if (cidKey) this.cids.delete(cidKey);
      if (w.remembers) {
        this.remembering = undefined;
        if (!error) this.remembered = true; // else the next message remembers it again
      }
      if (w.commit) this.commitSettled(w.commit, !error);
      if (error) {
        log('warn', 'message not stored', { conv: this.id, seq: message.seq, error: error.message });
        const err = new ParleyError(error.code, error.message);
        for (const s of origin ? [origin, ...(w.resends ?? [])] : w.resends ?? []) this.deps.gateway.send(s.origin, errorFrame(s, err));
        continue;
      }
      this.deps.analytics?.message(message.kind, this.isGroup);
      if (origin) this.tick(origin, message.seq, message.ts, false);
      for (const r of w.resends ?? []) this.tick(r, message.seq, message.ts, true);
      this.fanout.start(this.deliverOf(message, w.packed), w.recipients);
    }
  }

  /** A commit's append landed (the epoch record loses its pending part) or failed (the fence goes back). */
  private commitSettled(commit: CommitTicket, stored: boolean): void {
    if (!stored) return commit.undo();
    this.deps.store.e2e.putGroupEpoch(this.id, commit.done)
      .catch((err) => log('warn', 'group epoch not stored (the pending commit is found in the log at the next start)', { conv: this.id, error: String(err) }));
  }

  /** The sender's tick: the message is in the log. A later resend of its cid is found in the store's index. */
  private tick(m: ConvSend, seq: number, ts: number, dup: boolean): void {
    const sent: SentFrame = { t: 'sent', cid: m.cid, conv: this.id, seq, ts };
    if (m.rid) sent.rid = m.rid;
    if (dup) sent.dup = true;
    this.deps.gateway.send(m.origin, sent);
  }

  /** Recipients confirmed: the fan-out mark may move, and is stored with the cursors (about once a second). */
  private confirmed(user: UserId, seqs: number[]): void {
    this.fanout.confirm(user, seqs);
    cursorStores.add(this);
  }

  private deliverOf(m: Message, packed: Uint8Array) {
    return { t: 'deliver' as const, conv: this.id, seq: m.seq, from: m.from, dev: m.dev, kind: m.kind, packed, ts: m.ts };
  }

  private rememberCid(key: string, seq: number): void {
    this.cids.set(key, seq);
    if (this.cids.size > DEDUPE_MEMORY) this.cids.delete(this.cids.keys().next().value!);
  }

  /** Edits and deletes are the sender's own; reactions may target anyone's message. */
  private async checkTarget(m: ConvSend): Promise<void> {
    const t = m.target!;
    const visible = t >= (this.cursors.get(m.from)?.from ?? 0);
    const target = visible && t <= this.lastSeq ? this.recent.get(t) ?? toTarget(await this.deps.store.getMessage(this.id, t)) : undefined;
    if (!target || target.deleted) throw new ParleyError('not_found', `no message ${t} in this conversation`);
    if (!CONTENT_KINDS.has(target.kind)) throw new ParleyError('invalid', `message ${t} is a ${target.kind} and can't be the target of a ${m.kind}`);
    if ((m.kind === 'edit' || m.kind === 'delete') && target.from !== m.from) {
      throw new ParleyError('forbidden', `only the sender of message ${t} may ${m.kind} it`);
    }
  }

  // ---- receipts ----

  private delivered(m: ConvDelivered): void {
    if (m.fanned) this.confirmed(m.user, m.fanned);
    this.advance(m.user, Math.min(m.upTo, this.lastSeq), false);
  }

  private read(m: ConvRead): void {
    if (!this.members.has(m.user)) throw new ParleyError('forbidden', 'you are not a member of this conversation');
    this.advance(m.user, Math.min(m.seq, this.lastSeq), true);
  }

  private advance(user: UserId, upTo: number, read: boolean): void {
    if (!this.members.has(user)) return;
    const c = this.cursors.get(user) ?? { delivered: 0, read: 0 };
    const next: ReceiptCursor = { delivered: Math.max(c.delivered, upTo), read: read ? Math.max(c.read, upTo) : c.read };
    if (next.delivered === c.delivered && next.read === c.read) return;
    if (c.from !== undefined) next.from = c.from;
    this.cursors.set(user, next);
    let stored: Promise<unknown> | undefined;
    if (next.read > c.read) {
      // A read receipt goes out once the cursor is written, so one a sender saw survives a crash: nothing else
      // would say it again. (A failed write is logged and the receipt still goes; the next move writes it.)
      // The write's end comes back as a message: an activation that crashed meanwhile sends nothing.
      this.unstored?.delete(user);
      stored = this.deps.store.setCursor(this.id, user, next).catch((err) => log('warn', 'cursor not stored', { conv: this.id, error: String(err) }));
      const { id, inc, deps: { sharding } } = this;
      const moved = { t: 'cursor.stored' as const, inc, user, read: [c.read, next.read] as [number, number], ...(next.delivered > c.delivered ? { delivered: [c.delivered, next.delivered] as [number, number] } : {}) };
      void stored.then(() => sharding.tell('conv', id, moved));
    } else {
      // Delivered only: the receipt goes at once and the cursor is stored within a second, one write for all the
      // acks meanwhile. After a node failure the stored cursor may be that much behind the receipts sent; the
      // next ack moves it past (receipts are watermarks), and an inbox redelivery it lets through is dropped by
      // the client as a repeated (conv, seq).
      if (!this.unstored) {
        this.unstored = new Set();
        cursorStores.add(this);
      }
      this.unstored.add(user);
      this.tellSenders(user, 'delivered', c.delivered, next.delivered);
    }
    if (this.isGroup) {
      this.allAfter ??= [];
      if (stored) this.allAfter.push(stored);
    }
  }

  private readStored(m: ConvCursorStored): void {
    if (m.delivered) this.tellSenders(m.user, 'delivered', m.delivered[0], m.delivered[1]);
    this.tellSenders(m.user, 'read', m.read[0], m.read[1]);
  }

  private allStored(delivered: [number, number] | undefined, read: [number, number] | undefined): void {
    if (delivered) this.tellSenders(undefined, 'delivered_all', delivered[0], delivered[1]);
    if (read) this.tellSenders(undefined, 'read_all', read[0], read[1]);
  }

  private unstored?: Set<UserId>;
  /** Stores the delivered cursors that moved and the fan-out mark if it did; resolves once the mark is stored. */
  private storeCursors(): Promise<void> {
    const mark = this.fanout.mark(this.released);
    let marked = Promise.resolve();
    if (mark > this.markStored) {
      this.markStored = mark;
      marked = this.deps.store.setFanoutMark(this.id, mark);
      marked.catch((err) => log('warn', 'fan-out mark not stored', { conv: this.id, error: String(err) }));
      // Transient history: what every recipient device has (acked, or in its inbox) leaves the log.
      if (this.deps.config.retention.mode === 'transient') {
        const { store } = this.deps;
        const { id } = this;
        marked.then(() => store.deleteMessagesUpTo(id, mark))
          .catch((err) => log('warn', 'delivered messages not deleted (transient retention); the next mark does it', { conv: id, error: String(err) }));
      }
    }
    if (!this.unstored) return marked;
    for (const user of this.unstored) {
      this.deps.store.setCursor(this.id, user, this.cursors.get(user)!).catch((err) => log('warn', 'cursor not stored', { conv: this.id, error: String(err) }));
    }
    this.unstored = undefined;
    return marked;
  }

  /** The read-cursor writes "…_all" receipts wait for: those of the cursor moves since the last advanceAll. */
  private allAfter?: Promise<unknown>[];

  /**
   * "Delivered/read by all" is recomputed once for all the cursor moves an actor turn handled, not once per
   * move: each pass reads every member's cursor, so per move a group of n would cost n² per message.
   */
  private advanceAll(): void {
    const after = this.allAfter!;
    this.allAfter = undefined;
    const stored = after.length === 0 ? undefined : after.length === 1 ? after[0]! : Promise.all(after);
    const senderOf = (s: number) => this.recent.get(s)?.from;
    const d = allWatermark(this.deliveredAll, (u) => this.cursors.get(u)?.delivered ?? 0, this.members.keys(), senderOf, this.lastSeq);
    const r = allWatermark(this.readAll, (u) => this.cursors.get(u)?.read ?? 0, this.members.keys(), senderOf, this.lastSeq);
    const [d0, r0] = [this.deliveredAll, this.readAll];
    this.deliveredAll = d;
    this.readAll = r;
    const delivered = d > d0 ? [d0, d] as [number, number] : undefined;
    const read = r > r0 ? [r0, r] as [number, number] : undefined;
    if (!delivered && !read) return;
    if (!stored) return this.allStored(delivered, read);
    // After the read cursors they cover are written; the write's end comes back as a message.
    const { id, inc, deps: { sharding } } = this;
    void stored.then(() => sharding.tell('conv', id, { t: 'all.stored', inc, ...(delivered ? { delivered } : {}), ...(read ? { read } : {}) }));
  }

  /**
   * A receipt goes to the senders of the messages it newly covers (and, for reads, to the reader's other
   * devices). Beyond the recent window, every member is told rather than the store read. In groups only the
   * "…_all" watermarks go to senders.
   */
  private tellSenders(user: UserId | undefined, status: ReceiptStatus, after: number, upTo: number): void {
    const frame: ReceiptFrame = { t: 'receipt', conv: this.id, status, upTo };
    if (user) frame.user = user;
    if (this.isGroup && user) {
      // A member's own receipt would be n frames per message, n² per round of a group: its senders get the
      // "…_all" watermarks and ask for per-member detail (`receipts`). A read still reaches the reader's devices.
      if (status === 'read') this.deps.pubsub.publish(user, frame);
      return;
    }
    const senders = this.recent.sendersIn(after, upTo) ?? new Set(this.members.keys());
    if (user) {
      senders.delete(user);
      if (status === 'read') senders.add(user);
    }
    for (const s of senders) this.deps.pubsub.publish(s, frame);
  }

  private minCursor(kind: keyof ReceiptCursor): number {
    let min = Infinity;
    for (const u of this.members.keys()) min = Math.min(min, this.cursors.get(u)?.[kind] ?? 0);
    return min === Infinity ? 0 : min;
  }

  /**
   * Every member's cursors, as this entity holds them (delivered ones may be ahead of the store), and in a
   * group the "…_all" watermarks its senders are pushed.
   */
  private receipts(m: ConvReceipts): void {
    if (!this.members.has(m.user)) throw new ParleyError('forbidden', 'you are not a member of this conversation');
    const members: Record<UserId, ReceiptCursor> = {};
    for (const u of this.members.keys()) {
      const c = this.cursors.get(u);
      members[u] = { delivered: c?.delivered ?? 0, read: c?.read ?? 0 };
    }
    const all = this.isGroup ? { all: { delivered: this.deliveredAll, read: this.readAll } } : {};
    this.deps.sharding.reply(m.reply, { ok: true, value: { conv: this.id, members, ...all } });
  }

  // ---- the rest ----

  private visible(m: ConvVisible): void {
    const ok = this.members.has(m.user) && m.seq >= (this.cursors.get(m.user)?.from ?? 0) && m.seq <= this.lastSeq;
    this.deps.sharding.reply(m.reply, { ok: true, value: ok });
  }

  /** Over the sender's fan-out budget a typing frame is dropped: it is transient, and nobody waits for it. */
  private typing(m: ConvTyping): void {
    if (!this.members.has(m.user)) return;
    const { budgets, config } = this.deps;
    if (budgets.fanout.take(m.user, Date.now(), Math.min(this.members.size - 1, config.shaping.fanout.burst))) return;
    const frame = { t: 'typing' as const, conv: this.id, user: m.user, on: m.on };
    for (const u of this.members.keys()) if (u !== m.user) this.deps.pubsub.publish(u, frame);
  }

  private async history(m: ConvHistory): Promise<void> {
    if (!this.members.has(m.user)) throw new ParleyError('forbidden', 'you are not a member of this conversation');
    const messages = await this.deps.store.getMessages(this.id, { ...m.q, limit: m.q.limit || HISTORY_DEFAULT });
    const from = this.cursors.get(m.user)?.from;
    // A member added to a group sees from the message that says so on, nothing from before it joined.
    this.deps.sharding.reply(m.reply, { ok: true, value: from ? messages.filter((x) => x.seq >= from) : messages });
  }

  /** A group's membership changed (already stored by the group): log it as a system message and fan it out. */
  private membersChanged(m: ConvMembers): void | Promise<void> {
    this.members = new Map(Object.entries(m.members));
    const next = this.nextSeq();
    if (typeof next === 'number') return this.logMembers(m, next);
    return next.then((seq) => this.logMembers(m, seq));
  }

  private logMembers(m: ConvMembers, seq: number): void {
    const ts = (this.lastTs = Math.max(Date.now(), this.lastTs));
    const message: Message = { conv: this.id, seq, from: m.event.by, dev: '', cid: `sys-${seq}`, kind: 'system', ts, body: { ...m.event } };
    this.recent.add(seq, m.event.by, 'system');
    if (m.event.event === 'added') for (const u of m.event.users ?? []) this.joined(u, seq);
    this.append(message, [...new Set([...this.members.keys(), ...m.notify])]);
  }

  /**
   * A member added at `seq` sees from there on: its cursors start just below (so "…_all" receipts don't wait
   * for it on messages it will never get), and history and targets before it are not its to see.
   */
  private joined(user: UserId, seq: number): void {
    const cursor: ReceiptCursor = { delivered: seq - 1, read: seq - 1, from: seq };
    this.cursors.set(user, cursor);
    this.unstored?.delete(user);
    this.deps.store.setCursor(this.id, user, cursor).catch((err) => log('warn', 'cursor not stored', { conv: this.id, error: String(err) }));
  }
}

/** A stored message as an edit/delete/reaction target; a redacted one (deleted for everyone) has no body. */
const isStale = (err: unknown): boolean => err instanceof ParleyError && err.code === 'stale_owner';

function toTarget(m: Message | undefined): { from: UserId; kind: Message['kind']; deleted: boolean } | undefined {
  return m && { from: m.from, kind: m.kind, deleted: CONTENT_KINDS.has(m.kind) && m.body === undefined };
}
