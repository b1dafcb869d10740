import type { Msg, NatsConnection, Status, Subscription } from '@nats-io/transport-node';
import { log } from '../log.js';
import { NODE_NAME, decodeLinkFrame, encodeLinkFrame, type Incarnation } from './link-frames.js';
import { LinkState, type LinkOptions, type LinkStats, type LostReason, type Outgoing } from './link-protocol.js';

/**
 * The cluster's data link over core NATS: items (already encoded by the seam codec) from this node to
 * another arrive once and in the order sent, as nact's local mailboxes promise — the protocol is in
 * link-protocol.ts; this is its edge: one subscription, one timer, one flush at the end of each macrotask.
 *
 * Subjects: frames for node N are published on `parley.link.N`, and N subscribes to that one subject. Acks
 * travel on the same subject as data (the acking node publishes to the sender's `parley.link.<sender>`),
 * riding on a reverse data frame when there is one: nodes tell each other things both ways, so an ack
 * usually costs no message of its own, and one subscription per node serves data, acks, hellos and
 * refusals alike (core NATS needs no order between acks and data: acks are cumulative).
 *
 * `send` returning false means the peer's window is full (it has not acked `windowItems` or `windowBytes`
 * for a while: slow, cut off, or dead). The item was not taken. The caller treats it as a message that could
 * not be sent — a tell is dropped and counted, an ask is answered at once with a retryable error — rather than
 * queueing it elsewhere: every hop that matters above the link has its own end-to-end retry.
 */
export interface LinksOptions extends Partial<LinkOptions> {
  /** The timer's period: retransmission timeouts and periodic acks are checked this often (ms). */
  tickMs?: number;
  /** The largest item `send` takes (bytes); NATS refuses a message over the server's max_payload (1 MB by default). */
  maxItemBytes?: number;
  /** Subject prefix (`parley.link`): frames for node N go to `<prefix>.N`. */
  prefix?: string;
  /** This node's incarnation; a fresh one by default (tests pin it). */
  incarnation?: Incarnation;
  /** Each round-trip sample: a data frame's first transmission to its ack, ms (metrics). */
  onAckTime?: (ms: number) => void;
}

export interface LinksStats extends LinkStats {
  incarnation: Incarnation;
  /** Frames that could not be decoded, publishes that threw (the connection closed), subscription errors. */
  badFrames: number;
  publishErrors: number;
  subscriptionErrors: number;
}

export const DEFAULT_TICK_MS = 50;
export const DEFAULT_MAX_ITEM_BYTES = 512 * 1024;

let lastIncarnation = 0;
/**
 * A new incarnation: the start time in ms × 1024 plus 10 random bits, and above any made before in this
 * process. So a restarted node's incarnation is greater than its previous one's (the receivers tell the
 * newer from the older by it) as long as the clock did not go back across the restart by more than the
 * restart took — and if it did, the new incarnation is heard once the old one is declared gone.
 */
export function newIncarnation(now = Date.now()): Incarnation {
  const inc = Math.max(now * 1024 + Math.floor(Math.random() * 1024), lastIncarnation + 1);
  lastIncarnation = inc;
  return inc;
}

export class Links {
  readonly incarnation: Incarnation;
  private readonly state: LinkState;
  private readonly sub: Subscription;
  private readonly timer: NodeJS.Timeout;
  private readonly prefix: string;
  private readonly maxItemBytes: number;
  private readonly subjects = new Map<string, string>();
  private readonly status: AsyncIterator<Status>;
  private itemHandlers: ((from: string, item: Uint8Array) => void)[] = [];
  private lostHandlers: ((to: string, items: Uint8Array[], why: LostReason) => void)[] = [];
  private flushing = false;
  private closed = false;
  private badFrames = 0;
  private subscriptionErrors = 0;
  private publishErrors = 0;

  constructor(private readonly nc: NatsConnection, readonly self: string, opts: LinksOptions = {}) {
    checkNode(self);
    this.prefix = opts.prefix ?? 'parley.link';
    this.maxItemBytes = opts.maxItemBytes ?? DEFAULT_MAX_ITEM_BYTES;
    this.incarnation = opts.incarnation ?? newIncarnation();
    this.state = new LinkState(self, this.incarnation, {
      deliver: (from, item) => { for (const h of this.itemHandlers) h(from, item); },
      lost: (to, items, why) => {
        log('warn', 'link: items to a restarted or refusing peer were not confirmed', { peer: to, items: items.length, why });
        for (const h of this.lostHandlers) h(to, items, why);
      },
      handlerError: (err) => log('error', 'link: an item handler threw', { error: String(err) }),
      ackTime: opts.onAckTime && ((_to, ms) => opts.onAckTime!(ms)),
    }, opts);
    this.sub = nc.subscribe(`${this.prefix}.${self}`, { callback: (err, msg) => this.received(err, msg) });
    this.timer = setInterval(() => this.tick(), opts.tickMs ?? DEFAULT_TICK_MS);
    this.timer.unref();
    this.status = nc.status()[Symbol.asyncIterator]();
    void this.watch();
  }

  /** Queues `item` for `to`; it goes out at the end of this macrotask with whatever else was queued. False: `to`'s window is full. */
  send(to: string, item: Uint8Array): boolean {
    if (this.closed) return false;
    if (item.byteLength > this.maxItemBytes) throw new RangeError(`a link item is at most ${this.maxItemBytes} bytes (got ${item.byteLength})`);
    if (!this.subjects.has(to)) {
      checkNode(to);
      if (to === this.self) throw new RangeError('a node\'s own items do not cross the link: deliver them locally');
      this.subjects.set(to, `${this.prefix}.${to}`);
    }
    if (!this.state.send(to, item)) return false;
    this.schedule();
    return true;
  }

  /**
   * Every item for this node, in order per sender, once. `item` is a view into the received frame: copy it
   * to keep it past the call. A handler that throws is logged; the item counts as delivered.
   */
  onItem(fn: (from: string, item: Uint8Array) => void): void {
    this.itemHandlers.push(fn);
  }

  /**
   * Items that a peer's incarnation never confirmed, because it restarted (`restarted`) or refused this
   * node as gone (`refused`): some may have reached the old incarnation before it died, none will reach the
   * new one. Told once, in seq order, when the link learns it.
   */
  onLost(fn: (to: string, items: Uint8Array[], why: LostReason) => void): void {
    this.lostHandlers.push(fn);
  }

  /** Membership declared `node` gone: its state is dropped, its unacked items discarded (counted), its incarnation no longer heard. */
  peerGone(node: string): void {
    this.state.peerGone(node);
  }

  stats(): LinksStats {
    return { ...this.state.stats(), incarnation: this.incarnation, badFrames: this.badFrames, publishErrors: this.publishErrors, subscriptionErrors: this.subscriptionErrors };
  }

  /** Unacked items to `node` now. */
  unacked(node: string): number {
    return this.state.unacked(node);
  }

  /** Stops: unsubscribes and stops the timer; items not yet acked are dropped. The connection stays the caller's. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    void this.status.return?.();
    try {
      this.sub.unsubscribe();
    } catch {
      // The connection is already closed: so is the subscription.
    }
  }

  private received(err: Error | null, msg: Msg): void {
    if (err) {
      // A subscription error (e.g. a permissions violation) is the connection's, not a frame's: say it once.
      if (this.subscriptionErrors++ === 0) log('error', 'link: the subscription failed', { error: String(err) });
      return;
    }
    if (this.closed) return;
    let frame;
    try {
      frame = decodeLinkFrame(msg.data);
    } catch (e) {
      // Logged the first time and every 1,000th after: a misconfigured peer must not flood the log.
      if (this.badFrames++ % 1000 === 0) log('warn', 'link: a frame that is not one', { error: String(e), subject: msg.subject, count: this.badFrames });
      return;
    }
    this.state.receive(frame, performance.now());
    if (this.state.due) this.schedule();
  }

  private tick(): void {
    if (this.closed) return;
    this.state.tick(performance.now());
    if (this.state.due) this.schedule();
  }

  /** One flush per macrotask: everything sent and every ack due in this one goes out together. */
  private schedule(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushing = false;
    if (this.closed) return;
    for (const o of this.state.flush(performance.now())) this.publish(o);
  };

  private publish(o: Outgoing): void {
    let subject = this.subjects.get(o.to);
    if (subject === undefined) {
      subject = `${this.prefix}.${o.to}`; // a node that wrote to us: its name came in a valid frame
      this.subjects.set(o.to, subject);
    }
    try {
      this.nc.publish(subject, encodeLinkFrame(o.frame));
    } catch (e) {
      // Closed or draining: the frame is lost like any other; what matters is resent while the link lives.
      this.publishErrors++;
      if (this.publishErrors === 1) log('warn', 'link: publish failed', { error: String(e) });
    }
  }

  /** After a reconnect whatever was in flight may be gone: resend it and ack everything now, not at the next timeout. */
  private async watch(): Promise<void> {
    try {
      for (;;) {
        const next = await this.status.next();
        if (next.done) return;
        const s = next.value;
        if (this.closed) return;
        if (s.type === 'reconnect') {
          this.state.kick(performance.now());
          this.schedule();
        }
      }
    } catch {
      // The status iterator ends with the connection.
    }
  }
}

function checkNode(node: string): void {
  if (!NODE_NAME.test(node)) throw new RangeError(`a node name is 1–128 of A–Z a–z 0–9 _ - (a NATS subject token): ${JSON.stringify(node)}`);
}
