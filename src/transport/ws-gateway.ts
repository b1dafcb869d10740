import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import uWS from 'uWebSockets.js';
import { ParleyError, errorFrame } from '../protocol/errors.js';
import type { DeviceId, UserId } from '../protocol/ids.js';
import type { Limits, ServerFrame } from '../protocol/frames.js';
import { decodeFrame, encodeDelivery, encodeFrame, type WireFormat } from '../protocol/codec.js';
import { validateClientFrame } from '../protocol/validate.js';
import type { Accounts } from '../accounts/accounts.js';
import { ClientSession, type Directory } from '../session/client-session.js';
import type { MediaGate } from '../media/media-access.js';
import { log } from '../log.js';
import type { ConnectionRegistry, Connection } from './connections.js';
import type { Outbound, Router } from './router.js';
import { TokenBucket } from './rate-limit.js';
import { bearer, statusLine } from '../http/http-io.js';
import type { Metrics } from '../ops/metrics.js';

interface SocketData {
  id: number;
  user: UserId;
  device: DeviceId;
  format: WireFormat;
  conn?: SocketConnection;
}

export interface GatewayOptions {
  node: string;
  maxConnections: number;
  maxBackpressure: number;
  idleTimeoutSec: number;
  rate: { perSecond: number; burst: number };
  limits: Limits;
}

/**
 * The client edge: `GET /v1/ws` upgrades an authenticated request to a WebSocket; each frame is decoded
 * (msgpack on binary frames, JSON on text frames), validated, rate-limited and handed to the socket's
 * ClientSession. Outbound frames are encoded in the format the client chose when it connected.
 */
export function mountGateway(
  app: TemplatedApp,
  deps: { accounts: Accounts; router: Router; conns: ConnectionRegistry; metrics: Metrics; directory: Directory; media?: MediaGate },
  opts: GatewayOptions,
): void {
  const { accounts, router, conns, metrics, directory, media } = deps;
  let upgrading = 0;

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
      if (conns.size + upgrading >= opts.maxConnections) {
        metrics.count('ws_refused_capacity');
        res.writeStatus(statusLine(503)).writeHeader('retry-after', '5').end('{"error":{"code":"over_capacity","message":"this node is at its connection limit","retryable":true}}');
        return;
      }
      let aborted = false;
      res.onAborted(() => { aborted = true; });
      upgrading++;
      accounts.authenticate(token ?? undefined).then(
        (s) => {
          upgrading--;
          if (aborted) return;
          res.cork(() => res.upgrade<SocketData>({ id: conns.nextId(), user: s.user, device: s.device, format, conn: undefined }, key, protocol, extensions, context));
        },
        (err) => {
          upgrading--;
          if (aborted) return;
          const e = err instanceof ParleyError ? err : new ParleyError('internal', 'could not authenticate');
          res.cork(() => res.writeStatus(statusLine(e.status)).writeHeader('content-type', 'application/json')
            .end(JSON.stringify({ error: { code: e.code, message: e.message, retryable: e.retryable } })));
        },
      );
    },

    open: (ws) => {
      const data = ws.getUserData();
      const conn = new SocketConnection(ws, data, opts.node, router, opts.rate, metrics, directory, media);
      data.conn = conn;
      conns.add(conn);
      metrics.count('ws_opened');
      conn.session.open().then(
        ({ acked }) => {
          conn.send({ t: 'welcome', user: data.user, device: data.device, acked, time: Date.now(), limits: opts.limits });
          conn.ready = true;
        },
        (err) => { conn.send(errorFrame({}, err)); conn.close(1011, 'could not attach'); },
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

class SocketConnection implements Connection {
  readonly id: number;
  readonly user: UserId;
  readonly device: DeviceId;
  readonly session: ClientSession;
  closed = false;
  ready = false;
  private outbox?: (Uint8Array | string)[];
  private readonly format: WireFormat;
  private readonly bucket: TokenBucket;

  constructor(
    private readonly ws: WebSocket<SocketData>, data: SocketData, node: string, router: Router,
    rate: { perSecond: number; burst: number }, private readonly metrics: Metrics, directory: Directory, media?: MediaGate,
  ) {
    this.id = data.id;
    this.user = data.user;
    this.device = data.device;
    this.format = data.format;
    this.bucket = new TokenBucket(rate.perSecond, rate.burst, Date.now());
    this.session = new ClientSession({ node, id: data.id }, data.user, data.device, router, (f) => this.send(f), directory, media);
  }

  receive(message: ArrayBuffer, isBinary: boolean, limits: Limits): void {
    this.metrics.count('frames_in');
    try {
      if (!this.bucket.take(Date.now())) throw new ParleyError('rate_limited', 'slow down: too many frames');
      // A JSON frame can be far smaller than its body packed (a float: 4 characters, 9 bytes), so only a
      // binary frame's size bounds its body's.
      const frame = validateClientFrame(decodeFrame(message, isBinary), limits, isBinary ? message.byteLength : Infinity);
      this.session.handle(frame);
    } catch (err) {
      if (!(err instanceof ParleyError)) log('error', 'frame handler failed', { error: (err as Error)?.stack ?? String(err) });
      this.metrics.count('frames_rejected');
      this.send(errorFrame(peekIds(message, isBinary), err));
    }
  }

  /** Frames are queued and written once per event-loop turn, corked: one syscall for many frames. */
  send(frame: Outbound): boolean {
    if (this.closed) return false;
    if (frame.t === 'session.devices') return (this.session.devicesChanged(frame.devices), true);
    const data = frame.t === 'delivery' ? encodeDelivery(frame.ptr, frame.packed, this.format) : encodeFrame(frame as ServerFrame, this.format);
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
    if (this.closed || !frames) return;
    this.ws.cork(() => {
      for (const data of frames) {
        if (this.ws.send(data, typeof data !== 'string') === 2) {
          // Over the backpressure cap: uWS closes the socket; the device resyncs by pointer when it returns.
          this.metrics.count('ws_slow_consumer');
          return;
        }
      }
    });
    this.metrics.count('frames_out', frames.length);
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
