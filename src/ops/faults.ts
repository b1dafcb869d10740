import type { EntityType } from '../messages/entity-messages.js';
import type { Store } from '../store/store.js';

/**
 * A slow store for drills and tests (PARLEY_FAULTS=1 with PARLEY_FAULT_APPEND_DELAY_MS): each message append
 * reaches the real store only after `ms`, as over a remote database, so crashes can strike while writes are
 * in flight. Everything else is the store itself.
 */
export function slowAppends(store: Store, ms: number): Store {
  if (ms <= 0) return store;
  const append = store.appendMessage.bind(store);
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'appendMessage') {
        return (...args: Parameters<Store['appendMessage']>) => new Promise<void>((resolve, reject) =>
          setTimeout(() => append(...args).then(resolve, reject), ms));
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/**
 * Chaos seam for resilience tests and drills (Erlang's `exit(Pid, kill)` from outside): when the node runs
 * with PARLEY_FAULTS=1, an operator can arm an entity so that its next N messages crash it. Off by default;
 * with it off, `armed` is never consulted.
 */
export class FaultInjector {
  private readonly armed = new Map<string, number>();

  arm(type: EntityType, id: string, times: number): void {
    this.armed.set(`${type}/${id}`, times);
  }

  /** Throws if a crash is armed for this entity, consuming one. */
  strike(type: EntityType, id: string): void {
    const key = `${type}/${id}`;
    const left = this.armed.get(key);
    if (!left) return;
    if (left <= 1) this.armed.delete(key);
    else this.armed.set(key, left - 1);
    throw new Error(`injected fault in ${key}`);
  }
}
