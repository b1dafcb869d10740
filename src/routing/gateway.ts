import type { UserId } from '../protocol/ids.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { ConnRef, Outbound } from '../messages/seam.js';

/**
 * The gateway: frames to one client socket, on whichever node holds it. Nothing is answered: a socket that
 * is gone drops what it is sent, and its session tells the entities that hold it (`detach`,
 * `presence.unsub`) by message, so an entity learns it in its own turn, in order with everything else.
 */
export interface Gateway {
  send(conn: ConnRef, frame: Outbound): void;
  /** Closes one socket (replaced by a newer one of the same device, signed out, or misbehaving). */
  close(conn: ConnRef, code: number, reason: string): void;
}

/**
 * Pub/sub on a user's topic: transient frames (receipts, typing) to every socket the user has open, on
 * whichever nodes hold them; nothing is stored and an offline user simply misses them. Not through the user's
 * entity: a receipt is one hop less on every message. The cluster adapter publishes on the user's subject,
 * which every node holding one of the user's sockets subscribes to (Phoenix.PubSub's model).
 */
export interface PubSub {
  publish(user: UserId, frame: ServerFrame): void;
  /** Closes every socket of a user, so its devices reconnect and resync (after its entity restarted). */
  closeAll(user: UserId, code: number, reason: string): void;
}
