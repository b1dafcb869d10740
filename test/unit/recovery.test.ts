import t from 'tap';
import FakeTimers from '@sinonjs/fake-timers';
import { recoverConversations } from '../../src/actors/recovery.js';
import { LocalSharding } from '../../src/routing/local-sharding.js';
import { ParleyError } from '../../src/protocol/errors.js';
import type { Store } from '../../src/store/store.js';

// A store still coming up: the listing fails twice, then answers. Recovery waits 1 s, then 2 s, and goes on.
t.test('a listing that fails is tried again (1 s, then 2 s) until it answers; every remembered conversation is activated', async (t) => {
  const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  t.teardown(() => clock.uninstall());
  let calls = 0;
  const store = { rememberedConversations: async () => { if (++calls <= 2) throw new ParleyError('store_unavailable', 'down'); return ['d.a.b', 'g.x']; } } as unknown as Store;
  const sharding = new LocalSharding('n1');
  const activated: string[] = [];
  sharding.serve({ deliver: (_type, id, msg) => { activated.push(id); sharding.reply((msg as { reply: string }).reply, { ok: true, value: true }); }, isLive: () => false });
  const done = recoverConversations(store, sharding, () => false);
  await clock.tickAsync(999);
  t.equal(calls, 1, 'the first failure waits a second before the second try');
  await clock.tickAsync(1);
  t.equal(calls, 2, 'the second at 1 s, which waits 2 s');
  await clock.tickAsync(2000);
  t.equal(await done, 2, 'the third try lists them');
  t.equal(calls, 3);
  t.strictSame(activated.sort(), ['d.a.b', 'g.x']);
  sharding.stop();
});

t.test('a node that stops while the store can\'t list stops trying', async (t) => {
  const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  t.teardown(() => clock.uninstall());
  let stopped = false;
  const store = { rememberedConversations: async () => { throw new ParleyError('store_unavailable', 'down'); } } as unknown as Store;
  const done = recoverConversations(store, new LocalSharding('n1'), () => stopped);
  await clock.tickAsync(1000);
  stopped = true;
  await clock.tickAsync(2000);
  t.equal(await done, 0);
});
