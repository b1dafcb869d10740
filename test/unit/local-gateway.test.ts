import t from 'tap';
import { ConnectionRegistry, type Connection } from '../../src/routing/connections.js';
import { LocalGateway, LocalPubSub } from '../../src/routing/local-gateway.js';
import type { Gateway } from '../../src/routing/gateway.js';
import type { ConnRef, Outbound } from '../../src/messages/seam.js';

class Recording implements Connection {
  readonly got: Outbound[] = [];
  closed?: number;
  constructor(readonly id: number, readonly user: string, readonly device: string, readonly ready = true) {}
  send(frame: Outbound): boolean { this.got.push(frame); return true; }
  close(code: number): void { this.closed = code; }
}

const pong = { t: 'pong' as const, time: 1 };

t.test('a connection ref is honoured with its node: another node\'s socket number never reaches a local socket', async (t) => {
  const conns = new ConnectionRegistry();
  const local = new Recording(1, 'ua', 'd1');
  conns.add(local);
  const forwarded: [ConnRef, Outbound][] = [];
  const remote: Gateway = { send: (c, f) => forwarded.push([c, f]), close: () => undefined };
  const g = new LocalGateway('n1', conns, true, remote);
  g.send({ node: 'n2', id: 1 }, pong);
  g.close({ node: 'n2', id: 1 }, 4001, 'x');
  t.strictSame(local.got, [], 'the local socket with the same number got nothing');
  t.equal(local.closed, undefined, 'and was not closed');
  t.strictSame(forwarded, [[{ node: 'n2', id: 1 }, pong]], 'the frame went to the cluster adapter');
  g.send({ node: 'n1', id: 1 }, pong);
  t.strictSame(local.got, [pong], 'a ref naming this node reaches the socket (through the seam codec)');
  g.send({ node: 'n1', id: 99 }, pong); // gone: dropped, nothing thrown
  new LocalGateway('n1', conns).send({ node: 'n2', id: 1 }, pong); // no cluster: dropped with a warning
  t.equal(local.got.length, 1);
});

t.test('pub/sub reaches every ready socket of the user and skips one still attaching', async (t) => {
  const conns = new ConnectionRegistry();
  const a = new Recording(1, 'ua', 'd1');
  const b = new Recording(2, 'ua', 'd2', false);
  const c = new Recording(3, 'ub', 'd3');
  for (const x of [a, b, c]) conns.add(x);
  const p = new LocalPubSub(conns, true);
  p.publish('ua', pong);
  t.strictSame([a.got.length, b.got.length, c.got.length], [1, 0, 0]);
  p.closeAll('ua', 1012, 'restart');
  t.strictSame([a.closed, b.closed, c.closed], [1012, 1012, undefined]);
});
