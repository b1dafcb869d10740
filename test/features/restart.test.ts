import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Fixture, http } from '../helpers/fixture.js';
import { signIn, texts } from '../helpers/clients.js';
import { uploadMedia, me } from '../../src/client/accounts-api.js';
import type { PresenceFrame } from '../../src/protocol/frames.js';

/** A node stopped and started again on the same data directory keeps accounts, history and inboxes. */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

t.test('a graceful restart keeps accounts, history, groups, settings and undelivered inbox entries', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const carol = await f.device(t);
  await alice.client.setProfile({ name: 'Alice' });
  await bob.client.setLastSeenPrivacy('nobody');
  t.same(await bob.client.registerPush('apns', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'), { registered: true });
  const g = await alice.client.createGroup('Survivors', [bob.user, carol.user]);
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'before' }, { cid: 'before-restart' });
  await bob.waitMessage((m) => m.seq === first.seq);
  const photo = randomBytes(2000);
  const media = await uploadMedia(f.url, alice.session.token, photo, 'image/webp');
  const shown = await alice.client.send({ conv: g.conv }, 'image', { media: media.id }); // so bob may fetch it
  await bob.waitMessage((m) => m.conv === g.conv && m.seq === shown.seq);
  const ptr = bob.client.ptr;
  await bob.close();

  // Sent while bob is away: stored in the conversations and waiting in his inbox across the restart.
  const waiting = [];
  for (let i = 1; i <= 3; i++) waiting.push(await alice.client.text({ to: bob.user }, `waiting ${i}`));
  const inGroup = await carol.client.text({ conv: g.conv }, 'group, waiting');
  await alice.close();
  await carol.close();

  await f.restart();

  // Accounts: tokens still valid (the secret is in the data dir), the number logs in to the same user.
  t.match(await me(f.url, alice.session.token), { valid: true, user: alice.user, device: alice.session.device, name: 'Alice' });
  const again = await signIn(f.url, bob.phone);
  t.same([again.session.user, again.session.created], [bob.user, false], 'bob\'s number is still bob');

  const bobBack = await f.device(t, { session: bob.session, phone: bob.phone, ptr });
  await bobBack.waitFrame((x) => x.t === 'synced');
  t.same(texts(bobBack.messages), ['waiting 1', 'waiting 2', 'waiting 3', 'group, waiting'], 'the inbox survived, in order');
  t.same(bobBack.ptrs, [ptr + 1, ptr + 2, ptr + 3, ptr + 4], 'pointers carry on');
  t.same(bobBack.messages.map((m) => m.seq), [...waiting.map((w) => w.seq), inGroup.seq]);

  const aliceBack = await f.device(t, { session: alice.session, phone: alice.phone });
  t.same(texts(await aliceBack.client.history(first.conv)), ['before', 'waiting 1', 'waiting 2', 'waiting 3'], 'history survived');
  const next = await aliceBack.client.text({ to: bob.user }, 'after');
  t.equal(next.seq, waiting.at(-1)!.seq + 1, 'seqs continue');
  const dup = await aliceBack.client.send({ to: bob.user }, 'text', { text: 'before' }, { cid: 'before-restart' });
  t.same([dup.seq, dup.dup], [first.seq, true], 'a resend from before the restart is still a duplicate');

  t.same(await aliceBack.client.groupInfo(g.id), g, 'the group survived');
  t.equal((await aliceBack.client.text({ conv: g.conv }, 'group after')).seq, inGroup.seq + 1);
  t.match(await aliceBack.client.getProfile(alice.user), { name: 'Alice' }, 'the profile survived');
  aliceBack.client.subscribePresence([bob.user]);
  t.same(await aliceBack.waitFrame((x): x is PresenceFrame => x.t === 'presence' && x.user === bob.user), { t: 'presence', user: bob.user, online: false },
    'bob\'s privacy survived: online, but hidden');
  const got = await http(f.url, `/v1/media/${media.id}`, { headers: { authorization: `Bearer ${bob.session.token}` } });
  t.ok(got.bytes.equals(photo), 'media survived, and who may see it');

  // The push registration survived too.
  await bobBack.close();
  const pushed = await aliceBack.client.text({ to: bob.user }, 'wake up');
  let notices: { seq: number }[] = [];
  for (let i = 0; i < 200 && !notices.length; i++) {
    notices = (await http(f.url, '/v1/dev/push', { headers: { authorization: `Bearer ${bob.session.token}` } })).json.notices;
    if (!notices.length) await new Promise((r) => setTimeout(r, 25));
  }
  t.match(notices, [{ platform: 'apns', token: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', seq: pushed.seq }]);
});

t.test('a hard kill loses no message that was acked to its sender', async (t) => {
  const alice = await f.device(t);
  const bob = await f.signInOnly();
  const sends = await Promise.all(Array.from({ length: 50 }, (_, i) => alice.client.text({ to: bob.user }, `m${i}`)));
  await f.restart('SIGKILL');
  const aliceBack = await f.device(t, { session: alice.session, phone: alice.phone });
  const h = await aliceBack.client.history(sends[0]!.conv, { limit: 500 });
  t.same(texts(h), sends.map((_, i) => `m${i}`), 'every message that got its tick is in the conversation');
  // A hard kill can't hand back the rest of the conversation's reserved block: seqs go on above it (a gap).
  const next = (await aliceBack.client.text({ to: bob.user }, 'next')).seq;
  t.ok(next > 50, `and the seq goes on above every acked one (${next})`);
  t.same(texts(await aliceBack.client.history(sends[0]!.conv, { limit: 500 })), [...sends.map((_, i) => `m${i}`), 'next'], 'after them');
});

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  t.test(`after a ${signal === 'SIGKILL' ? 'hard kill' : 'graceful stop'} right after sending, every acked message still reaches its offline recipient`,
    async (t) => {
      const alice = await f.device(t);
      const bob = await f.signInOnly();
      const sends = await Promise.all(Array.from({ length: 50 }, (_, i) => alice.client.text({ to: bob.user }, `m${i}`)));
      await f.restart(signal);
      const aliceBack = await f.device(t, { session: alice.session, phone: alice.phone });
      await aliceBack.client.text({ to: bob.user }, 'after');
      const bobDev = await f.device(t, { session: bob.session, phone: bob.phone });
      await bobDev.waitMessage((m) => (m.body as { text: string }).text === 'after', 'the message sent after the restart');
      t.same(texts(bobDev.messages), [...sends.map((_, i) => `m${i}`), 'after'], 'everything, in order');
    });
}

// The tick needs only the log: deliveries a kill interrupts are re-driven from it when the node starts again
// (the conversation is remembered in the store), with nobody sending to the conversation afterwards.
for (const when of ['right after the ticks', 'once they were pushed to the recipient, unacked'] as const) {
  t.test(`after a hard kill ${when}, the online recipient gets every ticked message once, in order`, async (t) => {
    const alice = await f.device(t);
    const bob = await f.device(t, { autoAck: false });
    const sends = await Promise.all(Array.from({ length: 20 }, (_, i) => alice.client.text({ to: bob.user }, `m${i}`)));
    if (when !== 'right after the ticks') await bob.waitFor(() => bob.messages.length >= 20 || undefined, 10_000, 'all 20 pushed');
    await f.restart('SIGKILL');
    const bobBack = await f.device(t, { session: bob.session, phone: bob.phone }); // holds nothing: syncs from 0
    await bobBack.waitFor(() => bobBack.messages.length >= 20 || undefined, 10_000, 'all 20 after the restart');
    // A round trip: a message after them arrives next, with nothing repeated before it.
    const aliceBack = await f.device(t, { session: alice.session, phone: alice.phone });
    const after = await aliceBack.client.text({ to: bob.user }, 'after');
    await bobBack.waitMessage((m) => m.seq === after.seq);
    t.same(texts(bobBack.messages), [...sends.map((_, i) => `m${i}`), 'after'], 'every ticked message, in order, once');
    t.same(bobBack.late, [], 'none late');
  });
}

t.test('after a hard kill, pointers go on above every one a device was given', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  let last = 0;
  for (let i = 0; i < 10; i++) last = (await alice.client.text({ to: bob.user }, `m${i}`)).seq;
  await alice.waitFrame((x) => x.t === 'receipt' && x.status === 'delivered' && x.upTo === last, 'bob acked them all');
  const ptr = bob.client.ptr;
  await f.restart('SIGKILL'); // before the node stored bob's acked pointer (once a second)
  const bobBack = await f.device(t, { session: bob.session, phone: bob.phone, ptr });
  await bobBack.waitFrame((x) => x.t === 'synced');
  const aliceBack = await f.device(t, { session: alice.session, phone: alice.phone });
  await aliceBack.client.text({ to: bob.user }, 'after');
  await bobBack.waitMessage((m) => (m.body as { text: string }).text === 'after', 'the new message, not taken for one he holds');
  t.ok(bobBack.ptrs.at(-1)! > ptr, 'its pointer is above his');
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
