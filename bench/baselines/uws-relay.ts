/**
 * Baseline 1: the ceiling of this stack. A raw uWebSockets.js relay: a Map from user to socket and nothing
 * else — no auth, no storage, no acks, no receipts. Groups use uWS's own pub/sub (one topic per group).
 *
 * Wire format (binary frames, little endian; the load generator writes them):
 *   u32 to   — a user number, or 0x80000000 | group number for a group message
 *   …        — the rest is opaque to the relay and forwarded as is
 * A text frame "join:<g>,<g>,…" subscribes the socket to those groups.
 * The `uws-acked` target is this same relay, driven by a load generator whose recipients ack each batch back
 * to its sender through it: Parley's two frames in and two out per message, with nothing stored.
 * Connect with ws://host:port/?u=<user number>.
 *
 * Run: node dist/bench/baselines/uws-relay.js   (BENCH_HOST, BENCH_PORT; prints "listening on http://host:port")
 */
import uWS from 'uWebSockets.js';

interface Data { u: number }

const host = process.env.BENCH_HOST ?? '127.0.0.1';
const port = Number(process.env.BENCH_PORT ?? 0);
const GROUP = 0x80000000;

const users = new Map<number, uWS.WebSocket<Data>>();

const app = uWS.App().ws<Data>('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  // Large enough that a relay under load never drops (a drop would count as a lost message).
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 120,
  sendPingsAutomatically: true,
  upgrade: (res, req, context) => {
    const u = Number(new URLSearchParams(req.getQuery() ?? '').get('u'));
    res.upgrade<Data>({ u }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => { users.set(ws.getUserData().u, ws); },
  message: (ws, message, isBinary) => {
    if (!isBinary) {
      const text = Buffer.from(message).toString();
      if (text.startsWith('join:')) for (const g of text.slice(5).split(',')) if (g) ws.subscribe(`g${g}`);
      return;
    }
    const to = new Uint32Array(message, 0, 1)[0]!;
    if (to >= GROUP) ws.publish(`g${to - GROUP}`, message, true);
    else users.get(to)?.send(message, true);
  },
  close: (ws) => {
    const u = ws.getUserData().u;
    if (users.get(u) === ws) users.delete(u);
  },
});

app.listen(host, port, (s) => {
  if (!s) { process.stderr.write(`uws-relay: cannot listen on ${host}:${port}\n`); process.exit(1); }
  process.stdout.write(`uws-relay listening on http://${host}:${uWS.us_socket_local_port(s)}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
