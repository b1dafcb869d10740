import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { waitFor } from './clients.js';

type Frame = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/**
 * The protocol spoken by hand, without the SDK: every frame the server sends is recorded as decoded (with
 * whether it came as a binary or a text WebSocket frame); nothing is acked or synced unless the test does it.
 */
export class RawSocket {
  readonly frames: Frame[] = [];
  /** For each recorded frame, whether it arrived as a binary WebSocket frame. */
  readonly binary: boolean[] = [];
  closed?: { code: number; reason: string };
  private ridSeq = 0;
  private readonly closedP: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket, readonly format: 'msgpack' | 'json') {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.binary.push(isBinary);
      this.frames.push((isBinary ? packr.unpack(data) : JSON.parse(data.toString('utf8'))) as Frame);
    });
    this.closedP = new Promise((resolve) => ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      resolve(this.closed);
    }));
    ws.on('error', () => undefined); // a close follows
  }

  /** Opens a socket and waits for the welcome frame. `options` go to `ws` (e.g. `ca` for wss, `localAddress`). */
  static async open(url: string, token: string, format: 'msgpack' | 'json' = 'msgpack', options?: WebSocket.ClientOptions): Promise<RawSocket> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws?token=${encodeURIComponent(token)}&format=${format}`, options);
    const s = new RawSocket(ws, format);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    await s.next((f) => f.t === 'welcome', 'welcome');
    return s;
  }

  /** Sends a frame in the socket's format. */
  send(frame: Frame): void {
    this.ws.send(this.format === 'msgpack' ? packr.pack(frame) : JSON.stringify(frame));
  }

  /** Sends bytes or text exactly as given. */
  sendRaw(data: Uint8Array | string, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary });
  }

  /** The first recorded frame (from index `from`) matching `pred`. */
  next(pred: (f: Frame) => boolean, what = 'frame', ms = 5000, from = 0): Promise<Frame> {
    return waitFor(() => this.frames.slice(from).find(pred), ms, what);
  }

  /** Sends a request with a fresh rid and resolves with its `res` or `error` frame. */
  async request(frame: Frame): Promise<Frame> {
    const rid = `raw${++this.ridSeq}`;
    this.send({ ...frame, rid });
    return this.next((f) => (f.t === 'res' || f.t === 'error') && f.rid === rid, `answer to ${frame.t}`);
  }

  /** A ping round trip: everything the server wrote before answering has arrived once this resolves. */
  async roundTrip(): Promise<void> {
    const rid = `ping${++this.ridSeq}`;
    this.send({ t: 'ping', rid });
    await this.next((f) => f.t === 'pong' && f.rid === rid, 'pong');
  }

  whenClosed(): Promise<{ code: number; reason: string }> { return this.closedP; }

  async close(): Promise<void> {
    if (!this.closed) this.ws.close(1000);
    await this.closedP;
  }
}
