import type { ErrorBody } from '../protocol/errors.js';
import type { ServerFrame } from '../protocol/frames.js';

/**
 * The addresses and answers that cross the routing seam. Everything here is plain data (msgpack-able): a
 * cluster carries it between nodes (src/messages/codec.ts), the local adapters hand it over in memory.
 */

/** Where a client socket lives: the node that holds it and its number there. */
export interface ConnRef { node: string; id: number }
export const connKey = (c: ConnRef): string => `${c.node}/${c.id}`;

/** The address an ask's answer goes to (the asking node's pending table). */
export type ReplyTo = string;
export type Reply = { ok: true; value: unknown } | { ok: false; error: ErrorBody };

/**
 * `reply` marks an ask (answered through sharding); `origin` + `rid`/`cid` name the client socket a result
 * or error frame goes back to. A supervisor that sees an entity crash on a message answers these, so no
 * request is dropped silently.
 */
export interface Envelope { reply?: ReplyTo; origin?: ConnRef; rid?: string; cid?: string }

/**
 * What an entity may send one socket: a ready frame, a delivery whose message was packed once for the whole
 * fan-out, or `conn.drain` — "say when your send buffer has drained" (a sync sending its page in slices hears
 * back as `sync.more`). Never answered: a socket that is gone is reported by its session (`detach`,
 * `presence.unsub`), and in a cluster a node that is gone by membership, each as a message.
 */
export type Outbound = ServerFrame | DeliveryOut | { t: 'conn.drain' };
export interface DeliveryOut { t: 'delivery'; ptr: number; packed: Uint8Array }
