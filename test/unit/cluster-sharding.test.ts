import t from 'tap';
import { ClusterSharding } from '../../src/cluster/cluster-sharding.js';
import { shardOf } from '../../src/cluster/placement.js';
import { decodeSeam, type SeamMessage } from '../../src/messages/codec.js';
import type { Envelope } from '../../src/messages/seam.js';
import type { EntityMessages, EntityType } from '../../src/messages/entity-messages.js';
import { fakeClock } from '../helpers/fake-clock.js';

/**
 * The cluster's sharding adapter, on its own: which node a message goes to by the shard table, what is held
 * while a shard has no owner to send to, in what order it goes on, and how a message that can't go is answered.
 * The links and the table are plain objects here; test/cluster runs it between real nodes over real NATS.
 */

const SHARDS = 16;
const conv = (n: number) => `d.${'a'.repeat(4)}${n}.bbbb`;
/** Conversation ids of one shard, and of another. */
const ids = Array.from({ length: 200 }, (_, i) => conv(i));
const shardA = shardOf('conv', ids[0]!, SHARDS);
const inA = ids.filter((id) => shardOf('conv', id, SHARDS) === shardA);
const text = (cid: string) => ({ t: 'typing', user: cid, on: true }) as unknown as EntityMessages['conv'];

function setup(t: { teardown(fn: () => unknown): void }, sendOk = true) {
  const owners = new Map<number, string>();
  const sent: { to: string; m: SeamMessage }[] = [];
  const here: { type: EntityType; id: string; msg: unknown }[] = [];
  const answered: { msg: Envelope; code: string }[] = [];
  const s = new ClusterSharding('me', SHARDS,
    { owner: (shard) => (owners.has(shard) ? { node: owners.get(shard)! } : undefined) },
    { send: (to, item) => (sent.push({ to, m: decodeSeam(item) }), sendOk) },
    (msg, err) => answered.push({ msg, code: (err as { code: string }).code }),
    { ms: 1000, perShard: 3 });
  const live = new Set<string>();
  s.serve({ deliver: (type, id, msg) => void here.push({ type, id, msg }), isLive: (_type, id) => live.has(id) });
  t.teardown(() => s.stop());
  return { s, owners, sent, here, answered, live };
}

t.test('a served shard is delivered here; another node\'s goes over its link, marked as a first hop', async (t) => {
  const { s, owners, sent, here } = setup(t);
  s.startServing(shardA);
  s.tell('conv', inA[0]!, text('one'));
  t.same(here.map((h) => h.id), [inA[0]]);
  s.stopServing(shardA);
  owners.set(shardA, 'other');
  s.tell('conv', inA[1]!, text('two'));
  t.equal(sent.length, 1);
  t.match(sent[0], { to: 'other', m: { k: 'entity', type: 'conv', id: inA[1], fwd: 0 } });
});

t.test('a message that came over a link for a shard not served here is passed on once, then held', async (t) => {
  const { s, owners, sent } = setup(t);
  owners.set(shardA, 'third');
  s.arrive({ k: 'entity', type: 'conv', id: inA[0]!, msg: text('x'), fwd: 0 });
  t.match(sent, [{ to: 'third', m: { fwd: 1 } }], 'passed on to the owner the table names');
  s.arrive({ k: 'entity', type: 'conv', id: inA[0]!, msg: text('y'), fwd: 1 });
  t.equal(sent.length, 1, 'a second hop waits here instead of bouncing');
  t.equal(s.counts.held, 1);
});

t.test('held while the shard moves, then sent on in order to the new owner, and later messages queue behind', async (t) => {
  const { s, owners, sent } = setup(t);
  s.tell('conv', inA[0]!, text('1'));
  s.tell('conv', inA[1]!, text('2'));
  t.equal(sent.length, 0, 'no owner: held');
  owners.set(shardA, 'next');
  s.tell('conv', inA[2]!, text('3'));
  t.equal(sent.length, 0, 'still held: it must not overtake the two before it');
  s.ownerChanged(shardA);
  t.same(sent.map((x) => (x.m as { msg: { user: string } }).msg.user), ['1', '2', '3'], 'in the order told');
});

t.test('acquired here: what was held reaches the entities here, in order', async (t) => {
  const { s, owners, here } = setup(t);
  owners.set(shardA, 'me'); // the lease is this node's, but it does not serve the shard yet
  s.tell('conv', inA[0]!, text('1'));
  s.tell('conv', inA[1]!, text('2'));
  t.equal(here.length, 0);
  s.startServing(shardA);
  t.same(here.map((h) => (h.msg as { user: string }).user), ['1', '2']);
});

t.test('a shard being handed off: its live entities still get what they told themselves, nothing else', async (t) => {
  const { s, owners, here, live } = setup(t);
  owners.set(shardA, 'me');
  s.startServing(shardA);
  s.stopServing(shardA); // handing off: the lease is still this node's
  live.add(inA[0]!);
  s.tell('conv', inA[0]!, { t: 'stored', inc: 'i1', seq: 3 });
  s.tell('conv', inA[0]!, text('a new send'));
  s.tell('conv', inA[1]!, { t: 'stored', inc: 'i2', seq: 1 });
  t.same(here.map((h) => [h.id, (h.msg as { t: string }).t]), [[inA[0], 'stored']], 'the write\'s outcome reaches the entity still finishing');
  t.equal(s.counts.held, 2, 'the new send, and a completion for an entity no longer here, wait for the next owner');
});

t.test('held too long, or over the bound: answered with a retryable error, not dropped', async (t) => {
  const clock = fakeClock(t);
  const { s, answered } = setup(t);
  for (const [i, id] of inA.slice(0, 4).entries()) s.tell('conv', id, { ...text(`${i}`), origin: { node: 'me', id: i }, cid: `c${i}` } as never);
  t.same(answered.map((a) => [a.msg.cid, a.code]), [['c3', 'moving']], 'the fourth is over the bound of three');
  clock.tick(999);
  t.equal(answered.length, 1, 'not before the hold time');
  clock.tick(500);
  t.same(answered.map((a) => a.msg.cid), ['c3', 'c0', 'c1', 'c2'], 'then each held one is answered');
});

t.test('a full link answers the message at once', async (t) => {
  const { s, owners, answered } = setup(t, false);
  owners.set(shardA, 'other');
  s.tell('conv', inA[0]!, { ...text('x'), cid: 'full' } as never);
  t.match(answered, [{ msg: { cid: 'full' }, code: 'moving' }]);
});

t.test('asks: answered here, or the answer goes to the asking node by its reply address', async (t) => {
  const { s, owners, sent, here } = setup(t);
  s.startServing(shardA);
  const asked = s.ask<'conv', number>('conv', inA[0]!, (reply) => ({ t: 'visible', reply, user: 'u', seq: 1 }));
  const reply = (here[0]!.msg as { reply: string }).reply;
  t.match(reply, /^me:\d+$/);
  s.reply(reply, { ok: true, value: 7 });
  t.equal(await asked, 7);
  s.reply('other:12', { ok: false, error: { code: 'not_found', message: 'no', retryable: false } });
  t.match(sent.at(-1), { to: 'other', m: { k: 'reply', to: 'other:12', result: { ok: false } } });
  owners.clear();
});
