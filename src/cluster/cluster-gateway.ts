import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { UserId } from '../protocol/ids.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { ConnRef, Outbound } from '../messages/seam.js';
import { decodeSeam, encodeSeam } from '../messages/codec.js';
import type { Gateway, PubSub } from '../routing/gateway.js';
import type { LocalPubSub } from '../routing/local-gateway.js';
import type { ConnectionRegistry } from '../routing/connections.js';
import { log } from '../log.js';
import type { NodeLinks } from './cluster-sharding.js';

/**
 * Frames for a socket on another node: over the link to that node (ordered and once, as a local send), where
 * its LocalGateway hands them to the socket. This is the `remote` of LocalGateway.
 */
export class LinkGateway implements Gateway {
  dropped = 0;

  constructor(private readonly links: NodeLinks) {}

  send(conn: ConnRef, frame: Outbound): void {
    if (!this.links.send(conn.node, encodeSeam({ k: 'conn', conn, frame }))) this.dropped++;
  }

  close(conn: ConnRef, code: number, reason: string): void {
    if (!this.links.send(conn.node, encodeSeam({ k: 'conn.close', conn, code, reason }))) this.dropped++;
  }
}

/** The subject of a user's transient frames. User ids are [a-z2-7]: a subject token as they are. */
export const userSubject = (prefix: string, user: UserId): string => `${prefix}.u.${user}`;

/**
 * Pub/sub on a user's topic across the cluster (Phoenix.PubSub's model): a node subscribes to a user's
 * subject while it holds one of the user's sockets, and a publish goes to this node's sockets directly and to
 * the subject for the others (core NATS, at most once: these frames are transient by contract — a receipt
 * or typing missed is caught up by the next sync). A node skips what it published itself.
 */
export class ClusterPubSub implements PubSub {
  private readonly subs = new Map<UserId, Subscription>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly node: string,
    private readonly prefix: string,
    private readonly local: LocalPubSub,
    conns: ConnectionRegistry,
  ) {
    conns.watchUsers({ first: (u) => this.subscribe(u), last: (u) => this.unsubscribe(u) });
  }

  publish(user: UserId, frame: ServerFrame): void {
    this.local.publish(user, frame);
    this.nc.publish(userSubject(this.prefix, user), encodeSeam({ k: 'user', user, frame, from: this.node }));
  }

  closeAll(user: UserId, code: number, reason: string): void {
    this.local.closeAll(user, code, reason);
    this.nc.publish(userSubject(this.prefix, user), encodeSeam({ k: 'user.close', user, code, reason, from: this.node }));
  }

  close(): void {
    for (const s of this.subs.values()) s.unsubscribe();
    this.subs.clear();
  }

  private subscribe(user: UserId): void {
    if (this.subs.has(user)) return;
    this.subs.set(user, this.nc.subscribe(userSubject(this.prefix, user), {
      callback: (err, msg) => {
        if (err) return;
        try {
          const m = decodeSeam(msg.data);
          if (m.k === 'user' && m.from !== this.node) this.local.publish(m.user, m.frame);
          else if (m.k === 'user.close' && m.from !== this.node) this.local.closeAll(m.user, m.code, m.reason);
        } catch (e) {
          log('warn', 'a user topic message this node cannot read: dropped', { error: String(e) });
        }
      },
    }));
  }

  private unsubscribe(user: UserId): void {
    this.subs.get(user)?.unsubscribe();
    this.subs.delete(user);
  }
}
