import type { Store } from '../store/store.js';
import type { ConversationId } from '../protocol/ids.js';
import type { Sharding } from '../routing/sharding.js';
import { log } from '../log.js';

/** Conversations activated at once while a node recovers: enough to overlap store round trips, not a stampede. */
const RECOVER_CONCURRENCY = 32;
/** A failed listing is tried again after 1 s, doubling to a minute: recovery is never skipped, only delayed. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 60_000;

/**
 * At start, every conversation the store remembers (its last activation may have stopped with deliveries
 * unconfirmed: a crash, a kill) is activated, which re-drives its log above its fan-out mark. Runs in the
 * background: a device that connects meanwhile gets what is re-driven live, in order. A store that can't list
 * them yet (it is still coming up) is asked again until it can, or until `stopped()`. Resolves with how many.
 * In a cluster a node recovers those of the shards it just acquired (`keep`).
 */
export async function recoverConversations(store: Store, sharding: Sharding, stopped: () => boolean, keep?: (conv: ConversationId) => boolean): Promise<number> {
  const listed = await listUntilListed(store, stopped);
  const convs = keep ? listed.filter(keep) : listed;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < convs.length && !stopped()) {
      const conv = convs[next++]!;
      await sharding.ask('conv', conv, (reply) => ({ t: 'recover', reply }))
        .catch((err: unknown) => log('warn', 'a remembered conversation did not recover', { conv, error: String(err) }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(RECOVER_CONCURRENCY, convs.length) }, worker));
  return convs.length;
}

async function listUntilListed(store: Store, stopped: () => boolean): Promise<ConversationId[]> {
  for (let wait = RETRY_FIRST_MS; ; wait = Math.min(wait * 2, RETRY_MAX_MS)) {
    try {
      return await store.rememberedConversations();
    } catch (err) {
      if (stopped()) return [];
      log('warn', 'remembered conversations could not be listed yet; trying again', { inMs: wait, error: String(err) });
      await new Promise((r) => setTimeout(r, wait).unref());
    }
  }
}
