import type { UserId } from '../protocol/ids.js';
import type { ServerFrame } from '../protocol/frames.js';
import type { ConnRef, Outbound } from '../messages/seam.js';
import { log } from '../log.js';
import type { ConnectionRegistry } from './connections.js';
import type { Gateway, PubSub } from './gateway.js';
import { throughCodec } from './seam-check.js';

/**
 * The gateway and pub/sub of one node, over the sockets in its registry. A ref to another node's socket
 * goes to `remote` (the cluster adapter); without one it can only be a bug, and is dropped with a warning.
 */
export class LocalGateway implements Gateway {
  private warned = false;

  constructor(
    readonly node: string,
    private readonly conns: ConnectionRegistry,
    private readonly check = false,
    private readonly remote?: Gateway,
  ) {}

  send(conn: ConnRef, frame: Outbound): void {
    if (conn.node !== this.node) return this.elsewhere(conn)?.send(conn, frame);
    this.conns.get(conn.id)?.send(this.check ? throughCodec({ k: 'conn', conn, frame }).frame : frame);
  }

  close(conn: ConnRef, code: number, reason: string): void {
    if (conn.node !== this.node) return this.elsewhere(conn)?.close(conn, code, reason);
    this.conns.get(conn.id)?.close(code, reason);
  }

  private elsewhere(conn: ConnRef): Gateway | undefined {
    if (!this.remote && !this.warned) {
      this.warned = true;
      log('warn', 'a frame for a socket on another node, and no cluster to carry it: dropped', { node: this.node, to: conn.node });
    }
    return this.remote;
  }
}

export class LocalPubSub implements PubSub {
  constructor(private readonly conns: ConnectionRegistry, private readonly check = false) {}

  publish(user: UserId, frame: ServerFrame): void {
    const f = this.check ? throughCodec({ k: 'user', user, frame }).frame : frame;
    // A socket still attaching is skipped: its sync and welcome come first.
    this.conns.forUser(user, (c) => c.ready && c.send(f));
  }

  closeAll(user: UserId, code: number, reason: string): void {
    for (const c of this.conns.ofUser(user)) c.close(code, reason);
  }
}
