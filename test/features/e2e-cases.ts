import type { Test } from 'tap';
import { Packr } from 'msgpackr';
import type { Fixture, HasTeardown } from '../helpers/fixture.js';
import type { Hit } from '../helpers/store-scan.js';
import { allowedRemains, code, scanMediaFiles } from './erasure-cases.js';
import { http } from '../helpers/fixture.js';
import type { TestDevice } from '../helpers/clients.js';
import { directConversationId } from '../../src/protocol/ids.js';
import type { Message, MlsBody } from '../../src/protocol/frames.js';
import { ServerError } from '../../src/client/parley-client.js';

/**
 * Issue #15, end-to-end encryption, on any store: SDK clients with `e2e` on talk MLS through a real node;
 * the store is scanned for the plaintext; the node's key directory and epoch fence are driven over real
 * sockets. `scan` reads every table of the node's store.
 */
export function e2eCases(t: Test, s: { f: () => Fixture; scan: (f: Fixture, needles: string[]) => Promise<Hit[]> }): void {
  const { f } = s;
  const packr = new Packr({ useRecords: false, mapsAsObjects: true });
  const e2e = (t: HasTeardown) => f().device(t, { e2e: true });
  const textOf = (m: Message) => (m.body as { text?: string } | undefined)?.text;
  /** The first decrypted text message matching. */
  const got = (d: TestDevice, text: string, ms = 10_000) => d.waitMessage((m) => m.kind === 'text' && textOf(m) === text, `"${text}" at ${d.user}`, ms);
  /** The device has published its keys (the SDK does it after its welcome). */
  const ready = (d: TestDevice) => d.client.e2e!.start();
  const marker = () => `secret-${Math.random().toString(36).slice(2)}`;

  t.test('1:1: two clients chat encrypted; the store holds only ciphertext', async (t) => {
    const [alice, bob] = await Promise.all([e2e(t), e2e(t)]);
    await Promise.all([ready(alice), ready(bob)]);
    const [hello, reply] = [marker(), marker()];
    await alice.client.text({ to: bob.user }, hello);
    const m = await got(bob, hello);
    t.equal((m as Message & { e2e?: true }).e2e, true, 'it came encrypted');
    t.equal(m.from, alice.user);
    await bob.client.text({ to: alice.user }, reply);
    await got(alice, reply);

    const conv = directConversationId(alice.user, bob.user);
    const stored = await alice.client.history(conv);
    t.ok(stored.length >= 3 && stored.every((x) => x.kind === 'mls'), 'the log holds mls messages only (a commit, then two)');
    t.match((stored[0]!.body as MlsBody), { mls: 'commit', epoch: 0, users: [alice.user, bob.user].sort() });
    t.strictSame(await s.scan(f(), [hello, reply]), [], 'no plaintext anywhere in the store');
  });

  t.test('both users start the 1:1 group at once: one creation wins, the other joins it, nothing is lost', async (t) => {
    const [alice, bob] = await Promise.all([e2e(t), e2e(t)]);
    await Promise.all([ready(alice), ready(bob)]);
    await Promise.all([alice.client.text({ to: bob.user }, 'from alice'), bob.client.text({ to: alice.user }, 'from bob')]);
    await Promise.all([got(bob, 'from alice'), got(alice, 'from bob')]);
    const conv = directConversationId(alice.user, bob.user);
    const commits = (await alice.client.history(conv)).filter((m) => (m.body as MlsBody).mls === 'commit');
    t.equal(commits.length, 1, 'one group: the second creation was refused (epoch_conflict)');
    t.equal(alice.client.e2e!.epoch(conv), bob.client.e2e!.epoch(conv), 'both at the same epoch');
  });

  t.test('a device saves its state and, started again from it, reads and writes its chats', async (t) => {
    const [alice, bob] = await Promise.all([e2e(t), e2e(t)]);
    await Promise.all([ready(alice), ready(bob)]);
    await alice.client.text({ to: bob.user }, 'before the restart');
    await got(bob, 'before the restart');
    const state = await alice.client.e2e!.save();
    const ptr = alice.client.ptr;
    await alice.close();
    await bob.client.text({ to: alice.user }, 'while alice was away');
    const again = await f().device(t, { session: alice.session, phone: alice.phone, ptr, e2e: { state } });
    await got(again, 'while alice was away');
    await again.client.text({ to: bob.user }, 'after the restart');
    await got(bob, 'after the restart');
    t.equal(await again.client.safetyNumber(bob.user), await bob.client.safetyNumber(alice.user), 'the same identity');
  });

  t.test('an erased member of encrypted chats leaves nothing of them behind, and the group goes on without them', async (t) => {
    const [alice, bob, carol] = await Promise.all([e2e(t), e2e(t), e2e(t)]);
    await Promise.all([ready(alice), ready(bob), ready(carol)]);
    const g = await bob.client.createGroup('encrypted circle', [alice.user, carol.user]);
    await alice.client.text({ conv: g.conv }, 'alice in the group');
    await Promise.all([got(bob, 'alice in the group'), got(carol, 'alice in the group')]);
    await alice.client.text({ to: bob.user }, 'alice to bob');
    await got(bob, 'alice to bob');
    const needles = [alice.user, alice.phone, alice.phone.slice(1)];
    t.ok((await s.scan(f(), needles)).some((h) => /key_|group_epochs/.test(h.where)), 'before: her keys and her place in the group are in the store');

    const auth = { authorization: `Bearer ${alice.session.token}` };
    const erased = await http(f().url, '/v1/accounts/me', { method: 'DELETE', headers: auth, json: { code: await code(f(), alice.phone) } });
    t.same([erased.status, erased.json], [200, { erased: true }]);
    const hits = await s.scan(f(), needles);
    t.same(hits.filter((h) => !allowedRemains(h, alice.user)), [], 'nothing of her is left beyond what the docs say');

    // The group owes the commit removing her leaves: bob's next send makes it, and carol reads what follows.
    await bob.client.text({ conv: g.conv }, 'after her');
    await got(carol, 'after her');
    t.ok(bob.client.e2e!.leaves(g.conv).every((id) => !id.startsWith(`${alice.user}/`)), 'her devices left the encrypted group');
  });

  t.test('keys rotate: an empty commit moves the group to a new epoch, and the chat goes on', async (t) => {
    const [alice, bob] = await Promise.all([e2e(t), e2e(t)]);
    await Promise.all([ready(alice), ready(bob)]);
    const conv = directConversationId(alice.user, bob.user);
    await alice.client.text({ to: bob.user }, 'before rotation');
    await got(bob, 'before rotation');
    const epoch = alice.client.e2e!.epoch(conv)!;
    const number = await alice.client.safetyNumber(bob.user);
    await alice.client.e2e!.rotate(conv);
    t.equal(alice.client.e2e!.epoch(conv), epoch + 1);
    await bob.waitFor(() => bob.client.e2e!.epoch(conv) === epoch + 1, 10_000, 'bob processed the rotation');
    await bob.client.text({ to: alice.user }, 'after rotation');
    await got(alice, 'after rotation');
    await alice.client.e2e!.rotateLastResort();
    t.equal(await alice.client.safetyNumber(bob.user), number, 'the identity keys, and so the safety number, stay');
  });

  t.test('a tampered ciphertext is rejected by the recipient, and the next message still opens', async (t) => {
    const [alice, bob] = await Promise.all([e2e(t), e2e(t)]);
    await Promise.all([ready(alice), ready(bob)]);
    await alice.client.text({ to: bob.user }, 'first');
    await got(bob, 'first');
    const bad: { m: Message; reason: string }[] = [];
    bob.client.on('undecryptable', (m, reason) => bad.push({ m, reason }));
    // The next mls frame leaves with one bit of its ciphertext flipped (in the AEAD tag, near the end).
    const ws = alice.sockets[alice.sockets.length - 1]!;
    const send = ws.send.bind(ws);
    ws.send = ((data: Uint8Array, ...rest: unknown[]) => {
      const frame = packr.unpack(data) as { kind?: string; body?: MlsBody };
      if (frame.kind === 'mls' && frame.body?.mls === 'app') {
        frame.body.data[frame.body.data.length - 3] ^= 1;
        ws.send = send as typeof ws.send;
        data = packr.pack(frame);
      }
      return (send as (d: unknown, ...r: unknown[]) => void)(data, ...rest);
    }) as typeof ws.send;
    await alice.client.text({ to: bob.user }, 'tampered');
    const refused = await bob.waitFor(() => bad[0], 10_000, 'the tampered message refused');
    t.equal(refused.m.from, alice.user);
    await alice.client.text({ to: bob.user }, 'after');
    await got(bob, 'after');
    t.notOk(bob.messages.some((m) => textOf(m) === 'tampered'), 'the tampered message never reached the app');
  });

  t.test('a group of 5, a member added and one removed: the removed one cannot read what follows', async (t) => {
    const ds = await Promise.all(Array.from({ length: 6 }, () => e2e(t)));
    await Promise.all(ds.map(ready));
    const [admin, b, c, d, e, late] = ds as [TestDevice, TestDevice, TestDevice, TestDevice, TestDevice, TestDevice];
    const g = await admin.client.createGroup('climbing', [b, c, d, e].map((x) => x.user));
    const hello = marker();
    await admin.client.text({ conv: g.conv }, hello);
    await Promise.all([b, c, d, e].map((x) => got(x, hello)));
    await e.client.text({ conv: g.conv }, 'from e');
    await Promise.all([admin, b, c, d].map((x) => got(x, 'from e')));

    // Added through the group admin API: the admin's SDK commits the Add, the Welcome reaches the newcomer.
    await admin.client.addMembers(g.id, [late.user]);
    await late.waitFor(() => late.client.e2e!.epoch(g.conv) !== undefined, 10_000, 'the newcomer joined the encrypted group');
    const welcome = marker();
    await admin.client.text({ conv: g.conv }, welcome);
    await Promise.all([b, c, d, e, late].map((x) => got(x, welcome)));

    // Removed: the admin's SDK commits the Remove; what follows is in an epoch c has no keys for.
    const cBefore = c.client.e2e!.epoch(g.conv);
    await admin.client.removeMembers(g.id, [c.user]);
    const after = marker();
    await d.client.text({ conv: g.conv }, after);
    const seen = await got(b, after);
    await Promise.all([admin, e, late].map((x) => got(x, after)));
    t.ok(admin.client.e2e!.leaves(g.conv).every((id) => !id.startsWith(`${c.user}/`)), 'c has no leaf in the group');
    const cipher = (await b.client.history(g.conv, { after: seen.seq - 1, limit: 1 }))[0]!;
    t.equal(cipher.kind, 'mls');
    t.equal(c.client.e2e!.epoch(g.conv), cBefore, 'c still holds the group as it was before its removal');
    t.ok((cipher.body as MlsBody).epoch > cBefore!, 'the message is from a later epoch');
    await t.rejects(c.client.e2e!.decrypt(cipher), 'c cannot open a message sent after its removal');
    const removal = (await admin.client.history(g.conv)).map((x) => x.body as MlsBody).filter((x) => x?.mls === 'commit').pop()!;
    t.strictSame((removal as { users: string[] }).users, [admin, b, d, e, late].map((x) => x.user).sort(), 'the last commit declares the members without c');
    t.notOk(c.messages.some((m) => textOf(m) === after), 'nor was it delivered to c');
    t.strictSame(await s.scan(f(), [hello, welcome, after, 'from e']), [], 'no plaintext anywhere in the store');
  });

  t.test('a group of 25 is made in several commits (each within a body\'s size), and everyone reads it', async (t) => {
    const ds = await Promise.all(Array.from({ length: 25 }, () => e2e(t)));
    await Promise.all(ds.map(ready));
    const [admin, ...rest] = ds as [TestDevice, ...TestDevice[]];
    const g = await admin.client.createGroup('big', rest.map((x) => x.user));
    const hello = marker();
    await admin.client.text({ conv: g.conv }, hello);
    await Promise.all(rest.map((x) => got(x, hello, 20_000)));
    const commits = (await admin.client.history(g.conv)).filter((m) => (m.body as MlsBody).mls === 'commit');
    t.ok(commits.length >= 2, `${commits.length} commits`);
    t.equal(admin.client.e2e!.leaves(g.conv).length, 25);
  });

  t.test('a new device of a user receives what is sent after it was added', async (t) => {
    const [alice, bob] = await Promise.all([e2e(t), e2e(t)]);
    await Promise.all([ready(alice), ready(bob)]);
    const conv = directConversationId(alice.user, bob.user);
    await alice.client.text({ to: bob.user }, 'before the new device');
    await got(bob, 'before the new device');
    const before = await alice.client.safetyNumber(bob.user);
    t.equal(before, await bob.client.safetyNumber(alice.user), 'both sides compute the same safety number');
    t.match(before, /^(\d{5} ){11}\d{5}$/);

    const bob2 = await f().secondDevice(t, bob, { e2e: true });
    // Its keys published, bob's first device adds it to bob's groups (the `keys` event).
    await bob2.waitFor(() => bob2.client.e2e!.epoch(conv) !== undefined, 10_000, 'the new device joined the 1:1 group');
    await alice.client.text({ to: bob.user }, 'to both devices');
    await Promise.all([got(bob, 'to both devices'), got(bob2, 'to both devices')]);
    t.notOk(bob2.messages.some((m) => textOf(m) === 'before the new device'), 'nothing from before it was added');
    t.not(await alice.client.safetyNumber(bob.user), before, 'a new device key changes the safety number');
  });

  t.test('a device that re-registers (signed out, signed in again alone) is taken into the chat by its contact', async (t) => {
    const alice = await f().device(t, { e2e: { reconcileEveryMs: 0 } });
    const bob = await e2e(t);
    await Promise.all([ready(alice), ready(bob)]);
    const conv = directConversationId(alice.user, bob.user);
    await alice.client.text({ to: bob.user }, 'to the old install');
    await got(bob, 'to the old install');
    const oldLeaf = `${bob.user}/${bob.session.device}`;
    await bob.client.signOut('this');
    const again = await f().secondDevice(t, bob, { e2e: true });
    await ready(again);
    // Alice's SDK checks the group against the directory before it sends: the old leaf goes, the new device comes.
    await alice.client.text({ to: bob.user }, 'to the new install');
    await got(again, 'to the new install');
    t.notOk(alice.client.e2e!.leaves(conv).includes(oldLeaf), 'the signed-out device left the group');
    t.ok(alice.client.e2e!.leaves(conv).includes(`${bob.user}/${again.session.device}`), 'the new one is in it');
  });

  t.test('media is encrypted on the client: the server stores and serves only ciphertext', async (t) => {
    const [alice, bob] = await Promise.all([e2e(t), e2e(t)]);
    await Promise.all([ready(alice), ready(bob)]);
    const secret = marker();
    const bytes = new TextEncoder().encode(`${secret} — a picture's bytes`);
    await alice.client.sendMedia({ to: bob.user }, 'image', bytes, 'image/png', 'look');
    const m = await bob.waitMessage((x) => x.kind === 'image', 'the image', 10_000);
    const body = m.body as { media: string; key: Uint8Array; iv: Uint8Array; sha256: Uint8Array; caption: string };
    t.equal(body.caption, 'look');
    t.strictSame(Buffer.from(await bob.client.fetchMedia(body)).toString(), Buffer.from(bytes).toString(), 'bob decrypts what alice sent');
    t.strictSame(scanMediaFiles(f().node.dataDir, [secret]), [], 'the media file is ciphertext');
    t.strictSame(await s.scan(f(), [secret, 'look']), [], 'and the store holds neither the bytes nor the caption');
  });

  t.test('the key directory hands each one-time package out once, even to concurrent claims', async (t) => {
    const [owner, x, y] = await Promise.all([f().device(t), f().device(t), f().device(t)]);
    const kp = (i: number) => new Uint8Array([1, 2, i >> 8, i & 255]);
    const n = 30;
    t.strictSame(await owner.client.ask({ t: 'keys.publish', identity: new Uint8Array([9]), lastResort: new Uint8Array([7, 7]), oneTime: Array.from({ length: n }, (_, i) => ({ id: `k${i}`, keyPackage: kp(i) })) }), { count: n });
    const claim = (d: TestDevice) => d.client.ask({ t: 'keys.claim', users: [owner.user] }) as Promise<{ devices: { keyPackage: Uint8Array; lastResort?: true }[] }>;
    const answers = await Promise.all(Array.from({ length: n + 6 }, (_, i) => claim(i % 2 ? x : y)));
    const packages = answers.map((a) => a.devices[0]!);
    const oneTime = packages.filter((p) => !p.lastResort).map((p) => Buffer.from(p.keyPackage).toString('hex'));
    t.equal(new Set(oneTime).size, n, 'every one-time package once');
    t.equal(oneTime.length, n, 'and none twice');
    t.equal(packages.filter((p) => p.lastResort).length, 6, 'then the last resort');
    t.strictSame(await owner.client.ask({ t: 'keys.count' }), { count: 0, lastResort: true }, 'the owner sees it must replenish');
    // A fetcher past its budget is refused, and the owner's keys are not drained by it.
    const burst = await Promise.allSettled(Array.from({ length: 200 }, () => claim(x)));
    const refused = burst.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as ServerError);
    t.ok(refused.length > 0 && refused.every((e) => e.code === 'rate_limited' && e.retryAfterMs! > 0), 'claims past the budget are rate_limited');
    await t.resolves(claim(y), 'another fetcher still may');
  });

  t.test('the epoch fence: one commit per epoch, kept across a crash of the node', async (t) => {
    const [a, b] = await Promise.all([f().device(t), f().device(t)]);
    const conv = directConversationId(a.user, b.user);
    const users = [a.user, b.user].sort();
    const commit = (d: TestDevice, epoch: number) => d.client.send({ conv }, 'mls', { mls: 'commit', epoch, users, data: new Uint8Array([epoch]) } as never);
    const app = (d: TestDevice, epoch: number) => d.client.send({ conv }, 'mls', { mls: 'app', epoch, data: new Uint8Array([1]) } as never);
    await commit(a, 0);
    await t.rejects(commit(b, 0), { code: 'epoch_conflict' }, 'a second commit from epoch 0 is refused');
    await t.rejects(app(b, 0), { code: 'epoch_stale' }, 'a message from the epoch left is refused');
    await app(b, 1);
    await a.close();
    await b.close();
    await f().restart('SIGKILL');
    const [a2, b2] = await Promise.all([f().device(t, { session: a.session, phone: a.phone }), f().device(t, { session: b.session, phone: b.phone })]);
    await t.rejects(commit(b2, 0), { code: 'epoch_conflict' }, 'still refused after the crash');
    await commit(a2, 1);
    await t.rejects(commit(b2, 1), { code: 'epoch_conflict' });
    await app(b2, 2);
  });
}
