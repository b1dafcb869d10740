import t from 'tap';
import { Fixture, http } from '../helpers/fixture.js';
import { signIn, texts } from '../helpers/clients.js';
import { directConversationId } from '../../src/protocol/ids.js';

/** Issue #2 §3: 1:1 conversations — derived ids, ordered seqs, the `sent` ack and idempotent resends. */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

t.test('the conversation id is derived from the two users, whichever side sends', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const [lo, hi] = [alice.user, bob.user].sort();
  const expected = `d.${lo}.${hi}`;
  const a = await alice.client.text({ to: bob.user }, 'hi bob');
  const b = await bob.client.text({ to: alice.user }, 'hi alice');
  t.equal(a.conv, expected);
  t.equal(b.conv, expected, 'both directions are one conversation');
  t.equal(directConversationId(bob.user, alice.user), expected);
  const c = await alice.client.text({ conv: expected }, 'by conv id');
  t.equal(c.conv, expected, 'sending by conv id lands in the same conversation');
  t.same([a.seq, b.seq, c.seq], [1, 2, 3]);
  await bob.waitMessage((m) => m.seq === 3);
  t.same(texts(bob.messages), ['hi bob', 'by conv id']);
});

t.test('seqs are strictly increasing across both senders and arrive in seq order', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const conv = directConversationId(alice.user, bob.user);
  const N = 40;
  // Both sides send at once without waiting for each other.
  const sends = await Promise.all([
    ...Array.from({ length: N }, (_, i) => alice.client.text({ to: bob.user }, `a${i}`)),
    ...Array.from({ length: N }, (_, i) => bob.client.text({ to: alice.user }, `b${i}`)),
  ]);
  const seqs = sends.map((s) => s.seq);
  t.equal(new Set(seqs).size, 2 * N, 'no seq is given twice');
  t.same([...seqs].sort((x, y) => x - y), Array.from({ length: 2 * N }, (_, i) => i + 1), 'no gaps');
  const aliceSeqs = sends.slice(0, N).map((s) => s.seq);
  t.same(aliceSeqs, [...aliceSeqs].sort((x, y) => x - y), 'one sender\'s messages keep their sending order');
  for (const s of sends) {
    t.equal(s.conv, conv);
    t.type(s.ts, 'number');
    t.notOk(s.dup);
  }
  await bob.waitFor(() => bob.messages.length === N || undefined, 5000, 'all of alice\'s messages');
  t.same(texts(bob.messages), Array.from({ length: N }, (_, i) => `a${i}`));
  const got = bob.messages.map((m) => m.seq);
  t.ok(got.every((s, i) => i === 0 || s > got[i - 1]!), 'bob gets them in increasing seq order');
  const history = await alice.client.history(conv, { limit: 500 });
  t.same(history.map((m) => m.seq), Array.from({ length: 2 * N }, (_, i) => i + 1), 'history has every seq once');
  const ts = history.map((m) => m.ts);
  t.ok(ts.every((x, i) => i === 0 || x >= ts[i - 1]!), 'server time never goes back with seq');
});

t.test('the sent ack carries the seq the recipient sees', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const sent = await alice.client.send({ to: bob.user }, 'text', { text: 'tick' }, { cid: 'my-own-cid' });
  t.match(sent, { t: 'sent', cid: 'my-own-cid', conv: directConversationId(alice.user, bob.user), seq: 1 });
  const m = await bob.waitMessage((m) => m.cid === 'my-own-cid');
  t.same({ seq: m.seq, ts: m.ts, from: m.from, dev: m.dev }, { seq: sent.seq, ts: sent.ts, from: alice.user, dev: alice.client.device });
});

t.test('a resend with the same cid gets the first seq with dup:true, and the recipient gets it once', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'once' }, { cid: 'resend-me' });
  const again = await alice.client.send({ to: bob.user }, 'text', { text: 'once' }, { cid: 'resend-me' });
  t.equal(again.seq, first.seq);
  t.equal(again.dup, true);
  t.equal(again.ts, first.ts);
  t.notOk(first.dup);

  // Two copies in flight at once (a client that retried before the first answer) are still one message.
  const alice2 = await signIn(f.url, alice.phone); // another device of alice's: a socket of alice's own would replace hers
  const raw = await f.raw(t, alice2.session.token);
  raw.send({ t: 'send', cid: 'twice-at-once', to: bob.user, kind: 'text', body: { text: 'twice' } });
  raw.send({ t: 'send', cid: 'twice-at-once', to: bob.user, kind: 'text', body: { text: 'twice' } });
  await raw.next((x) => x.t === 'sent' && x.cid === 'twice-at-once' && x.dup === true, 'the dup answer');
  const answers = raw.frames.filter((x) => x.t === 'sent' && x.cid === 'twice-at-once');
  t.equal(answers.length, 2, 'both copies are answered');
  t.equal(answers[0]!.seq, answers[1]!.seq, 'with the same seq');

  // A different sender may use the same cid: it is a different message.
  const bobs = await bob.client.send({ to: alice.user }, 'text', { text: 'mine' }, { cid: 'resend-me' });
  t.notOk(bobs.dup);
  t.not(bobs.seq, first.seq);

  const marker = await alice.client.text({ to: bob.user }, 'marker');
  await bob.waitMessage((m) => m.seq === marker.seq, 'the marker after the resends');
  t.same(texts(bob.messages), ['once', 'twice', 'marker'], 'each message arrived once');
  const history = await bob.client.history(first.conv);
  t.same(texts(history), ['once', 'twice', 'mine', 'marker'], 'and is stored once');
});

t.test('a first attempt marked fresh costs no dedupe read; a resend without the mark still finds it', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  /** Store reads of the client-id index so far, from the node's own metrics. */
  const cidReads = async () => {
    const text = (await http(f.url, '/metrics')).bytes.toString();
    return Number(/^parley_store_seconds_count\{op="seqForClientId"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  };
  const before = await cidReads();
  const raw = await f.raw(t, (await signIn(f.url, alice.phone)).session.token);
  for (let i = 1; i <= 10; i++) raw.send({ t: 'send', cid: `fresh-${i}`, fresh: true, to: bob.user, kind: 'text', body: { text: `f${i}` } });
  // Two fresh copies at once (a client bug) are still one message: the first is still being stored.
  raw.send({ t: 'send', cid: 'fresh-10', fresh: true, to: bob.user, kind: 'text', body: { text: 'f10' } });
  const firstTen = await raw.next((x) => x.t === 'sent' && x.cid === 'fresh-10' && x.dup === true, 'the in-flight copy');
  t.equal(await cidReads(), before, 'eleven sends, no read of the client-id index');

  raw.send({ t: 'send', cid: 'fresh-10', to: bob.user, kind: 'text', body: { text: 'f10' } });
  const again = await raw.next((x) => x.t === 'sent' && x.cid === 'fresh-10' && x.dup === true && x !== firstTen, 'the resend');
  t.equal(again.seq, firstTen.seq, 'a resend without the mark is looked up and found');
  t.equal(await cidReads(), before + 1, 'with one read');
  t.equal((await alice.client.text({ to: bob.user }, 'from the SDK')).dup, undefined);
  t.equal(await cidReads(), before + 1, 'the SDK marks the cids it makes fresh');

  t.same((await bob.client.history(firstTen.conv as string)).length, 11, 'each stored once');
  raw.send({ t: 'send', cid: 'x', fresh: 1, to: bob.user, kind: 'text', body: { text: 'x' } });
  t.match(await raw.next((x) => x.t === 'error' && x.cid === 'x', 'the refusal'), { code: 'invalid' }, 'fresh is true or absent');
});

t.test('sending to nobody, to oneself or into someone else\'s conversation fails with a stable code', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const carol = await f.device(t);
  await t.rejects(alice.client.text({ to: 'zzzzzzzzzzzzzzzz' }, 'hello?'), { code: 'not_found' });
  await t.rejects(alice.client.text({ to: alice.user }, 'me'), { code: 'invalid' });
  await bob.client.text({ to: carol.user }, 'private');
  await t.rejects(alice.client.text({ conv: directConversationId(bob.user, carol.user) }, 'let me in'), { code: 'forbidden' });
  await t.rejects(alice.client.history(directConversationId(bob.user, carol.user)), { code: 'forbidden' });
  await t.rejects(alice.client.text({ conv: `d.${[bob.user, carol.user].sort().reverse().join('.')}` }, 'x'), { code: 'invalid' }, 'an unsorted pair is not a conversation id');
  const ok = await alice.client.text({ to: bob.user }, 'still fine');
  t.equal(ok.seq, 1, 'the failures left no trace in alice and bob\'s conversation');
});

t.test('a second sign-in on another device sees the conversation\'s history', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  await alice.client.text({ to: bob.user }, 'before the new phone');
  const { session } = await signIn(f.url, bob.phone);
  const bobNew = await f.device(t, { session, phone: bob.phone });
  const h = await bobNew.client.history(directConversationId(alice.user, bob.user));
  t.same(texts(h), ['before the new phone']);
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
