import type { ServerFrame } from '../protocol/frames.js';
import type { UserId } from '../protocol/ids.js';
import type { EntityMessages, EntityType } from '../actors/messages.js';

/**
 * The routing seam. Every actor-to-actor message, every reply and every frame bound for a client socket goes
 * through a Router, addressed by entity id or connection ref — never by an in-process reference. The local
 * router (one node) resolves ids to nact actors here; the cluster router resolves them to a node by
 * consistent hashing and carries them over NATS. Actors can't tell which one they run under, like
 * Phoenix.PubSub's adapters. Everything that crosses it is plain data (msgpack-able).
 */
export interface Router {
  /** Fire-and-forget to an entity, spawning (or recovering) it wherever it belongs. */
  tell<T extends EntityType>(type: T, id: string, msg: EntityMessages[T]): void;
  /** Request-reply. `build` gets the reply address to embed; rejects with ParleyError on error or timeout. */
  ask<T extends EntityType, R>(type: T, id: string, build: (reply: ReplyTo) => EntityMessages[T], timeoutMs?: number): Promise<R>;
  /** Answers an ask: a value, or an error body that the asker's promise rejects with. */
  reply(to: ReplyTo, result: Reply): void;
  /** To one client socket, on whichever node holds it. False when that connection is gone. */
  toConnection(conn: ConnRef, frame: Outbound): boolean;
  /**
   * A transient frame (receipt, typing) to every socket the user has open, on whichever nodes hold them;
   * nothing is stored and an offline user simply misses it. Not through the user's entity: a receipt is one
   * hop less on every message. The cluster router publishes it on the user's subject, which each node
   * holding one of the user's sockets subscribes to (Phoenix.PubSub's model).
   */
  toUser(user: UserId, frame: ServerFrame): void;
  /** Closes one socket (replaced by a newer one of the same device, or misbehaving). */
  closeConnection(conn: ConnRef, code: number, reason: string): void;
  /** Closes every socket of a user, so its devices reconnect and resync (after a user actor restart). */
  closeUserConnections(user: UserId, code: number, reason: string): void;
}

/** Where a client socket lives: the node that holds it and its number there. */
export interface ConnRef { node: string; id: number }
export type ReplyTo = string;
export type Reply = { ok: true; value: unknown } | { ok: false; error: import('../protocol/errors.js').ErrorBody };

/**
 * A frame for a socket: a ready frame, a delivery whose message was packed once for the whole fan-out, or
 * news for the socket's session that is never written to the socket (how many devices its user has; a sync
 * waiting to hear, as `sync.more`, when the socket's send buffer has drained).
 */
export type Outbound = ServerFrame | { t: 'delivery'; ptr: number; packed: Uint8Array } | SessionNews;
export type SessionNews = { t: 'session.devices'; devices: number } | { t: 'session.drain' };

export const connKey = (c: ConnRef): string => `${c.node}/${c.id}`;
