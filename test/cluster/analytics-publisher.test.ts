import t from 'tap';
import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { startNatsCluster, type NatsCluster } from '../helpers/nats.js';
import { ANALYTICS_STREAM, AnalyticsStream, BATCH_EVENTS, pseudonymizer, streamEvent, type StreamEvent } from '../../src/analytics/stream.js';

/** The analytics publisher against a real nats-server with JetStream: batches, and failures that only count. */

let nats: NatsCluster;
t.before(async () => { nats = await startNatsCluster(1); });
t.teardown(() => nats.stop());

t.test('streamEvent: envelope fields only, the user as a stable pseudonym', async (t) => {
  const p = pseudonymizer(Buffer.from('secret'));
  t.equal(p('alice'), p('alice'));
  t.not(p('alice'), p('bob'));
  t.not(pseudonymizer(Buffer.from('other'))('alice'), p('alice'), 'another secret, another pseudonym');
  t.strictSame(streamEvent({ type: 'message', kind: 'image', group: true }, 'n1', 5, p), { v: 1, type: 'message', t: 5, node: 'n1', kind: 'image', group: true });
  t.strictSame(streamEvent({ type: 'media', bytes: 10, user: 'alice' }, 'n1', 5, p), { v: 1, type: 'media', t: 5, node: 'n1', bytes: 10, user: p('alice') });
  t.strictSame(streamEvent({ type: 'push' }, 'n1', 5, p), { v: 1, type: 'push', t: 5, node: 'n1' });
});

t.test('events go in batches of at most 500 (or after 250 ms); once the stream is gone they are dropped and counted, never thrown', async (t) => {
  const nc = await connect({ servers: nats.urls });
  t.teardown(() => nc.close());
  let published = 0;
  let dropped = 0;
  const s = new AnalyticsStream(nc, 'nA', randomBytes(32), { published: (n) => { published += n; }, dropped: (n) => { dropped += n; } });
  await s.ensure(1);
  await s.ensure(1); // a second node finds it there
  for (let i = 0; i < 1_200; i++) s.sink({ type: 'message', kind: 'text', group: i % 2 === 0 });
  const until = Date.now() + 5_000;
  while (published < 1_200 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.equal(published, 1_200, 'every event acknowledged (the last 200 after the batch timer)');
  const consumer = await jetstream(nc).consumers.get(ANALYTICS_STREAM);
  const sizes: number[] = [];
  for await (const m of await consumer.fetch({ max_messages: 10, expires: 1_000 })) {
    t.equal(m.subject, 'parley.analytics.nA');
    sizes.push((m.json() as StreamEvent[]).length);
  }
  t.strictSame(sizes, [BATCH_EVENTS, BATCH_EVENTS, 200], 'three NATS messages');

  await (await jetstreamManager(nc)).streams.delete(ANALYTICS_STREAM);
  t.doesNotThrow(() => { for (let i = 0; i < 10; i++) s.sink({ type: 'push' }); s.publish(); });
  const until2 = Date.now() + 10_000;
  while (dropped < 10 && Date.now() < until2) await new Promise((r) => setTimeout(r, 20));
  t.equal(dropped, 10, 'a failed publish drops its batch and counts it');
  t.equal(published, 1_200);
});
