/**
 * Baseline 2: what a Node developer would write with Socket.IO. Users are a Map from user to socket, groups
 * are Socket.IO rooms; events are relayed as they come, with Socket.IO's default settings.
 *
 *   client → server  "m" {to, …}        relay to user `to`
 *                    "m" {g, …}         relay to every other member of room g
 *                    "join" [g, …]      join rooms
 * Connect with ws://host:port/socket.io/?EIO=4&transport=websocket&u=<user number>.
 *
 * Run: node dist/bench/baselines/socketio-relay.js   (BENCH_HOST, BENCH_PORT; prints "listening on http://host:port")
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';

const host = process.env.BENCH_HOST ?? '127.0.0.1';
const port = Number(process.env.BENCH_PORT ?? 0);

interface Relayed { to?: number; g?: number; [k: string]: unknown }

const http = createServer();
const io = new Server(http, { serveClient: false });
const users = new Map<string, Socket>();

io.on('connection', (socket) => {
  const u = String(socket.handshake.query.u);
  users.set(u, socket);
  socket.on('join', (groups: number[]) => { for (const g of groups) void socket.join(`g${g}`); });
  socket.on('m', (m: Relayed) => {
    if (m.g !== undefined) socket.to(`g${m.g}`).emit('m', m);
    else users.get(String(m.to))?.emit('m', m);
  });
  socket.on('disconnect', () => { if (users.get(u) === socket) users.delete(u); });
});

http.listen(port, host, () => {
  process.stdout.write(`socketio-relay listening on http://${host}:${(http.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
