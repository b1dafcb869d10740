import type { ActorSystemRef } from 'nact';
import { ParleyError, errorFrame, toErrorBody } from '../protocol/errors.js';
import type { UserId } from '../protocol/ids.js';
import type { ServerFrame } from '../protocol/frames.js';
import { Region, type EntityKind, type RegionStats } from '../actors/region.js';
import type { EntityMessages, EntityType, Envelope } from '../actors/messages.js';
import type { ConnectionRegistry } from './connections.js';
import type { FaultInjector } from '../ops/faults.js';
import type { ConnRef, Outbound, Reply, ReplyTo, Router } from './router.js';

const DEFAULT_ASK_TIMEOUT_MS = 10_000;

/**
 * The single-node router: every entity lives here, in one region per kind, and every socket is in this
 * node's registry. The cluster router keeps this interface and adds placement and NATS underneath.
 */
export class LocalRouter implements Router {
  private readonly regions = new Map<EntityType, Region<Envelope>>();
  private readonly pending = new Map<ReplyTo, { resolve(v: unknown): void; reject(e: unknown): void; timer: NodeJS.Timeout }>();
  private replySeq = 0;

  constructor(
    readonly node: string,
    private readonly system: ActorSystemRef,
    private readonly conns: ConnectionRegistry,
    private readonly passivateAfterMs: number,
    private readonly faults?: FaultInjector,
  ) {}

  /** Registers the kinds of entity this node hosts. */
  host(kinds: EntityKind<never>[]): void {
    for (const k of kinds) {
      this.regions.set(k.type, new Region(this.system, k as unknown as EntityKind<Envelope>, (msg, err) => this.answerError(msg, err), this.passivateAfterMs, this.faults));
    }
  }

  tell<T extends EntityType>(type: T, id: string, msg: EntityMessages[T]): void {
    const region = this.regions.get(type);
    if (!region) throw new Error(`no region for ${type}`);
    region.tell(id, msg);
  }

  ask<T extends EntityType, R>(type: T, id: string, build: (reply: ReplyTo) => EntityMessages[T], timeoutMs = DEFAULT_ASK_TIMEOUT_MS): Promise<R> {
    const reply = `${this.node}:${++this.replySeq}`;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(reply);
        reject(new ParleyError('timeout', `${type} did not answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(reply, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.tell(type, id, build(reply));
    });
  }

  reply(to: ReplyTo, result: Reply): void {
    const p = this.pending.get(to);
    if (!p) return; // the asker timed out
    this.pending.delete(to);
    clearTimeout(p.timer);
    if (result.ok) p.resolve(result.value);
    else p.reject(new ParleyError(result.error.code, result.error.message, result.error.retryAfterMs));
  }

  toConnection(conn: ConnRef, frame: Outbound): boolean {
    const c = this.conns.get(conn.id);
    return c ? c.send(frame) : false;
  }

  toUser(user: UserId, frame: ServerFrame): void {
    this.conns.forUser(user, (c) => c.ready && c.send(frame));
  }

  closeConnection(conn: ConnRef, code: number, reason: string): void {
    this.conns.get(conn.id)?.close(code, reason);
  }

  closeUserConnections(user: UserId, code: number, reason: string): void {
    for (const c of this.conns.ofUser(user)) c.close(code, reason);
  }

  /** The supervisor tree as operators see it: one region per kind, with its live entities. */
  tree(): (RegionStats & { ids: string[] })[] {
    return [...this.regions.values()].map((r) => r.snapshot());
  }

  /**
   * Resolves once no entity has a message in hand or in its mailbox for `quietMs` (stores resolve, acks and
   * fan-outs follow as new messages, so one quiet instant is not enough), or after `maxMs`.
   */
  async drain(quietMs = 50, maxMs = 5000): Promise<void> {
    const until = Date.now() + maxMs;
    let quietSince = Date.now();
    while (Date.now() < until) {
      const busy = [...this.regions.values()].some((r) => r.inFlight() > 0) || this.pending.size > 0;
      if (busy) quietSince = Date.now();
      else if (Date.now() - quietSince >= quietMs) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  stop(): void {
    for (const r of this.regions.values()) r.stopAll();
    for (const p of this.pending.values()) clearTimeout(p.timer);
  }

  /** Answers a message that failed: the asker gets a rejected promise, a socket gets an error frame. */
  private answerError(msg: Envelope, err: unknown): void {
    if (msg.reply) this.reply(msg.reply, { ok: false, error: toErrorBody(err) });
    else if (msg.origin) this.toConnection(msg.origin, errorFrame(msg, err));
  }
}
