import type { TestDevice } from './clients.js';
import { texts, waitFor } from './clients.js';
import type { SentFrame } from '../../src/protocol/frames.js';
import { ServerError } from '../../src/client/parley-client.js';

import type { TapTest } from '../store/conformance.js';

/**
 * Sends one text until the node ticks it: a send cut off by a lost socket (or refused as retryable) is sent
 * again with the same client id once the client is connected again, as an app would; the node's client-id
 * index makes the resend of a stored one a duplicate tick, never a second message. Bounded by `deadline`.
 */
export async function sendUntilTicked(d: TestDevice, to: string, text: string, cid: string, deadline: number): Promise<SentFrame> {
  for (;;) {
    try {
      if (!d.client.connected) throw new ServerError('not_connected', 'waiting for the reconnect', true);
      return await d.client.send({ to }, 'text', { text }, { cid });
    } catch (err) {
      if (!(err instanceof ServerError) || !err.retryable || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, err.retryAfterMs ?? 20));
    }
  }
}

/**
 * A node dies under a 1:1 chat: alice sends `before` texts to bob (delivered), then `during` more one after
 * another while `kill` runs after the first few are ticked; both clients fail over by themselves. Then every
 * ticked text reaches bob once, in order, and what he had before is not delivered again (he resumed from
 * his pointer). Returns how long bob was without a socket (his socket's close to his next welcome).
 */
export async function chatThroughFailover(t: TapTest, alice: TestDevice, bob: TestDevice, kill: () => Promise<void>, o: { before?: number; during?: number } = {}): Promise<{ gapMs: number }> {
  const before = o.before ?? 10;
  const during = o.during ?? 30;
  for (let i = 1; i <= before; i++) await alice.client.text({ to: bob.user }, `m${i}`);
  await bob.waitFor(() => bob.messages.length >= before || undefined, 10_000, 'the messages before the failure');
  const welcomes = bob.frames.filter((f) => f.t === 'welcome').length;

  const deadline = Date.now() + 40_000;
  let ticked = 0;
  let killed: Promise<void> | undefined;
  let lostAt = 0;
  let backAt = 0;
  bob.client.on('close', () => { lostAt ||= Date.now(); });
  bob.client.on('welcome', () => { if (lostAt) backAt ||= Date.now(); });
  const sender = (async () => {
    for (let i = before + 1; i <= before + during; i++) {
      await sendUntilTicked(alice, bob.user, `m${i}`, `fail-${i}`, deadline);
      ticked++;
      if (ticked === 5) killed = kill();
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await sender;
  await killed;
  const all = Array.from({ length: before + during }, (_, i) => `m${i + 1}`);
  await waitFor(() => texts(bob.messages).length + texts(bob.late).length >= all.length || undefined, 20_000, 'every ticked message at bob')
    .catch((err: unknown) => {
      t.comment(`bob has ${JSON.stringify(texts(bob.messages))}, late ${JSON.stringify(texts(bob.late))}; closes ${JSON.stringify(bob.closes)}; connected ${bob.client.connected} to ${bob.client.url}`);
      throw err;
    });
  const got = [...texts(bob.messages), ...texts(bob.late)];
  t.strictSame([...got].sort(), [...all].sort(), `each of the ${all.length} ticked messages reached bob exactly once`);
  t.strictSame(texts(bob.messages), all.filter((x) => texts(bob.messages).includes(x)), 'in order');
  t.equal(bob.late.length, 0, 'none out of order (late)');
  const seqs = bob.messages.map((m) => m.seq);
  t.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!), 'seqs increase');
  t.ok(bob.frames.filter((f) => f.t === 'welcome').length > welcomes, 'bob reconnected by himself');
  const gapMs = backAt - lostAt;
  t.comment(`bob was without a socket for ${gapMs} ms`);
  return { gapMs };
}
