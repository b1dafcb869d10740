import type { ConversationId, DeviceId, UserId } from '../protocol/ids.js';
import type { Outbound } from '../messages/seam.js';

/** A client socket as the rest of the node sees it. */
export interface Connection {
  readonly id: number;
  readonly user: UserId;
  readonly device: DeviceId;
  /** True once the welcome went out: transient frames to the user skip a socket still attaching. */
  readonly ready: boolean;
  /** False when the socket is closed (or just got closed for backpressure). */
  send(frame: Outbound): boolean;
  close(code: number, reason: string): void;
  /**
   * In a cluster: the entities of the users `moved` selects went to another node. The socket's own user
   * among them: it reconnects to attach there; users whose presence it follows: it follows them there.
   */
  usersMoved?(moved: (user: UserId) => boolean): void;
  /**
   * In a cluster: the conversations `lost` selects were on a node that failed. Sends on this socket still
   * waiting for their tick from one of them are answered `moving` (send again, same cid).
   */
  entitiesLost?(lost: (conv: ConversationId) => boolean): void;
}

export interface UserSockets { first(user: UserId): void; last(user: UserId): void }

/** The sockets this node holds, by number and by user. */
export class ConnectionRegistry {
  private readonly byId = new Map<number, Connection>();
  /** Most users have one socket here: it is stored bare, and a Set only once there are more. */
  private readonly byUser = new Map<UserId, Connection | Set<Connection>>();
  private seq = 0;
  private watcher?: UserSockets;

  /** Told when a user's first socket here opens and its last one closes (a cluster subscribes to the user's topic). */
  watchUsers(w: UserSockets): void {
    this.watcher = w;
  }

  nextId(): number { return ++this.seq; }
  get size(): number { return this.byId.size; }
  get(id: number): Connection | undefined { return this.byId.get(id); }

  add(c: Connection): void {
    this.byId.set(c.id, c);
    const held = this.byUser.get(c.user);
    if (held === undefined) {
      this.byUser.set(c.user, c);
      this.watcher?.first(c.user);
    } else if (held instanceof Set) held.add(c);
    else if (held !== c) this.byUser.set(c.user, new Set([held, c]));
  }

  remove(c: Connection): void {
    this.byId.delete(c.id);
    const held = this.byUser.get(c.user);
    if (held === c) {
      this.byUser.delete(c.user);
      this.watcher?.last(c.user);
    } else if (held instanceof Set) {
      held.delete(c);
      if (held.size === 1) this.byUser.set(c.user, held.values().next().value!);
    }
  }

  /** A copy: closing a socket removes it from the registry. */
  ofUser(user: UserId): Connection[] {
    const out: Connection[] = [];
    this.forUser(user, (c) => out.push(c));
    return out;
  }

  forUser(user: UserId, f: (c: Connection) => void): void {
    const held = this.byUser.get(user);
    if (held instanceof Set) held.forEach((c) => f(c));
    else if (held !== undefined) f(held);
  }
  all(): IterableIterator<Connection> { return this.byId.values(); }
}
