import type { Store } from '../store/store.js';
import type { Router } from '../transport/router.js';
import type { PushGateway } from '../push/push-gateway.js';
import type { Config } from '../config.js';

/** What entities may touch: the store, the router and the push seam. Nothing else leaves an actor. */
export interface ActorDeps {
  store: Store;
  router: Router;
  push: PushGateway;
  config: Pick<Config, 'limits' | 'inboxTtlMs' | 'inboxDeferMs' | 'deviceTrustMs' | 'fanout'>;
}
