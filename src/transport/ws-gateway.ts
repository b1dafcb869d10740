import { performance } from 'node:perf_hooks';
import type { HttpResponse, TemplatedApp, WebSocket } from 'uWebSockets.js';
import uWS from 'uWebSockets.js';
import { ParleyError, errorFrame, rateLimited, toErrorBody } from '../protocol/errors.js';
import { deviceKey, directConversationId, type ConversationId, type DeviceId, type UserId } from '../protocol/ids.js';
import type { ClientFrame, Limits, ServerFrame } from '../protocol/frames.js';
import { decodeFrame, encodeDelivery, encodeFrame, type WireFormat } from '../protocol/codec.js';
import { validateClientFrame } from '../protocol/validate.js';
import type { Accounts } from '../accounts/accounts.js';
import { ClientSession, type Directory, type SessionServices, type SessionSocket } from '../session/client-session.js';
import type { MediaGate } from '../media/media-access.js';
import type { KeyDirectory } from '../e2e/key-directory.js';
import { log } from '../log.js';
import type { ConnectionRegistry, Connection } from '../routing/connections.js';
import type { Outbound } from '../messages/seam.js';
import type { Sharding } from '../routing/sharding.js';
import { KeyedLimiter, TokenBucket, type Rate } from './rate-limit.js';
import { originAllowed } from './origin.js';
import { bearer, remoteAddress, statusLine } from '../http/http-io.js';
import type { Metrics } from '../ops/metrics.js';
import type { Analytics } from '../analytics/analytics.js';
import type { Series } from '../ops/latency-histogram.js';
import { enterFrame, frameId, leave } from '../ops/trace.js';
import { CloseCodes } from '../protocol/close-codes.js';
import { ipKey } from './ip-key.js';
import { frameCost } from './frame-cost.js';

/** A socket's user data: what its upgrade learned until it opens, then its connection (uWS copies each field onto every socket). */
interface SocketData {
  init: SocketInit | undefined;
  conn: SocketConnection | undefined;
}

interface SocketInit {
  id: number;
  user: UserId;
  device: DeviceId;
  format: WireFormat;
  /** The client's address (behind a trusted proxy, the one it passed), read at the upgrade. */
  addr: string;
  /** A renewed token for the welcome, when the one presented was due for renewal. */
  renewed: string | undefined;
}

export interface GatewayOptions {
  node: string;
  maxConnections: number;
  maxBackpressure: number;
  idleTimeoutSec: number;
  rate: { perSecond: number; burst: number };
  /** Upgrades per client address and per user; cost units of expensive frames per device. */
  shaping: { ipUpgrades: Rate; userUpgrades: Rate; frameCost: Rate };
  limits: Limits;
  /** Browser origins allowed besides the node's own (config `allowedOrigins`). */
  allowedOrigins: readonly string[];
  /** Why the node takes no sockets now (in a cluster: cut off from it), or undefined. */
  unavailable?: () => string | undefined;
}

/**
 * The client edge: `GET /v1/ws` upgrades an authenticated request to a WebSocket; each frame is decoded
 * (msgpack on binary frames, JSON on text frames), validated, rate-limited and handed to the socket's
 * ClientSession. Outbound frames are encoded in the format the client chose when it connected.
 */
export function mountGateway(
  app: TemplatedApp,
  deps: { accounts: Accounts; sharding: Sharding; conns: ConnectionRegistry; metrics: Metrics; directory: Directory; media?: MediaGate; keys?: KeyDirectory; analytics?: Pick<Analytics, 'active'> },
  opts: GatewayOptions,
): void {
  const { accounts, sharding, conns, metrics, directory, media, keys, analytics } = deps;
  let upgrading = 0;
  const ipUpgrades = new KeyedLimiter(opts.shaping.ipUpgrades);
  const userUpgrades = new KeyedLimiter(opts.shaping.userUpgrades);
  const edge: Edge = {
    costs: new KeyedLimiter(opts.shaping.frameCost), costBurst: opts.shaping.frameCost.burst, maxBackpressure: opts.maxBackpressure,
    node: opts.node, rate: opts.rate, metrics, services: { sharding, directory, media, keys },
  };

  app.ws<SocketData>('/v1/ws', {
    compression: uWS.DISABLED,
    // uWS drops a socket over maxPayloadLength without a close frame, so it gets headroom and the
    // documented limit is enforced in `message` with a proper 1009 close.
    maxPayloadLength: Math.max(opts.limits.maxFrameBytes * 16, 1024 * 1024),
    maxBackpressure: opts.maxBackpressure,
    closeOnBackpressureLimit: 1, // typed as a number upstream; a truthy value turns it on
    idleTimeout: opts.idleTimeoutSec,
    sendPingsAutomatically: true,

    upgrade: (res, req, context) => {
      const query = new URLSearchParams(req.getQuery() ?? '');
      const token = query.get('token') ?? bearer(req.getHeader('authorization'));
      const format: WireFormat = query.get('format') === 'json' ? 'json' : 'msgpack';
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      if (!originAllowed(req.getHeader('origin'), req.getHeader('host'), opts.allowedOrigins)) {
        metrics.wsRefused.inc({ reason: 'origin' });
        return refuse(res, new ParleyError('forbidden', 'this origin may not open a socket here (PARLEY_ALLOWED_ORIGINS)'));
      }
      const addr = remoteAddress(res);
      const down = opts.unavailable?.();
      if (down) {
        metrics.wsRefused.inc({ reason: 'unavailable' });
        return refuse(res, new ParleyError('unavailable', down));
      }
      if (conns.size + upgrading >= opts.maxConnections) {
        metrics.wsRefused.inc({ reason: 'capacity' });
        res.writeStatus(statusLine(503)).writeHeader('retry-after', '5').end('{"error":{"code":"over_capacity","message":"this node is at its connection limit","retryable":true}}');
        return;
      }
      // Before the token is checked: a refused upgrade costs no store read.
      const ipWait = ipUpgrades.take(ipKey(addr), Date.now());
      if (ipWait) {
        metrics.wsRefused.inc({ reason: 'rate' });
        return refuse(res, rateLimited('too many connections from your address', ipWait));
      }
      let aborted = false;
      res.onAborted(() => { aborted = true; });
      upgrading++;
      accounts.authenticate(token ?? undefined).then(
        (s) => {
          upgrading--;
          if (aborted) return;
          // A device reconnecting in a loop re-runs attach and sync each time: bounded per user.
          const userWait = userUpgrades.take(s.user, Date.now());
          if (userWait) {
            metrics.wsRefused.inc({ reason: 'rate' });
            return res.cork(() => refuse(res, rateLimited('this account connects too often', userWait)));
          }
          const renewed = accounts.renewal(s)?.token;
          // Not inside res.cork: in this uWS build, cork() after an asynchronous upgrade may read the new
          // WebSocket's memory as the HTTP response's and close the socket right after `open` (1006, seen on
          // the Scylla store, where authentication is a real round trip; fixed upstream in uWebSockets #1929).
          res.upgrade<SocketData>({ init: { id: conns.nextId(), user: s.user, device: s.device, format, addr, renewed }, conn: undefined }, key, protocol, extensions, context);
        },
        (err) => {
          upgrading--;
          if (aborted) return;
          const e = err instanceof ParleyError ? err : new ParleyError('internal', 'could not authenticate');
          res.cork(() => refuse(res, e));
        },
      );
    },

    open: (ws) => {
      const data = ws.getUserData();
      const init = data.init!;
      data.init = undefined; // not kept for the socket's life
      const conn = new SocketConnection(ws, init, edge);
      data.conn = conn;
      conns.add(conn);
      metrics.count('ws_opened');
      log('debug', 'socket opened', { conn: init.id, user: init.user, device: init.device, addr: init.addr });
      const { renewed } = init;
      conn.session.open().then(
        ({ acked }) => {
          conn.send({ t: 'welcome', user: conn.user, device: conn.device, acked, time: Date.now(), limits: opts.limits, ...(renewed ? { token: renewed } : {}) });
          analytics?.active(conn.user); // active: a socket of theirs attached to their user entity
          conn.ready = true;
        },
        (err) => {
          conn.send(errorFrame({}, err));
          // Signed out between the upgrade and the attach: the same close as a socket signed out while open.
          if (err instanceof ParleyError && err.code === 'signed_out') conn.close(CloseCodes.signedOut, 'this device was signed out');
          else conn.close(1011, 'could not attach');
        },
      );
    },

    message: (ws, message, isBinary) => {
      if (message.byteLength > opts.limits.maxFrameBytes) {
        metrics.count('frames_too_large');
        ws.end(1009, `frames are limited to ${opts.limits.maxFrameBytes} bytes`);
        return;
      }
      ws.getUserData().conn?.receive(message, isBinary, opts.limits);
    },

    drain: (ws) => ws.getUserData().conn?.checkDrain(),

    close: (ws) => {
      const conn = ws.getUserData().conn;
      if (!conn) return;
      conn.closed = true;
      conns.remove(conn);
      metrics.count('ws_closed');
      conn.session.closed();
    },
  });
}

/** An upgrade refused: the error as JSON, with Retry-After when it will pass later. */
function refuse(res: HttpResponse, e: ParleyError): void {
  res.writeStatus(statusLine(e.status)).writeHeader('content-type', 'application/json');
  if (e.retryAfterMs !== undefined) res.writeHeader('retry-after', String(Math.ceil(e.retryAfterMs / 1000)));
  res.end(JSON.stringify({ error: toErrorBody(e) }));
}

/** What every socket of this gateway shares: the per-device cost budgets, the send buffer's cap, the session's services. */
interface Edge {
  costs: KeyedLimiter; costBurst: number; maxBackpressure: number;
  node: string; rate: { perSecond: number; burst: number }; metrics: Metrics; services: SessionServices;
}

/**
 * Sends timed to their tick at once per socket, at most: a socket with more waiting (over 5 s of sends at
 * the frame rate limit) leaves the rest untimed, so the timing's memory per socket is bounded.
 */
const MAX_TIMED_SENDS = 1024;

class SocketConnection implements Connection, SessionSocket {
  readonly id: number;
  readonly user: UserId;
  readonly device: DeviceId;
  readonly session: ClientSession;
  closed = false;
  ready = false;
  private outbox?: (Uint8Array | string)[];
  /** Bytes in `outbox`, not yet handed to uWS. */
  private queued = 0;
  /** The user entity waits to hear that the send buffer has drained (a sync is sending its page in slices). */
  private drainWanted = false;
  private readonly format: WireFormat;
  private readonly bucket: TokenBucket;
  /** Frames received on this socket: the number of the one being handled names it in logs without an id. */
  private received = 0;
  /** `send` frames waiting for their tick (or error): cid → when the frame came (performance.now()) and where to. */
  private sends?: Map<string, { at: number; conv: ConversationId }>;
  /** When the sync going on started (-1: none) and its rid, which an error refusing it echoes. */
  private syncStart = -1;
  private syncRid: string | undefined;

  constructor(private readonly ws: WebSocket<SocketData>, init: SocketInit, private readonly edge: Edge) {
    this.id = init.id;
    this.user = init.user;
    this.device = init.device;
    this.format = init.format;
    this.bucket = new TokenBucket(edge.rate.perSecond, edge.rate.burst, Date.now());
    this.session = new ClientSession({ node: edge.node, id: init.id }, init.user, init.device, this, edge.services);
  }

  private get metrics(): Metrics {
    return this.edge.metrics;
  }

  entitiesLost(lost: (conv: ConversationId) => boolean): void {
    for (const [cid, s] of this.sends ?? []) {
      if (lost(s.conv)) this.send(errorFrame({ cid }, new ParleyError('moving', 'the node storing this conversation failed before it answered; send it again (same cid)')));
    }
  }

  usersMoved(moved: (user: UserId) => boolean): void {
    if (moved(this.user)) this.close(CloseCodes.restart, 'your account moved to another node; reconnect and sync');
    else this.session.followAgain(moved);
  }

  receive(message: ArrayBuffer, isBinary: boolean, limits: Limits): void {
    enterFrame(this.id, ++this.received);
    let read: ClientFrame['t'] | 'invalid' | 'limited' = 'limited';
    try {
      const now = Date.now();
      if (!this.bucket.take(now)) throw rateLimited('slow down: too many frames', this.bucket.waitMs(now));
      read = 'invalid';
      // A JSON frame can be far smaller than its body packed (a float: 4 characters, 9 bytes), so only a
      // binary frame's size bounds its body's.
      const frame = validateClientFrame(decodeFrame(message, isBinary), limits, isBinary ? message.byteLength : Infinity);
      read = frame.t;
      frameId(frame.t === 'send' ? frame.rid ?? frame.cid : 'rid' in frame ? frame.rid : undefined);
      // Expensive frames also draw on the device's budget, which a reconnect does not refill.
      const cost = frameCost(frame);
      if (cost > 0) {
        const wait = this.edge.costs.take(deviceKey(this.user, this.device), now, Math.min(cost, this.edge.costBurst));
        if (wait) throw rateLimited(`slow down: this ${frame.t} costs ${cost} of your device's budget`, wait);
      }
      this.startTimer(frame);
      this.session.handle(frame);
    } catch (err) {
      const ids = peekIds(message, isBinary);
      if (read === 'invalid') frameId(ids.rid ?? ids.cid); // the frame's own ids, as far as they can be read
      if (!(err instanceof ParleyError)) log('error', 'frame handler failed', { error: (err as Error)?.stack ?? String(err) });
      else log('debug', 'frame refused', { type: read, error: err.code });
      this.metrics.count('frames_rejected');
      this.send(errorFrame(ids, err));
    } finally {
      this.metrics.framesIn.add(read);
      leave();
    }
  }

  /** A send waits for its tick, a sync for its last page: timed from here (src/ops/metrics.ts). */
  private startTimer(frame: ClientFrame): void {
    if (frame.t === 'send') {
      const sends = (this.sends ??= new Map());
      if (sends.size < MAX_TIMED_SENDS && !sends.has(frame.cid)) {
        sends.set(frame.cid, { at: performance.now(), conv: frame.conv ?? directConversationId(this.user, frame.to!) });
      }
    } else if (frame.t === 'sync' && this.syncStart < 0) {
      // A paged sync is one: the `sync` for its next page finds the timer running.
      this.syncStart = performance.now();
      this.syncRid = frame.rid;
    }
  }

  /** A frame going out ends a timer: the tick or error of a send, the last `synced` of a sync. */
  private stopTimer(frame: ServerFrame): void {
    const m = this.metrics;
    switch (frame.t) {
      case 'sent': return this.ticked(frame.cid, frame.dup ? m.sendOutcome.duplicate : m.sendOutcome.sent);
      case 'synced':
        if (!frame.more && this.syncStart >= 0) {
          m.sync.observe((performance.now() - this.syncStart) / 1000);
          this.syncStart = -1;
        }
        return;
      case 'error':
        m.wsErrors.add(frame.code);
        if (frame.cid !== undefined) return this.ticked(frame.cid, m.sendOutcome.error);
        // A sync refused: its error echoes its rid (none when it had none), and a sync is not timed on.
        if (frame.rid === this.syncRid) this.syncStart = -1;
        return;
    }
  }

  private ticked(cid: string, into: Series): void {
    const s = this.sends?.get(cid);
    if (s === undefined) return;
    this.sends!.delete(cid);
    into.observe((performance.now() - s.at) / 1000);
  }

  /** Frames are queued and written once per event-loop turn, corked: one syscall for many frames. */
  send(frame: Outbound): boolean {
    if (this.closed) return false;
    if (frame.t === 'conn.drain') {
      this.drainWanted = true;
      if (!this.outbox) this.checkDrain(); // else the flush checks
      return true;
    }
    let data: Uint8Array | string;
    if (frame.t === 'delivery') {
      this.metrics.framesOut.add('msg');
      data = encodeDelivery(frame.ptr, frame.packed, this.format);
    } else {
      this.metrics.framesOut.add(frame.t);
      this.stopTimer(frame);
      data = encodeFrame(frame, this.format);
    }
    this.queued += typeof data === 'string' ? data.length * 3 : data.byteLength; // a UTF-16 unit is at most 3 UTF-8 bytes
    if (this.outbox) this.outbox.push(data);
    else {
      this.outbox = [data];
      scheduleFlush(this);
    }
    return true;
  }

  flush(): void {
    const frames = this.outbox;
    this.outbox = undefined;
    this.queued = 0;
    if (this.closed || !frames) return;
    this.ws.cork(() => {
      for (const data of frames) {
        if (this.ws.send(data, typeof data !== 'string') === 2) {
          // Over the backpressure cap: uWS closes the socket; the device resyncs by pointer when it returns.
          this.metrics.count('ws_slow_consumer');
          this.closed = true;
          return;
        }
      }
    });
    this.checkDrain();
  }

  /**
   * Bytes the socket can take now without nearing the backpressure cap: a sync sends its page in slices of
   * this size, so the buffer stays under half the cap (live frames have the other half). A JSON frame may be
   * up to twice its packed size (base64 bodies, escapes), so a JSON socket offers half.
   */
  room(): number {
    const free = this.edge.maxBackpressure / 2 - (this.closed ? Infinity : this.ws.getBufferedAmount() + this.queued);
    return Math.max(0, Math.floor(this.format === 'json' ? free / 2 : free));
  }

  /** Tells the waiting sync to go on once the buffer is down to a quarter of the cap (uWS `drain`, or a flush). */
  checkDrain(): void {
    if (!this.drainWanted || this.closed) return;
    if (this.ws.getBufferedAmount() + this.queued > this.edge.maxBackpressure / 4) return;
    this.drainWanted = false;
    this.session.drained(this.room());
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.flush(); // frames sent before the close go out before it
    this.ws.end(code, reason);
  }
}

const dirty: SocketConnection[] = [];
function scheduleFlush(c: SocketConnection): void {
  if (dirty.push(c) === 1) setImmediate(flushAll);
}
function flushAll(): void {
  for (const c of dirty.splice(0)) c.flush();
}

/** Best effort: the rid/cid of a frame that failed validation, so the client can match the error. */
function peekIds(message: ArrayBuffer, isBinary: boolean): { rid?: string; cid?: string } {
  try {
    const v = decodeFrame(message, isBinary) as { rid?: unknown; cid?: unknown };
    return {
      ...(typeof v?.rid === 'string' ? { rid: v.rid.slice(0, 64) } : {}),
      ...(typeof v?.cid === 'string' ? { cid: v.cid.slice(0, 64) } : {}),
    };
  } catch {
    return {};
  }
}
