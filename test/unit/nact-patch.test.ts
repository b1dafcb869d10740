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
