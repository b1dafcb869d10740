import type { Store } from '../store/store.js';
import type { Sharding } from '../routing/sharding.js';
import { log } from '../log.js';

/** Conversations activated at once while a node recovers: enough to overlap store round trips, not a stampede. */
const RECOVER_CONCURRENCY = 32;

/**
 * At start, every conversation the store remembers (its last activation may have stopped with deliveries
 * unconfirmed: a crash, a kill) is activated, which re-drives its log above its fan-out mark. Runs in the
 * background: a device that connects meanwhile gets what is re-driven live, in order. Resolves with how many.
 */
export async function recoverConversations(store: Store, sharding: Sharding): Promise<number> {
  const convs = await store.rememberedConversations();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < convs.length) {
      const conv = convs[next++]!;
      await sharding.ask('conv', conv, (reply) => ({ t: 'recover', reply }))
        .catch((err: unknown) => log('warn', 'a remembered conversation did not recover', { conv, error: String(err) }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(RECOVER_CONCURRENCY, convs.length) }, worker));
  return convs.length;
}
