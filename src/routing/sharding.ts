import type { EntityMessages, EntityType } from '../messages/entity-messages.js';
import type { Reply, ReplyTo } from '../messages/seam.js';

/**
 * Sharding: messages to an entity by its id, wherever it lives (Akka's ShardRegion / Orleans' grain
 * reference). The local adapter hands them to this node's regions; the cluster adapter finds the node by
 * placement and carries them over NATS. Entities can't tell which one they run under.
 */
export interface Sharding {
  /** Fire-and-forget to an entity, activating (or recovering) it wherever it belongs. */
  tell<T extends EntityType>(type: T, id: string, msg: EntityMessages[T]): void;
  /** Request-reply. `build` gets the reply address to embed; rejects with ParleyError on error or timeout. */
  ask<T extends EntityType, R>(type: T, id: string, build: (reply: ReplyTo) => EntityMessages[T], timeoutMs?: number): Promise<R>;
  /** Answers an ask: a value, or an error body that the asker's promise rejects with. */
  reply(to: ReplyTo, result: Reply): void;
}

/** Where sharding hands a message for an entity this node hosts: the node's regions. */
export interface EntityHost {
  deliver<T extends EntityType>(type: T, id: string, msg: EntityMessages[T]): void;
  /** The entity is running here now (spawned, not stopped). */
  isLive(type: EntityType, id: string): boolean;
}
