import t from 'tap';
import { dispatch, spawn, start, stop, type ActorSystemRef, type Ref, type SupervisionContext } from 'nact';
import '../../src/actors/region.js'; // installs the dispatcher, as every node does

const system: ActorSystemRef = start();
t.teardown(() => stop(system));

const tick = () => new Promise<void>((r) => setImmediate(r));
let names = 0;
/** An actor running `f` on each message, keeping no state. */
type OnCrash = (msg: unknown, err: unknown, ctx: SupervisionContext<unknown, ActorSystemRef>) => symbol;
function actor(f: (msg: unknown) => unknown, onCrash?: OnCrash): Ref<unknown> {
  return spawn(system, async (state: undefined, msg: unknown) => { await f(msg); return state; }, `a${names++}`, onCrash ? { onCrash } : undefined) as Ref<unknown>;
}

t.test('an actor takes its messages one at a time, in order, however long each takes', async (t) => {
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const a = actor(async (m) => {
    log.push(`start ${m}`);
    if (m === 1) await gate;
    log.push(`end ${m}`);
  });
  for (const m of [1, 2, 3]) dispatch(a, m);
  await tick();
  t.strictSame(log, ['start 1'], 'the second waits for the first to finish');
  release();
  while (log.length < 6) await tick();
  t.strictSame(log, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
});

t.test('a hop between actors runs before the event loop turns again', async (t) => {
  const log: string[] = [];
  const c = actor((m) => { log.push(`c ${m}`); });
  const b = actor((m) => { log.push(`b ${m}`); dispatch(c, m); });
  setImmediate(() => log.push('next loop turn'));
  dispatch(b, 'x');
  await tick();
  await tick();
  t.strictSame(log, ['b x', 'c x', 'next loop turn'], 'nact alone would have taken one loop turn per hop');
});

t.test('a long burst lets the event loop in (every 5 ms), and every turn still runs', async (t) => {
  const n = 5000;
  let done = 0;
  let doneWhenLoopRan = -1;
  const spin = () => { const until = performance.now() + 0.05; while (performance.now() < until); };
  const actors = Array.from({ length: n }, () => actor(() => { spin(); done++; }));
  setImmediate(() => { doneWhenLoopRan = done; });
  for (const a of actors) dispatch(a, 'go');
  while (done < n) await tick();
  t.ok(doneWhenLoopRan > 0 && doneWhenLoopRan < n, `the loop ran after ${doneWhenLoopRan} of ${n} turns (50 µs each)`);
  t.equal(done, n, 'all ran');
});

t.test('a turn queued for an actor stopped meanwhile never runs', async (t) => {
  const log: unknown[] = [];
  const a = actor((m) => { log.push(m); });
  const b = actor(() => { stop(a); });
  dispatch(b, 'stop a');
  dispatch(a, 'after its stop');
  await tick();
  await tick();
  t.strictSame(log, [], 'nact drops it, as it would clear its immediate');
});

t.test("a turn that throws goes to the actor's supervision, and the next message is handled", async (t) => {
  const log: unknown[] = [];
  const crashes: unknown[] = [];
  const a = actor((m) => {
    if (m === 'bad') throw new Error('poison');
    log.push(m);
  }, (msg, err, ctx) => { crashes.push([msg, (err as Error).message]); return ctx.resume as symbol; });
  for (const m of ['ok 1', 'bad', 'ok 2']) dispatch(a, m);
  while (log.length < 2) await tick();
  t.strictSame(crashes, [['bad', 'poison']]);
  t.strictSame(log, ['ok 1', 'ok 2']);
});
