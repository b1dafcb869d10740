import type { EntityType } from '../actors/messages.js';

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
