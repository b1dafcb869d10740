import type { Store } from '../store/store.js';
import type { Sharding } from '../routing/sharding.js';
import type { Gateway, PubSub } from '../routing/gateway.js';
import type { PushGateway } from '../push/push-gateway.js';
import type { KeyedLimiter } from '../transport/rate-limit.js';
import type { Config } from '../config.js';
import type { Analytics } from '../analytics/analytics.js';

/**
 * Budgets entities draw on, one per node (in a cluster a sender's budget is per node): recipients per sender
 * (`fanout`, in the conversation), inbox entries sent again per device (`syncResend`, in the user).
 */
export interface Budgets { fanout: KeyedLimiter; syncResend: KeyedLimiter }

/**
 * What entities may touch: the store, the three routing seams (other entities by id, sockets, a user's
 * topic), the push seam and the node's budgets. Nothing else leaves an actor.
 */
export interface ActorDeps {
  store: Store;
  sharding: Sharding;
  gateway: Gateway;
  pubsub: PubSub;
  push: PushGateway;
  budgets: Budgets;
  /** Product numbers: messages stored (conversation), delivery latency (user). An increment, no I/O. */
  analytics?: Pick<Analytics, 'message' | 'delivered'>;
  config: Pick<Config, 'limits' | 'inboxTtlMs' | 'inboxDeferMs' | 'deviceTrustMs' | 'shaping' | 'fanout' | 'retention'>;
}
