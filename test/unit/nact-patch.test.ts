import t from 'tap';
import { dispatch, query, spawn, start, stop, type ActorContext, type Ref } from 'nact';

// patches/nact+7.6.2.patch shares one empty children Map among actors until their first child, and drops
// a run Immediate. What it must not change: each actor sees its own children, and messages keep their order.
t.test('an actor given a child sees it; its siblings see none; a stopped child is gone', async (t) => {
  const system = start();
  t.teardown(() => stop(system));
  type Msg = { t: 'spawn' } | { t: 'children'; sender: Ref<string[]> };
  const behaviour = (_s: undefined, msg: Msg, ctx: ActorContext<Msg, Ref<never>>): undefined => {
    if (msg.t === 'spawn') spawn(ctx.self, (s: undefined) => s, 'kid');
    else dispatch(msg.sender, [...ctx.children.keys()]);
    return undefined;
  };
  const parent = spawn(system, behaviour, 'parent');
  const sibling = spawn(system, behaviour, 'sibling');
  const children = (ref: Ref<Msg>) => query(ref, (sender: Ref<string[]>) => ({ t: 'children' as const, sender }), 2000);

  t.same(await children(parent), [], 'no children at first');
  dispatch(parent, { t: 'spawn' });
  t.same(await children(parent), ['kid'], 'the parent sees its child');
  t.same(await children(sibling), [], 'its sibling does not');
  const late = spawn(system, behaviour, 'late');
  t.same(await children(late), [], 'nor does an actor spawned after it');
});

t.test('an actor handles its messages in order, one at a time, across event-loop turns', async (t) => {
  const system = start();
  t.teardown(() => stop(system));
  type Msg = { n: number } | { sender: Ref<number[]> };
  const seen: number[] = [];
  const actor = spawn(system, async (s: number[] = [], msg: Msg) => {
    if ('sender' in msg) { dispatch(msg.sender, s); return s; }
    await new Promise((r) => setImmediate(r));
    seen.push(msg.n);
    return [...s, msg.n];
  }, 'ordered');
  for (let n = 0; n < 50; n++) dispatch(actor, { n });
  const state = await query(actor, (sender: Ref<number[]>) => ({ sender }), 2000);
  t.same(state, Array.from({ length: 50 }, (_, n) => n), 'state saw every message in order');
  t.same(seen, state, 'and handled them one at a time');
});

t.test('a handler that throws or rejects reaches its supervisor; the actor goes on with the next message', async (t) => {
  const system = start();
  t.teardown(() => stop(system));
  type Msg = { t: 'throw' } | { t: 'reject' } | { t: 'count'; sender: Ref<number> };
  const crashes: string[] = [];
  const actor = spawn(system, (n: number = 0, msg: Msg, ctx: ActorContext<Msg, Ref<never>>): number | Promise<number> => {
    if (msg.t === 'throw') throw new Error('thrown');
    if (msg.t === 'reject') return Promise.reject(new Error('rejected'));
    dispatch(msg.sender, n + 1);
    t.throws(() => ctx.children.set('x', ctx.self as never), /snapshot/, 'the context\'s children are a snapshot');
    return n + 1;
  }, 'crashy', { onCrash: (_msg, err, ctx) => { crashes.push(String(err?.message)); return ctx.resume; } });
  dispatch(actor, { t: 'throw' });
  dispatch(actor, { t: 'reject' });
  const count = (sender: Ref<number>) => ({ t: 'count' as const, sender });
  t.equal(await query(actor, count, 2000), 1, 'handled after both crashes');
  t.equal(await query(actor, count, 2000), 2, 'with its state kept (resume)');
  t.same(crashes, ['thrown', 'rejected'], 'each crash reached the supervisor, in order');
});
