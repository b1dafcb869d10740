import type { EntityType } from '../messages/entity-messages.js';
import { ParleyError } from '../protocol/errors.js';
import type { Store } from '../store/store.js';

/**
 * Store calls a drill can make fail: `inbox.reserve`, a device's inbox pointer reservation (Store.reserve of an
 * inbox fence); `device.acked`, a device's acked pointer (Store.setDeviceAcked).
 */
export const STORE_FAULTS = ['inbox.reserve', 'device.acked'] as const;
export type StoreFault = typeof STORE_FAULTS[number];

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
  private readonly storeFaults = new Map<StoreFault, number>();

  /** The next `times` calls of `what` fail with store_unavailable (0 disarms). */
  armStore(what: StoreFault, times: number): void {
    if (times > 0) this.storeFaults.set(what, times);
    else this.storeFaults.delete(what);
  }

  /** Throws store_unavailable if a failure of `what` is armed, consuming one. */
  failStore(what: StoreFault): void {
    const left = this.storeFaults.get(what);
    if (!left) return;
    this.armStore(what, left - 1);
    throw new ParleyError('store_unavailable', `injected store fault: ${what}`);
  }

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

/** The store with the failures a drill arms (FaultInjector.armStore) in front of it. */
export function faultyStore(store: Store, faults: FaultInjector | undefined): Store {
  if (!faults) return store;
  const reserve = store.reserve.bind(store);
  const setDeviceAcked = store.setDeviceAcked.bind(store);
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'reserve') {
        return async (...args: Parameters<Store['reserve']>) => {
          if (args[0].startsWith('i/')) faults.failStore('inbox.reserve');
          return reserve(...args);
        };
      }
      if (prop === 'setDeviceAcked') {
        return async (...args: Parameters<Store['setDeviceAcked']>) => {
          faults.failStore('device.acked');
          return setDeviceAcked(...args);
        };
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
