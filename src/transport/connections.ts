import type { DeviceId, UserId } from '../protocol/ids.js';
import type { Outbound } from './router.js';

/** A client socket as the rest of the node sees it. */
export interface Connection {
  readonly id: number;
  readonly user: UserId;
  readonly device: DeviceId;
  /** False when the socket is closed (or just got closed for backpressure). */
  send(frame: Outbound): boolean;
  close(code: number, reason: string): void;
}

/** The sockets this node holds, by number and by user. */
export class ConnectionRegistry {
  private readonly byId = new Map<number, Connection>();
  private readonly byUser = new Map<UserId, Set<Connection>>();
  private seq = 0;

  nextId(): number { return ++this.seq; }
  get size(): number { return this.byId.size; }
  get(id: number): Connection | undefined { return this.byId.get(id); }

  add(c: Connection): void {
    this.byId.set(c.id, c);
    let set = this.byUser.get(c.user);
    if (!set) this.byUser.set(c.user, (set = new Set()));
    set.add(c);
  }

  remove(c: Connection): void {
    this.byId.delete(c.id);
    const set = this.byUser.get(c.user);
    set?.delete(c);
    if (set?.size === 0) this.byUser.delete(c.user);
  }

  ofUser(user: UserId): Connection[] { return [...(this.byUser.get(user) ?? [])]; }
  forUser(user: UserId, f: (c: Connection) => void): void { this.byUser.get(user)?.forEach(f); }
  all(): IterableIterator<Connection> { return this.byId.values(); }
}
