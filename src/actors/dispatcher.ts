import { performance } from 'node:perf_hooks';

/**
 * The part of a nact actor (nact/lib/actor.js, 7.x) that runs one turn; every actor, persistent ones too,
 * inherits `handleMessage` from it.
 */
interface NactActor {
  stopped: boolean;
  busy: boolean;
  state: unknown;
  f: (this: unknown, state: unknown, message: unknown, ctx: unknown) => unknown;
  createContext(sender: unknown): unknown;
  afterMessage(): unknown;
  processNext(): void;
  handleFault(message: unknown, sender: unknown, err: unknown): unknown;
}

/** A burst of turns runs at most this long before the event loop gets its I/O and timers in. */
const BURST_MS = 5;

/** Turns waiting to run: actor, message, sender, flat. */
let queue: unknown[] = [];
let head = 0;
let scheduled = false;
/**
 * When the event loop last had control (0: it has since the last burst). Turns queued by turns, and by
 * anything else before the loop turns again, belong to the same burst: one budget.
 */
let burstStart = 0;

const startBurst = (): void => {
  if (burstStart !== 0) return;
  burstStart = performance.now();
  setImmediate(endBurst); // runs once the loop has turned: whatever comes next is a new burst
};
const endBurst = (): void => { burstStart = 0; };

/**
 * nact runs each actor turn in a setImmediate of its own, so a message from one entity to another waits for
 * the next event-loop iteration, and under load an iteration lasts milliseconds: a chat message's eight hops
 * took eight of them (at 5,000 msgs/s a send waited 35 ms on average for its tick, parley_send_seconds).
 * This dispatcher runs turns from one queue instead, as soon as the code that queued them returns (a
 * microtask), and the turns those queue, until the queue is empty or the burst has held the event loop for
 * BURST_MS (then the rest waits for its next turn): Akka's dispatcher with a throughput deadline. Each actor
 * still takes one message at a time, in order, with nact's own state, contexts and supervision; only when a
 * turn starts changes. Installed once, by the regions (src/actors/region.ts).
 */
export function installDispatcher(actorClass: { prototype: object }): void {
  const proto = actorClass.prototype as NactActor & { handleMessage(message: unknown, sender: unknown): void; parleyDispatcher?: true };
  if (proto.parleyDispatcher) return;
  proto.parleyDispatcher = true;
  proto.handleMessage = function (this: NactActor, message: unknown, sender: unknown): void {
    this.busy = true;
    queue.push(this, message, sender);
    if (scheduled) return;
    scheduled = true;
    startBurst();
    queueMicrotask(run);
  };
}

/** Turns queued while it runs join its loop; those queued by their continuations schedule the next run. */
function run(): void {
  while (head < queue.length) {
    const actor = queue[head] as NactActor;
    const message = queue[head + 1];
    const sender = queue[head + 2];
    queue[head] = queue[head + 1] = queue[head + 2] = undefined;
    head += 3;
    // Stopped while it waited: nact's stop() would have cleared the turn's immediate, so it never runs.
    if (!actor.stopped) void turn(actor, message, sender);
    if (head % 192 === 0 && head < queue.length && performance.now() - burstStart > BURST_MS) {
      queue = queue.slice(head);
      head = 0;
      setImmediate(resume);
      return;
    }
  }
  queue = [];
  head = 0;
  scheduled = false;
}

/** The loop has had its turn: the rest of the queue is a new burst. */
function resume(): void {
  burstStart = 0;
  startBurst();
  run();
}

/** nact's own turn (Actor.handleMessage's body): the new state, then the next message, or the fault. */
async function turn(actor: NactActor, message: unknown, sender: unknown): Promise<void> {
  try {
    const ctx = actor.createContext(sender);
    const next = await Promise.resolve(actor.f.call(ctx, actor.state, message, ctx));
    actor.state = next;
    actor.afterMessage();
    actor.processNext();
  } catch (e) {
    void actor.handleFault(message, sender, e);
  }
}
