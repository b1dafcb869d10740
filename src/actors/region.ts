import { dispatch, spawn, spawnPersistent, stop, type ActorContext, type ActorSystemRef, type Ref, type SupervisionContext } from 'nact';
import { ParleyError } from '../protocol/errors.js';
import { log } from '../log.js';
import type { EntityType } from '../messages/entity-messages.js';
import type { Envelope } from '../messages/seam.js';
import type { FaultInjector } from '../ops/faults.js';
import { CRASH_LOOP, CrashLog, EventWindow, TopN, type CrashRecord, type EntityRow, type LifecycleEvent } from './supervision-view.js';

/** One live entity: its state and behaviour. Thrown ParleyErrors are answered; anything else crashes it. */
export interface Entity<M> {
  handle(msg: M): Promise<void> | void;
  /** False while stopping would lose something only memory holds (e.g. attached sockets). */
  canPassivate?(): boolean;
  /**
   * False while it can't move to another node yet (a write in flight whose outcome only it can act on). Its
   * sockets and subscribers follow it by themselves; without this, canPassivate decides.
   */
  canHandOff?(): boolean;
  /** Releases timers and answers work in progress: the entity crashed or is being passivated. */
  dispose?(): void;
  /** Called after each actor turn (up to THROUGHPUT messages): what the turn batched goes out. */
  endTurn?(): void;
}

export interface EntityKind<M> {
  readonly type: EntityType;
  /** Rebuilds an entity from the store: on first use, after passivation and after a crash. */
  load(id: string): Promise<Entity<M>>;
  /** Called when an entity crashed, before it restarts empty (e.g. tell its sockets to resync). */
  onCrash?(id: string): void;
}

/**
 * An event-sourced kind: its entities journal each change through nact's persistence engine (in the node's
 * store) and, on restart, rebuild from the latest snapshot plus the events after it.
 */
export interface JournaledKind<M> extends EntityKind<M> {
  journal: { snapshotEvery: number; create(id: string): JournaledEntity<M> };
}

export interface JournaledEntity<M> extends Entity<M> {
  /** Applies one journaled event: on replay, and after the entity persisted it. */
  apply(event: unknown): void;
  snapshot(): unknown;
  restore(snapshot: unknown): void;
  /** Set by the region before each message: writes an event to the journal, durably. */
  persist?: (event: unknown) => Promise<void>;
}

const isJournaled = <M>(k: EntityKind<M>): k is JournaledKind<M> => 'journal' in k;

export interface RegionStats { type: EntityType; active: number; spawned: number; passivated: number; crashes: number; stopped: number }

/** A region as operators see it (Region.view): bounded, whatever the number of entities. */
export interface RegionView extends RegionStats {
  /** Entities whose first message waits for their state to load from the store. */
  loading: number;
  mailbox: { total: number; max: number };
  last: ReturnType<EventWindow['read']>;
  /** The largest mailboxes, largest first. */
  busiest: EntityRow[];
  /** Entities with CRASH_LOOP or more crashes in the supervisor's window: a poison message, or a broken state. */
  crashLooping: EntityRow[];
  /** The last crashes, newest first: the reason and the message type that crashed it. */
  lastCrashes: CrashRecord[];
}

/** How a region answers a message it could not process: an error reply to the asker or the socket. */
export type ErrorAnswer = (msg: Envelope, err: unknown) => void;

const CRASH_WINDOW_MS = 10_000;
const MAX_CRASHES_IN_WINDOW = 5;
/** Messages one actor turn may take before yielding to the other actors (Akka's dispatcher throughput). */
const THROUGHPUT = 64;
/** nact gives each actor a fresh no-op closure unless it is handed one (~56 bytes of every connected user). */
const AFTER_STOP = (): void => undefined;

/**
 * A region owns the entities of one kind on this node (Akka's ShardRegion): it spawns an entity's actor on
 * its first message, under one supervisor actor per kind, and stops it when idle (passivation) so memory
 * follows active users, not all users. A crash answers the failed message with an error and restarts the
 * entity empty; its next message reloads it from the store. Five crashes in ten seconds stop it instead,
 * until a later message spawns it afresh.
 *
 * Messages queue here, per entity, and the entity's nact actor is sent one token (its own entry: no lookup to
 * find it again) while any wait; one actor turn then handles up to THROUGHPUT of them in order, one at a
 * time. A nact dispatch costs an event loop turn and a fresh context per message, which at eight hops a chat
 * message was the largest single cost of the message path (bench/micro/hot-path.ts); the actor's semantics
 * are unchanged.
 */
export class Region<M extends Envelope> {
  private readonly supervisor: Ref<never>;
  private readonly live = new Map<string, Live<M>>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly stats: RegionStats;
  private readonly events = new EventWindow();
  private readonly crashLog = new CrashLog();

  constructor(
    system: ActorSystemRef,
    private readonly kind: EntityKind<M>,
    private readonly answerError: ErrorAnswer,
    private readonly passivateAfterMs: number,
    private readonly faults?: FaultInjector,
  ) {
    this.supervisor = spawn(system, (s: undefined) => s, kind.type) as Ref<never>;
    this.stats = { type: kind.type, active: 0, spawned: 0, passivated: 0, crashes: 0, stopped: 0 };
    this.sweeper = setInterval(() => this.passivateIdle(), Math.max(50, Math.min(passivateAfterMs / 2, 30_000)));
    this.sweeper.unref();
  }

  tell(id: string, msg: M): void {
    const name = actorName(id);
    let e = this.live.get(name);
    if (!e) {
      const now = Date.now();
      e = new Live<M>(id, now);
      e.ref = this.spawnEntity(name, e);
      this.live.set(name, e);
      this.count('spawned', now);
    }
    e.lastUsed = Date.now();
    if (e.queue) e.queue.push(msg);
    else e.queue = [msg];
    if (!e.scheduled) {
      e.scheduled = true;
      dispatch(e.ref, e);
    }
  }

  snapshot(): RegionStats & { ids: string[] } {
    const ids: string[] = [];
    for (const e of this.live.values()) if (ids.push(e.id) >= 1000) break;
    return { ...this.stats, active: this.live.size, ids };
  }

  /** The supervision view (bounded): aggregates, the `top` busiest and crash-looping entities, the last crashes. */
  view(top: number, now = Date.now()): RegionView {
    let total = 0;
    let max = 0;
    let loading = 0;
    const busiest = new TopN<EntityRow>(top);
    const looping = new TopN<EntityRow>(top);
    for (const e of this.live.values()) {
      const mailbox = e.queue?.length ?? 0;
      total += mailbox;
      if (mailbox > max) max = mailbox;
      if (e.scheduled && !e.entity) loading++;
      const recent = e.crashes?.filter((at) => now - at < CRASH_WINDOW_MS).length ?? 0;
      const row = (): EntityRow => ({
        id: e.id, state: recent >= CRASH_LOOP ? 'crashing' : e.entity ? 'active' : 'loading',
        mailbox, ageMs: now - e.since, idleMs: now - e.lastUsed, recentCrashes: recent,
      });
      if (mailbox > 0) busiest.offer(mailbox, row);
      if (recent >= CRASH_LOOP) looping.offer(recent, row);
    }
    return {
      ...this.stats, active: this.live.size, loading, mailbox: { total, max }, last: this.events.read(now),
      busiest: busiest.get(), crashLooping: looping.get(), lastCrashes: this.crashLog.recent(top),
    };
  }

  private count(event: LifecycleEvent, now = Date.now()): void {
    this.events.add(event, now);
    if (event === 'crashed') this.stats.crashes++;
    else this.stats[event]++;
  }

  get size(): number {
    return this.live.size;
  }

  isLive(id: string): boolean {
    return this.live.has(actorName(id));
  }

  forEachId(f: (id: string) => void): void {
    for (const e of this.live.values()) f(e.id);
  }

  /** Messages sent to this region's entities and not yet handled. */
  inFlight(): number {
    let n = 0;
    for (const e of this.live.values()) n += e.queue?.length ?? 0;
    return n;
  }

  /** Every live entity of this region gets `msg` (a node left: each drops its sockets there). */
  tellEach(msg: M): void {
    for (const e of [...this.live.values()]) this.tell(e.id, msg);
  }

  /**
   * Stops the entities `which` selects (their shard goes to another node): each once it has nothing in hand
   * or queued and may passivate (no write or delivery in flight), and any still running at `deadline`
   * regardless (as a crash would: whoever waits on them is told to resend). Nothing new reaches them
   * meanwhile: sharding holds their messages. Resolves with how many stopped.
   */
  async handOff(which: (id: string) => boolean, deadline: number): Promise<number> {
    let stopped = 0;
    for (;;) {
      let left = 0;
      const force = Date.now() >= deadline;
      for (const [name, e] of this.live) {
        if (!which(e.id)) continue;
        if (!force && (e.scheduled || !handOffReady(e.entity))) { left++; continue; }
        this.stopEntity(name, e);
        stopped++;
      }
      if (left === 0) return stopped;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private stopEntity(name: string, e: Live<M>): void {
    e.entity?.dispose?.();
    this.forget(name, e);
    stop(e.ref);
    this.count('passivated');
  }

  /** Out of the region: a token of its still in flight finds it gone, whoever spawns under its name next. */
  private forget(name: string, e: Live<M>): void {
    e.gone = true;
    this.live.delete(name);
  }

  stopAll(): void {
    clearInterval(this.sweeper);
    for (const e of this.live.values()) {
      e.entity?.dispose?.();
      e.gone = true;
      stop(e.ref);
    }
    this.live.clear();
  }

  /**
   * One handler and one crash policy for the whole region, shared by its actors (a closure pair per entity
   * costs ~170 bytes of every connected user); the actor's name leads back to its entry. A turn runs
   * synchronously while its handlers do, and goes on asynchronously from the first that returns a promise
   * (or a load): most messages are handled without a promise at all.
   */
  private readonly handleToken = (state: Entity<M> | undefined, msg: unknown, ctx: Ctx): Step<M> => {
    const { kind } = this;
    if (ctx.recovering && isJournaled(kind)) {
      // Replaying the journal: `msg` is a stored event, not a token.
      const live = this.live.get(ctx.name);
      if (!live) return state;
      const e = (state as JournaledEntity<M> | undefined) ?? kind.journal.create(live.id);
      e.apply(msg);
      return e;
    }
    const live = msg as Live<M>;
    if (live.gone) return state; // stopped meanwhile
    return this.turn(live, state, ctx, 0);
  };

  /** Handles up to THROUGHPUT queued messages from the `n`th of this turn on, one at a time, in order. */
  private turn(live: Live<M>, entity: Entity<M> | undefined, ctx: Ctx, n: number): Step<M> {
    const queue = live.queue ?? [];
    for (; n < THROUGHPUT && queue.length > 0; n++) {
      const m = queue[0]!;
      let done: Promise<void> | void;
      try {
        this.faults?.strike(this.kind.type, live.id);
        if (!entity) {
          const { kind } = this;
          if (!isJournaled(kind)) return this.loadThenHandle(live, m, ctx, n, queue);
          entity = kind.journal.create(live.id);
        }
        done = this.handleOne(live, entity, m, ctx);
      } catch (err) {
        this.handled(queue, live, m, err);
        continue;
      }
      if (done) return this.afterHandled(done, live, entity, m, ctx, n, queue);
      queue.shift(); // handled: no longer in flight
    }
    entity?.endTurn?.();
    // More queued (or queued meanwhile): one more token, so other actors get their turn in between.
    if (queue.length > 0) dispatch(live.ref, live);
    else {
      live.scheduled = false;
      live.queue = undefined; // an idle entity keeps no buffer
    }
    return entity;
  }

  private handleOne(live: Live<M>, entity: Entity<M>, m: M, ctx: Ctx): Promise<void> | void {
    if (isJournaled(this.kind)) (entity as JournaledEntity<M>).persist = ctx.persist;
    live.entity = entity;
    return entity.handle(m);
  }

  /** The entity's state comes from the store first; the message that needed it is handled next, then the turn goes on. */
  private loadThenHandle(live: Live<M>, m: M, ctx: Ctx, n: number, queue: M[]): Promise<Entity<M> | undefined> {
    return this.kind.load(live.id).then((entity) => {
      let done: Promise<void> | void;
      try {
        done = this.handleOne(live, entity, m, ctx);
      } catch (err) {
        this.handled(queue, live, m, err);
        return this.turn(live, entity, ctx, n + 1);
      }
      if (done) return this.afterHandled(done, live, entity, m, ctx, n, queue);
      queue.shift();
      return this.turn(live, entity, ctx, n + 1);
    }, (err: unknown) => {
      this.handled(queue, live, m, err);
      return this.turn(live, undefined, ctx, n + 1);
    });
  }

  private afterHandled(done: Promise<void>, live: Live<M>, entity: Entity<M>, m: M, ctx: Ctx, n: number, queue: M[]): Promise<Entity<M> | undefined> {
    return done.then(
      () => { queue.shift(); return this.turn(live, entity, ctx, n + 1); },
      (err: unknown) => { this.handled(queue, live, m, err); return this.turn(live, entity, ctx, n + 1); },
    );
  }

  /** The head message failed: a ParleyError is answered; anything else crashes the entity (its supervisor decides). */
  private handled(queue: M[], live: Live<M>, m: M, err: unknown): void {
    queue.shift(); // answered or crashed: no longer in flight
    if (!(err instanceof ParleyError)) {
      live.failed = m;
      throw err;
    }
    this.answerError(m, err);
  }

  private readonly onCrash = (_token: unknown, err: Error | undefined, ctx: SupervisionContext<unknown, Ref<never>>): symbol => {
    const now = Date.now();
    this.count('crashed', now);
    const live = this.live.get(ctx.name);
    log('error', 'entity crashed', { type: this.kind.type, id: live?.id ?? ctx.name, error: err?.stack ?? String(err) });
    if (!live) return ctx.stop as symbol;
    const failed = live.failed;
    const reason = String(err?.message ?? err).split('\n')[0]!.slice(0, 200);
    live.failed = undefined;
    if (failed) this.answerError(failed, err);
    live.entity?.dispose?.();
    live.entity = undefined;
    this.kind.onCrash?.(live.id);
    const crashes = (live.crashes = (live.crashes ?? []).filter((t) => now - t < CRASH_WINDOW_MS));
    crashes.push(now);
    const stopping = crashes.length >= MAX_CRASHES_IN_WINDOW;
    this.crashLog.add({ id: live.id, at: now, reason, ...(failed ? { message: (failed as Envelope & { t?: string }).t } : {}), stopped: stopping });
    if (stopping) {
      this.forget(ctx.name, live);
      this.count('stopped', now);
      // Messages still queued behind the crash are answered, not dropped.
      for (const queued of live.queue?.splice(0) ?? []) this.answerError(queued, err);
      return ctx.stop as symbol;
    }
    // The entity restarts empty and goes on with what is still queued.
    if (live.queue?.length) dispatch(live.ref, live);
    else live.scheduled = false;
    return ctx.reset as symbol;
  };

  private spawnEntity(name: string, live: Live<M>): Ref<unknown> {
    const { kind, handleToken, onCrash } = this;
    if (!isJournaled(kind)) return spawn(this.supervisor, handleToken, name, { onCrash, afterStop: AFTER_STOP }) as Ref<unknown>;
    const { journal } = kind;
    return spawnPersistent(this.supervisor, handleToken, `${kind.type}:${live.id}`, name, {
      onCrash,
      afterStop: AFTER_STOP,
      snapshotEvery: journal.snapshotEvery,
      snapshotEncoder: (e: Entity<M> | undefined) => (e as JournaledEntity<M> | undefined)?.snapshot(),
      snapshotDecoder: (data: unknown) => { const e = journal.create(live.id); e.restore(data); return e; },
    }) as Ref<unknown>;
  }

  private passivateIdle(): void {
    const cutoff = Date.now() - this.passivateAfterMs;
    for (const [name, e] of this.live) {
      if (e.lastUsed > cutoff || e.scheduled) continue;
      if (e.entity?.canPassivate && !e.entity.canPassivate()) continue;
      this.stopEntity(name, e);
    }
  }
}

const handOffReady = <M>(e: Entity<M> | undefined): boolean =>
  !e || (e.canHandOff ? e.canHandOff() : e.canPassivate ? e.canPassivate() : true);

type Ctx = ActorContext<unknown, Ref<never>> & { recovering?: boolean; persist?: (e: unknown) => Promise<void> };
/** What a turn returns to nact: the entity, at once or once the turn's asynchronous part is done. */
type Step<M> = Entity<M> | undefined | Promise<Entity<M> | undefined>;

/** nact actor names allow [a-z0-9._-]; entity ids already are (the rest is mapped, and fails to load). */
const PLAIN_NAME = /^[a-z0-9._-]+$/i;
const actorName = (id: string): string => (PLAIN_NAME.test(id) ? id : id.replace(/[^a-z0-9._-]/gi, '_'));

/**
 * One live entity's entry, and the token its actor is sent while messages wait. Every field is set in the
 * constructor: a property added later costs V8 a separate backing array per entity.
 */
class Live<M> {
  ref = undefined as unknown as Ref<unknown>;
  lastUsed = 0;
  crashes: number[] | undefined = undefined;
  /** Waiting for the actor, in arrival order; the head is the message in hand. */
  queue: M[] | undefined = undefined;
  /** Its token is in the actor's mailbox or being handled. */
  scheduled = false;
  /** Stopped (passivated, handed off or crash-looping): a token still in flight finds nothing to do. */
  gone = false;
  /** The message whose handler crashed, for the supervisor to answer. */
  failed: M | undefined = undefined;
  entity: Entity<M> | undefined = undefined;

  constructor(
    readonly id: string,
    /** When it was spawned (its age in the supervision view). */
    readonly since: number,
  ) {}
}
