import t from 'tap';
import { newId, directConversationId, groupConversationId } from '../../src/protocol/ids.js';
import type { Message } from '../../src/protocol/frames.js';
import { DEV_OUTBOX_KEEP, fenceKeys, type OtpRecord, type OtpStep, type Store, type UserRecord } from '../../src/store/store.js';
import { ParleyError } from '../../src/protocol/errors.js';

/**
 * The Store conformance suite: every implementation (LMDB, Scylla) must pass it unchanged.
 * It pins the semantics written in src/store/store.ts. Each subtest uses fresh ids, so one store instance
 * serves the whole suite and tests don't see each other's data.
 *
 *   runStoreConformance(t, 'lmdb', () => LmdbStore.open(...))
 *
 * `openPeer`, for a store that several nodes share, opens another client of the same data (another node):
 * the atomicity cases then run their writers through both.
 */
/** The root `t` of 'tap' or any subtest. */
export type TapTest = typeof t | tap.Test;

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** 2024-03-01 20:00 UTC: messages cross midnight (a bucket boundary in the Scylla store) early on. */
const T0 = Date.UTC(2024, 2, 1, 20);

const uid = () => newId(12);
const conv = () => directConversationId(uid(), uid());
const seqs = (ms: Message[]) => ms.map((m) => m.seq);
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bytesOf = (b: unknown) => Buffer.from(b as Uint8Array).toString('hex');

function msg(c: string, seq: number, ts: number, extra: Partial<Message> = {}): Message {
  const [a] = c.split('.').slice(1);
  return { conv: c, seq, from: a!, dev: 'dev1', cid: `cid-${seq}`, kind: 'text', ts, body: { text: `message ${seq}` }, ...extra };
}

/** Appends in seq order, one at a time (what a conversation does when it is not pipelining). */
async function appendAll(store: Store, ms: Message[]): Promise<void> {
  for (const m of ms) await store.appendMessage(m);
}

/**
 * A conversation of 40 messages over 6 days, some days busier than others and one day empty:
 * seq i has ts T0 + offsets[i-1]. ts never decreases with seq (the conversation actor guarantees it).
 */
function history(c: string): Message[] {
  const out: Message[] = [];
  let ts = T0;
  for (let seq = 1; seq <= 40; seq++) {
    if (seq === 11) ts += 2 * DAY; // a day with nothing
    else if (seq % 7 === 0) ts += 20 * HOUR;
    else ts += 37 * 60_000;
    out.push(msg(c, seq, ts));
  }
  // two messages in the same millisecond
  out[20]!.ts = out[19]!.ts;
  return out;
}

export function runStoreConformance(parent: TapTest, name: string, open: () => Promise<Store>, openPeer?: () => Promise<Store>): void {
  parent.test(`${name} store conformance`, async (t) => {
    const store = await open();
    t.teardown(() => store.close());
    const peer = openPeer ? await openPeer() : undefined;
    if (peer) t.teardown(() => peer.close());
    /** Every client of the store: writer i goes through writers[i % n]. */
    const writers = peer ? [store, peer] : [store];

    t.test('kind', async (t) => {
      t.ok(store.kind === 'lmdb' || store.kind === 'scylla');
    });

    // ---- messages ----

    t.test('appendMessage / getMessage round-trips every field', async (t) => {
      const c = conv();
      const bin = new Uint8Array([0, 1, 2, 250, 255]);
      const ms: Message[] = [
        msg(c, 1, T0),
        msg(c, 2, T0 + 1, { body: bin, kind: 'image' }),
        msg(c, 3, T0 + 2, { reply: 1 }),
        msg(c, 4, T0 + 3, { kind: 'reaction', target: 2, body: { emoji: '👍' } }),
        msg(c, 5, T0 + 4, { kind: 'system', body: undefined }),
        msg(c, 6, T0 + 5, { body: { text: 'nested', list: [1, 'two', { three: 3 }], n: -1.5, nil: null, t: true } }),
      ];
      delete ms[4]!.body;
      await appendAll(store, ms);
      for (const m of ms) {
        const got = await store.getMessage(c, m.seq);
        if (m.body instanceof Uint8Array) {
          t.ok(got?.body instanceof Uint8Array, 'binary body stays bytes');
          t.equal(bytesOf(got?.body), bytesOf(m.body), 'binary body bytes');
          const { body: _a, ...envGot } = got!;
          const { body: _b, ...envWant } = m;
          t.strictSame(envGot, envWant, `envelope of seq ${m.seq}`);
        } else {
          t.strictSame(got, m, `seq ${m.seq}`);
        }
      }
      t.equal(await store.getMessage(c, 7), undefined, 'unknown seq');
      t.equal(await store.getMessage(c, 0), undefined, 'seq 0');
      t.equal(await store.getMessage(conv(), 1), undefined, 'unknown conversation');
    });

    t.test('lastSeq', async (t) => {
      const c = conv();
      t.equal(await store.lastSeq(c), 0, 'empty conversation');
      await appendAll(store, history(c));
      t.equal(await store.lastSeq(c), 40);
      await store.appendMessage(msg(c, 41, T0 + 30 * DAY));
      t.equal(await store.lastSeq(c), 41, 'after a long gap');
      t.equal(await store.lastSeq(groupConversationId(uid())), 0, 'another empty conversation');
    });

    t.test('getMessages: ascending, bounds exclusive by seq and inclusive by ts, limits', async (t) => {
      const c = conv();
      const all = history(c);
      await appendAll(store, all);
      const ts = (seq: number) => all[seq - 1]!.ts;

      t.strictSame(await store.getMessages(c, { limit: 100 }), all, 'everything, whole messages');
      t.strictSame(seqs(await store.getMessages(c, { limit: 5 })), range(36, 40), 'no bounds: the newest page');
      t.strictSame(seqs(await store.getMessages(c, { limit: 1 })), [40]);
      t.strictSame(seqs(await store.getMessages(c, { limit: 0 })), [], 'limit 0');

      t.strictSame(seqs(await store.getMessages(c, { after: 0, limit: 5 })), range(1, 5), 'after 0: the oldest page');
      t.strictSame(seqs(await store.getMessages(c, { after: 8, limit: 5 })), range(9, 13), 'after: exclusive, across an empty day');
      t.strictSame(seqs(await store.getMessages(c, { after: 38, limit: 5 })), [39, 40], 'after: short last page');
      t.strictSame(seqs(await store.getMessages(c, { after: 40, limit: 5 })), [], 'after the last');
      t.strictSame(seqs(await store.getMessages(c, { after: 1000, limit: 5 })), [], 'after far beyond');

      t.strictSame(seqs(await store.getMessages(c, { before: 13, limit: 5 })), range(8, 12), 'before: exclusive, newest below');
      t.strictSame(seqs(await store.getMessages(c, { before: 3, limit: 5 })), [1, 2], 'before: short first page');
      t.strictSame(seqs(await store.getMessages(c, { before: 1, limit: 5 })), [], 'before the first');
      t.strictSame(seqs(await store.getMessages(c, { before: 1000, limit: 3 })), [38, 39, 40], 'before far beyond');

      t.strictSame(seqs(await store.getMessages(c, { after: 5, before: 30, limit: 100 })), range(6, 29), 'window');
      t.strictSame(seqs(await store.getMessages(c, { after: 5, before: 30, limit: 4 })), range(6, 9), 'window, oldest first');
      t.strictSame(seqs(await store.getMessages(c, { after: 5, before: 6, limit: 4 })), [], 'empty window');

      t.strictSame(seqs(await store.getMessages(c, { from: ts(12), limit: 3 })), [12, 13, 14], 'from: inclusive, oldest first');
      t.strictSame(seqs(await store.getMessages(c, { from: ts(12) + 1, limit: 3 })), [13, 14, 15], 'from: just after a message');
      t.strictSame(seqs(await store.getMessages(c, { from: ts(20), limit: 3 })), [20, 21, 22], 'from: two messages in one ms');
      t.strictSame(seqs(await store.getMessages(c, { from: T0 - DAY, limit: 2 })), [1, 2], 'from before everything');
      t.strictSame(seqs(await store.getMessages(c, { from: ts(40) + 1, limit: 2 })), [], 'from after everything');
      t.strictSame(seqs(await store.getMessages(c, { from: ts(10) + HOUR, limit: 2 })), [11, 12], 'from inside the empty day');

      t.strictSame(seqs(await store.getMessages(c, { until: ts(12), limit: 3 })), [10, 11, 12], 'until: inclusive, newest first');
      t.strictSame(seqs(await store.getMessages(c, { until: ts(12) - 1, limit: 3 })), [9, 10, 11], 'until: just before a message');
      t.strictSame(seqs(await store.getMessages(c, { until: ts(21), limit: 3 })), [19, 20, 21], 'until: two messages in one ms');
      t.strictSame(seqs(await store.getMessages(c, { until: T0, limit: 3 })), [], 'until before everything');
      t.strictSame(seqs(await store.getMessages(c, { until: ts(40) + DAY, limit: 2 })), [39, 40], 'until after everything');

      t.strictSame(seqs(await store.getMessages(c, { from: ts(5), until: ts(15), limit: 100 })), range(5, 15), 'from..until');
      t.strictSame(seqs(await store.getMessages(c, { from: ts(5), until: ts(15), limit: 3 })), [5, 6, 7], 'from..until, oldest first');
      t.strictSame(seqs(await store.getMessages(c, { from: ts(15), until: ts(5), limit: 3 })), [], 'from after until');

      t.strictSame(seqs(await store.getMessages(c, { after: 10, from: ts(5), limit: 3 })), [11, 12, 13], 'after and from: both bind');
      t.strictSame(seqs(await store.getMessages(c, { after: 3, from: ts(10), limit: 3 })), [10, 11, 12], 'from binds tighter');
      t.strictSame(seqs(await store.getMessages(c, { before: 30, until: ts(35), limit: 3 })), [27, 28, 29], 'before and until: both bind');
      t.strictSame(seqs(await store.getMessages(c, { before: 35, until: ts(25), limit: 3 })), [23, 24, 25], 'until binds tighter');
      t.strictSame(seqs(await store.getMessages(c, { after: 10, until: ts(14), limit: 100 })), [11, 12, 13, 14], 'after and until');
      t.strictSame(seqs(await store.getMessages(c, { before: 14, from: ts(10), limit: 100 })), [10, 11, 12, 13], 'before and from');

      // paging through everything both ways gives every message once
      const forward: number[] = [];
      for (let after = 0; ;) {
        const page = await store.getMessages(c, { after, limit: 7 });
        if (!page.length) break;
        forward.push(...seqs(page));
        after = page[page.length - 1]!.seq;
      }
      t.strictSame(forward, range(1, 40), 'paging forward');
      const backward: number[] = [];
      for (let before = Number.MAX_SAFE_INTEGER; ;) {
        const page = await store.getMessages(c, { before, limit: 6 });
        if (!page.length) break;
        backward.unshift(...seqs(page));
        before = page[0]!.seq;
      }
      t.strictSame(backward, range(1, 40), 'paging backward');

      t.strictSame(await store.getMessages(conv(), { limit: 10 }), [], 'empty conversation');
      t.strictSame(await store.getMessages(conv(), { after: 0, limit: 10 }), [], 'empty conversation, after');
      t.strictSame(await store.getMessages(conv(), { before: 10, limit: 10 }), [], 'empty conversation, before');
      t.strictSame(await store.getMessages(conv(), { from: T0, until: T0 + DAY, limit: 10 }), [], 'empty conversation, from..until');
    });

    t.test('conversations are separate', async (t) => {
      const a = conv();
      const b = conv();
      await appendAll(store, [msg(a, 1, T0), msg(a, 2, T0 + 1)]);
      await appendAll(store, [msg(b, 1, T0 + 5)]);
      t.strictSame(seqs(await store.getMessages(a, { limit: 10 })), [1, 2]);
      t.strictSame(seqs(await store.getMessages(b, { limit: 10 })), [1]);
      t.equal((await store.getMessage(b, 1))!.ts, T0 + 5);
      t.equal(await store.lastSeq(b), 1);
    });

    t.test('pipelined appends (several in flight, landing in any order)', async (t) => {
      const c = conv();
      const ms = range(1, 60).map((seq) => msg(c, seq, T0 + seq * 25 * 60_000)); // ~25 h: crosses midnight
      await Promise.all(ms.slice().reverse().map((m) => store.appendMessage(m)));
      t.equal(await store.lastSeq(c), 60);
      t.strictSame(seqs(await store.getMessages(c, { limit: 100 })), range(1, 60));
      t.strictSame(seqs(await store.getMessages(c, { after: 20, limit: 5 })), range(21, 25));
      t.strictSame(seqs(await store.getMessages(c, { before: 40, limit: 5 })), range(35, 39));
      for (const seq of [1, 29, 30, 31, 60]) t.equal((await store.getMessage(c, seq))?.seq, seq, `getMessage ${seq}`);
    });

    t.test('appending the same message again is harmless', async (t) => {
      const c = conv();
      const m = msg(c, 1, T0);
      await store.appendMessage(m);
      await store.appendMessage(m);
      t.strictSame(await store.getMessages(c, { limit: 10 }), [m]);
      t.equal(await store.seqForClientId(c, m.from, m.cid), 1);
    });

    t.test('seqForClientId', async (t) => {
      const c = conv();
      const [a, b] = c.split('.').slice(1) as [string, string];
      await appendAll(store, [
        msg(c, 1, T0, { from: a, cid: 'x1' }),
        msg(c, 2, T0 + 1, { from: b, cid: 'x1' }),
        msg(c, 3, T0 + DAY, { from: a, cid: 'x2' }),
      ]);
      t.equal(await store.seqForClientId(c, a, 'x1'), 1);
      t.equal(await store.seqForClientId(c, b, 'x1'), 2, 'a client id is per sender');
      t.equal(await store.seqForClientId(c, a, 'x2'), 3);
      t.equal(await store.seqForClientId(c, b, 'x2'), undefined);
      t.equal(await store.seqForClientId(c, a, 'nope'), undefined);
      t.equal(await store.seqForClientId(conv(), a, 'x1'), undefined, 'per conversation');
    });

    // Filling what a torn append left out is Scylla's case (test/scylla/torn-append.test.ts): here, that it overrides nothing.
    t.test('indexClientIds overrides no client id an append wrote', async (t) => {
      const c = conv();
      const [a] = c.split('.').slice(1) as [string];
      await appendAll(store, [msg(c, 1, T0, { from: a, cid: 'x1' })]);
      await store.indexClientIds(c, [{ from: a, cid: 'x1', seq: 7 }, { from: a, cid: 'x1', seq: 1 }]);
      t.equal(await store.seqForClientId(c, a, 'x1'), 1);
    });

    // ---- fences ----

    const isStale = (err: unknown) => err instanceof ParleyError && err.code === 'stale_owner';

    t.test('fences: a claim takes the next epoch (or atLeast) and sees the reserved mark', async (t) => {
      const key = fenceKeys.conv(conv());
      t.strictSame(await store.claimEpoch(key), { epoch: 1, reserved: 0 }, 'a new key');
      await store.reserve(key, 1, 1000);
      t.strictSame(await store.claimEpoch(key), { epoch: 2, reserved: 1000 }, 'the next activation starts above the reservation');
      t.strictSame(await store.claimEpoch(key, 10), { epoch: 10, reserved: 1000 }, 'atLeast (a lease epoch) above the stored one');
      t.strictSame(await store.claimEpoch(key, 5), { epoch: 11, reserved: 1000 }, 'atLeast below the stored one');
      t.strictSame(await store.claimEpoch(fenceKeys.inbox(`${uid()}.${uid()}`)), { epoch: 1, reserved: 0 }, 'per key');
    });

    t.test('fences: reserve raises the mark under the current epoch only; release hands back', async (t) => {
      const key = fenceKeys.conv(conv());
      const old = await store.claimEpoch(key);
      await store.reserve(key, old.epoch, 100);
      const cur = await store.claimEpoch(key);
      await t.rejects(store.reserve(key, old.epoch, 5000), { code: 'stale_owner' }, 'a stale epoch is refused');
      await t.rejects(store.release(key, old.epoch, 0), { code: 'stale_owner' }, 'a stale release is refused');
      await store.reserve(key, cur.epoch, 300);
      await store.reserve(key, cur.epoch, 200); // late, lower: never lowers
      await store.reserve(key, cur.epoch, 300); // again (a retry after a timeout): harmless
      t.strictSame(await store.claimEpoch(key, cur.epoch + 1), { epoch: cur.epoch + 1, reserved: 300 }, 'the stale reservation changed nothing');
      await t.rejects(store.reserve(key, cur.epoch, 400), { code: 'stale_owner' }, 'replaced in turn');
      const last = await store.claimEpoch(key);
      await store.reserve(key, last.epoch, 1000);
      await store.release(key, last.epoch, 340);
      t.strictSame((await store.claimEpoch(key)).reserved, 340, 'a release hands back the unused part');
      await t.rejects(store.reserve(fenceKeys.conv(conv()), 1, 10), { code: 'stale_owner' }, 'a key never claimed');
    });

    t.test('fences: racing activations through every client get distinct epochs and disjoint blocks', async (t) => {
      const key = fenceKeys.conv(conv());
      const claims = await Promise.all(range(0, 7).map((i) => writers[i % writers.length]!.claimEpoch(key)));
      const epochs = claims.map((c) => c.epoch);
      t.equal(new Set(epochs).size, epochs.length, `distinct epochs: ${epochs.join(' ')}`);
      t.equal(Math.max(...epochs), 8);
      // Activations that each claim and then reserve the block above what they saw, racing: whichever
      // reservations succeed cover disjoint ranges, so no two activations hand out one number.
      const won: [number, number][] = [];
      await Promise.all(range(0, 5).map(async (i) => {
        const s = writers[i % writers.length]!;
        for (let round = 0; round < 3; round++) {
          const c = await s.claimEpoch(key);
          try {
            await s.reserve(key, c.epoch, c.reserved + 100);
            won.push([c.reserved + 1, c.reserved + 100]);
          } catch (err) {
            if (!isStale(err)) throw err;
          }
        }
      }));
      t.ok(won.length >= 1, `${won.length} activations reserved a block`);
      won.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < won.length; i++) t.ok(won[i]![0] > won[i - 1]![1], `block ${won[i]} after ${won[i - 1]}`);
    });

    t.test('fences: a stale writer after a new activation replaces nothing', async (t) => {
      const c = conv();
      const key = fenceKeys.conv(c);
      const [a] = c.split('.').slice(1) as [string];
      const old = await store.claimEpoch(key);
      await store.reserve(key, old.epoch, 10);
      await store.appendMessage(msg(c, 1, T0, { from: a, cid: 'o1' }), undefined, undefined, old.epoch);
      // A new activation, through the other client: it starts above the old one's reservation.
      const next = await writers[writers.length - 1]!.claimEpoch(key);
      t.equal(next.reserved, 10);
      await writers[writers.length - 1]!.reserve(key, next.epoch, 20);
      await writers[writers.length - 1]!.appendMessage(msg(c, 11, T0 + 2, { from: a, cid: 'n11' }), undefined, undefined, next.epoch);
      // The old activation, not knowing, goes on within its block: refused where the store can check it in
      // the write (LMDB), stored at its own seq otherwise (Scylla); never over the new owner's message.
      const late = await store.appendMessage(msg(c, 2, T0 + 1, { from: a, cid: 'o2' }), undefined, undefined, old.epoch)
        .then(() => 'stored', (err: unknown) => (isStale(err) ? 'refused' : Promise.reject(err)));
      await t.rejects(store.reserve(key, old.epoch, 30), { code: 'stale_owner' }, 'its renewal is refused');
      t.equal((await store.getMessage(c, 11))?.cid, 'n11', 'the new owner\'s message stands');
      t.equal((await store.getMessage(c, 1))?.cid, 'o1', 'what the old owner stored before stands');
      t.equal((await store.getMessage(c, 2))?.cid, late === 'stored' ? 'o2' : undefined, `the late write was ${late}`);
      if (store.kind === 'lmdb') t.equal(late, 'refused', 'LMDB checks the epoch inside the commit');
    });

    t.test('redactMessage keeps the envelope and drops the body for good', async (t) => {
      const c = conv();
      const ms = [
        msg(c, 1, T0),
        msg(c, 2, T0 + 1, { reply: 1, body: new Uint8Array([9, 9, 9]) }),
        msg(c, 3, T0 + DAY, { kind: 'reaction', target: 1, body: { emoji: 'x' } }),
        msg(c, 4, T0 + DAY + 1),
      ];
      await appendAll(store, ms);
      await store.redactMessage(c, 2);
      await store.redactMessage(c, 3);
      const { body: _b2, ...env2 } = ms[1]!;
      const { body: _b3, ...env3 } = ms[2]!;
      t.strictSame(await store.getMessage(c, 2), env2, 'envelope kept, body gone (reply kept)');
      t.strictSame(await store.getMessage(c, 3), env3, 'envelope kept, body gone (target kept)');
      t.strictSame(await store.getMessages(c, { limit: 10 }), [ms[0], env2, env3, ms[3]], 'history shows the hole-free envelope');
      t.equal(await store.lastSeq(c), 4);
      await store.redactMessage(c, 2);
      t.strictSame(await store.getMessage(c, 2), env2, 'redacting twice is harmless');
      await store.redactMessage(c, 99);
      t.equal(await store.getMessage(c, 99), undefined, 'redacting an unknown seq creates nothing');
      t.equal(await store.lastSeq(c), 4);
      await store.redactMessage(conv(), 1);
      t.pass('redacting in an unknown conversation is harmless');
    });

    t.test('a delete and its redaction written together (as a conversation does)', async (t) => {
      const c = conv();
      const original = msg(c, 1, T0 + 4 * HOUR - 1);
      const del = msg(c, 2, T0 + 4 * HOUR, { kind: 'delete', target: 1, body: undefined });
      delete del.body;
      const first = store.appendMessage(original);
      await Promise.all([first, store.appendMessage(del), store.redactMessage(c, 1)]);
      const { body: _gone, ...env } = original;
      t.strictSame(await store.getMessage(c, 1), env);
      t.strictSame(await store.getMessage(c, 2), del);
    });

    // ---- receipt cursors ----

    t.test('cursors', async (t) => {
      const c = conv();
      const [a, b] = c.split('.').slice(1) as [string, string];
      t.strictSame([...(await store.getCursors(c))], [], 'none yet');
      await store.setCursor(c, a, { delivered: 5, read: 3 });
      await store.setCursor(c, b, { delivered: 2, read: 0 });
      let got = await store.getCursors(c);
      t.ok(got instanceof Map);
      t.strictSame(got.get(a), { delivered: 5, read: 3 });
      t.strictSame(got.get(b), { delivered: 2, read: 0 });
      t.equal(got.size, 2);
      await store.setCursor(c, a, { delivered: 9, read: 9 });
      got = await store.getCursors(c);
      t.strictSame(got.get(a), { delivered: 9, read: 9 }, 'overwritten');
      t.strictSame(got.get(b), { delivered: 2, read: 0 }, 'others untouched');
      await store.setCursor(c, b, { delivered: 6, read: 6, from: 7 });
      t.strictSame((await store.getCursors(c)).get(b), { delivered: 6, read: 6, from: 7 }, 'the first seq a member may see');
      await store.setCursor(c, b, { delivered: 8, read: 6, from: 7 });
      t.strictSame((await store.getCursors(c)).get(b), { delivered: 8, read: 6, from: 7 }, 'kept as the cursor moves');
      t.equal((await store.getCursors(conv())).size, 0, 'per conversation');
    });

    t.test('fan-out marks: unset, then a max register however the writes race (through every client)', async (t) => {
      const c = conv();
      t.equal(await store.getFanoutMark(c), undefined, 'never set');
      await store.setFanoutMark(c, 0);
      t.equal(await store.getFanoutMark(c), 0, 'zero is a mark');
      // A stale owner's late, lower writes race the owner's higher ones: the highest stands.
      const marks = [40, 7, 120, 3, 119, 60, 1, 118];
      await Promise.all(marks.map((m, i) => writers[i % writers.length]!.setFanoutMark(c, m)));
      t.equal(await store.getFanoutMark(c), 120, 'the highest of racing writes');
      await store.setFanoutMark(c, 50);
      t.equal(await store.getFanoutMark(c), 120, 'a lower mark never replaces a higher one');
      await store.setFanoutMark(c, 121);
      t.equal(await store.getFanoutMark(c), 121);
      t.equal(await store.getFanoutMark(conv()), undefined, 'per conversation');
    });

    t.test('remembered conversations: a forget removes its own epoch or older, never a newer remembrance', async (t) => {
      const [a, b, c] = [conv(), conv(), conv()];
      const has = async (x: string) => (await store.rememberedConversations()).includes(x);
      await store.rememberConversation(a, 3);
      await writers[writers.length - 1]!.rememberConversation(b, 1);
      t.ok(await has(a) && await has(b), 'both listed, through every client');
      await store.forgetConversation(a, 2);
      t.ok(await has(a), 'an older activation\'s late forget leaves a newer remembrance');
      await store.forgetConversation(a, 3);
      t.notOk(await has(a), 'its own activation\'s forget removes it');
      await store.rememberConversation(a, 4);
      t.ok(await has(a), 'a later activation remembers it again');
      // The old activation's forget racing the new one's remembrance, in either order: the newer stays.
      await Promise.all([store.forgetConversation(c, 5), writers[writers.length - 1]!.rememberConversation(c, 6)]);
      t.ok(await has(c), 'a forget racing a newer remembrance leaves it');
      await store.forgetConversation(b, 1);
      t.notOk(await has(b));
      for (const x of [a, c]) await store.forgetConversation(x, 6);
    });

    // ---- inbox ----

    const entry = (ptr: number, expiresAt = Date.now() + DAY, seq = ptr * 10) => ({
      ptr, conv: 'd.aaaa.bbbb', seq, packed: new Uint8Array([ptr & 255, 1, 2, 3]), expiresAt,
    });
    const ptrs = (es: { ptr: number }[]) => es.map((e) => e.ptr);

    t.test('inbox: put, range (after exclusive, ascending, limit), entries round-trip', async (t) => {
      const dev = `${uid()}.${uid()}`;
      t.strictSame(await store.inboxRange(dev, 0, 10), [], 'empty');
      const es = range(1, 25).map((p) => entry(p));
      for (const e of es) await store.inboxPut(dev, e);
      const got = await store.inboxRange(dev, 0, 100);
      t.strictSame(ptrs(got), range(1, 25));
      for (let i = 0; i < es.length; i++) {
        const { packed: pg, ...g } = got[i]!;
        const { packed: pw, ...w } = es[i]!;
        t.strictSame(g, w);
        t.equal(bytesOf(pg), bytesOf(pw));
      }
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 5)), range(1, 5), 'limit');
      t.strictSame(ptrs(await store.inboxRange(dev, 5, 5)), range(6, 10), 'after is exclusive');
      t.strictSame(ptrs(await store.inboxRange(dev, 22, 5)), [23, 24, 25]);
      t.strictSame(ptrs(await store.inboxRange(dev, 25, 5)), []);
      t.strictSame(await store.inboxRange(`${uid()}.${uid()}`, 0, 5), [], 'per device');
    });

    t.test('inbox: lastPtr is the highest ptr ever written, kept after deletes', async (t) => {
      const dev = `${uid()}.${uid()}`;
      t.equal(await store.inboxLastPtr(dev), 0, 'none');
      await store.inboxPut(dev, entry(1));
      await store.inboxPut(dev, entry(2));
      t.equal(await store.inboxLastPtr(dev), 2);
      await Promise.all([5, 3, 4].map((p) => store.inboxPut(dev, entry(p))));
      t.equal(await store.inboxLastPtr(dev), 5, 'out-of-order writes');
      await store.inboxPut(dev, entry(4));
      t.equal(await store.inboxLastPtr(dev), 5, 'a lower ptr does not lower it');
      await store.inboxDeleteUpTo(dev, 3);
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 10)), [4, 5], 'deleteUpTo is inclusive');
      t.equal(await store.inboxLastPtr(dev), 5);
      await store.inboxDeleteUpTo(dev, 5);
      t.strictSame(await store.inboxRange(dev, 0, 10), [], 'all gone');
      t.equal(await store.inboxLastPtr(dev), 5, 'kept after deleting everything');
      await store.inboxPut(dev, entry(6));
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 10)), [6], 'writes after a delete are kept');
      t.strictSame(ptrs(await store.inboxRange(dev, 5, 10)), [6]);
      t.equal(await store.inboxLastPtr(dev), 6);
    });

    t.test('inbox: reserve raises the high-water mark and never lowers it', async (t) => {
      const dev = `${uid()}.${uid()}`;
      await store.inboxReserve(dev, 1000);
      t.equal(await store.inboxLastPtr(dev), 1000, 'reserved with no entry');
      t.strictSame(await store.inboxRange(dev, 0, 10), [], 'a reservation is not an entry');
      await store.inboxReserve(dev, 500);
      t.equal(await store.inboxLastPtr(dev), 1000, 'a lower reservation does not lower it');
      await store.inboxPut(dev, entry(1001));
      await store.inboxReserve(dev, 2000);
      t.equal(await store.inboxLastPtr(dev), 2000);
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 10)), [1001], 'entries are kept');
    });

    t.test('inbox: deleteUpTo with the held entries listed removes everything up to ptr', async (t) => {
      const dev = `${uid()}.${uid()}`;
      for (const p of [2, 5, 7, 9]) await store.inboxPut(dev, entry(p));
      await store.inboxDeleteUpTo(dev, 7, [2, 5, 7]);
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 100)), [9]);
      await store.inboxDeleteUpTo(dev, 16, [9]);
      t.strictSame(await store.inboxRange(dev, 0, 100), [], 'past the last entry');
      t.equal(await store.inboxLastPtr(dev), 9, 'the mark is the highest ptr written, not the ack');
    });

    t.test('inbox: deleteUpTo', async (t) => {
      const dev = `${uid()}.${uid()}`;
      for (const p of range(1, 10)) await store.inboxPut(dev, entry(p));
      await store.inboxDeleteUpTo(dev, 0);
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 100)), range(1, 10), 'up to 0 deletes nothing');
      await store.inboxDeleteUpTo(dev, 4);
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 100)), range(5, 10));
      await store.inboxDeleteUpTo(dev, 2);
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 100)), range(5, 10), 'a lower ptr again is harmless');
      await store.inboxDeleteUpTo(dev, 100);
      t.strictSame(await store.inboxRange(dev, 0, 100), []);
      await store.inboxDeleteUpTo(`${uid()}.${uid()}`, 5);
      t.pass('unknown device is harmless');
    });

    t.test('inbox: expired entries are never returned', async (t) => {
      const dev = `${uid()}.${uid()}`;
      const now = Date.now();
      await store.inboxPut(dev, entry(1, now - 1000));
      await store.inboxPut(dev, entry(2, now + 1200));
      await store.inboxPut(dev, entry(3, now + DAY));
      await store.inboxPut(dev, entry(4, now - 1));
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 10)), [2, 3], 'already expired ones are skipped');
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 1)), [2], 'limit counts unexpired entries only');
      t.equal(await store.inboxLastPtr(dev), 4, 'expired writes still count for lastPtr');
      await sleep(Math.max(0, now + 1300 - Date.now()));
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 10)), [3], 'expires while stored');
      await sleep(1500);
      t.strictSame(ptrs(await store.inboxRange(dev, 0, 10)), [3], 'and stays expired');
      t.equal(await store.inboxLastPtr(dev), 4);
    });

    // ---- accounts ----

    const user = (over: Partial<UserRecord> = {}): UserRecord => ({
      id: uid(), phone: `+1555${Math.floor(Math.random() * 1e10).toString().padStart(10, '0')}`, name: 'Ada', createdAt: T0, lastSeenPrivacy: 'everyone', ...over,
    });

    t.test('createUser, getUser, userByPhone', async (t) => {
      const u = user({ avatar: 'media-id' });
      t.strictSame(await store.createUser(u), u, 'the new user wins an unclaimed number');
      t.strictSame(await store.getUser(u.id), u);
      t.equal(await store.userByPhone(u.phone), u.id);
      const plain = user();
      await store.createUser(plain);
      t.strictSame(await store.getUser(plain.id), plain, 'no avatar');
      t.notOk('avatar' in (await store.getUser(plain.id))!, 'absent avatar is absent');
      t.equal(await store.getUser(uid()), undefined);
      t.equal(await store.userByPhone('+19999999999999'), undefined);
    });

    t.test('createUser: a taken number returns its holder', async (t) => {
      const first = user();
      await store.createUser(first);
      const second = user({ phone: first.phone, name: 'Other' });
      t.strictSame(await store.createUser(second), first);
      t.equal(await store.userByPhone(first.phone), first.id);
      t.equal(await store.getUser(second.id), undefined, 'the loser is not stored');
    });

    t.test('createUser: a race has one winner and every caller gets it', async (t) => {
      const phone = user().phone;
      const racers = range(1, 8).map((i) => user({ phone, name: `racer ${i}` }));
      const results = await Promise.all(racers.map((r) => store.createUser(r)));
      const winner = results[0]!;
      t.ok(racers.some((r) => r.id === winner.id), 'the winner is one of the racers');
      for (const r of results) t.strictSame(r, winner);
      t.equal(await store.userByPhone(phone), winner.id);
      t.strictSame(await store.getUser(winner.id), winner);
      for (const r of racers) if (r.id !== winner.id) t.equal(await store.getUser(r.id), undefined, `loser ${r.name} not stored`);
    });

    t.test('updateUser', async (t) => {
      const u = user();
      await store.createUser(u);
      await store.updateUser(u.id, { name: 'Grace' });
      t.strictSame(await store.getUser(u.id), { ...u, name: 'Grace' });
      await store.updateUser(u.id, { avatar: 'pic' });
      t.strictSame(await store.getUser(u.id), { ...u, name: 'Grace', avatar: 'pic' });
      await store.updateUser(u.id, { lastSeenPrivacy: 'nobody', name: undefined });
      t.strictSame(await store.getUser(u.id), { ...u, name: 'Grace', avatar: 'pic', lastSeenPrivacy: 'nobody' }, 'undefined leaves a field alone');
      await store.updateUser(u.id, {});
      t.strictSame(await store.getUser(u.id), { ...u, name: 'Grace', avatar: 'pic', lastSeenPrivacy: 'nobody' }, 'empty patch');
      t.equal(await store.userByPhone(u.phone), u.id, 'the phone is not touched');
      await t.rejects(store.updateUser(uid(), { name: 'ghost' }), { code: 'not_found' }, 'unknown user');
    });

    t.test('devices', async (t) => {
      const u = uid();
      t.strictSame(await store.listDevices(u), [], 'none');
      const d1 = { user: u, id: 'bbbbbbbb', name: 'phone', platform: 'ios', createdAt: T0, acked: 0 };
      const d2 = { user: u, id: 'aaaaaaaa', name: 'laptop', platform: 'web', createdAt: T0 + 1, acked: 7, push: { platform: 'fcm' as const, token: 'tok' } };
      await store.putDevice(d1);
      await store.putDevice(d2);
      t.strictSame(await store.getDevice(u, d1.id), d1);
      t.strictSame(await store.getDevice(u, d2.id), d2, 'with push');
      t.strictSame(await store.listDevices(u), [d2, d1], 'sorted by device id');
      t.equal(await store.getDevice(u, 'cccccccc'), undefined);
      t.equal(await store.getDevice(uid(), d1.id), undefined, 'per user');

      await store.setDeviceAcked(u, d1.id, 5);
      t.equal((await store.getDevice(u, d1.id))!.acked, 5);
      await store.setDeviceAcked(u, d1.id, 3);
      t.equal((await store.getDevice(u, d1.id))!.acked, 5, 'acked never goes back');
      await Promise.all([9, 12, 10].map((p) => store.setDeviceAcked(u, d1.id, p)));
      t.equal((await store.getDevice(u, d1.id))!.acked, 12, 'concurrent acks: the highest');
      t.strictSame(await store.getDevice(u, d2.id), d2, 'other device untouched');

      await store.setDevicePush(u, d1.id, { platform: 'apns', token: 'abc' });
      t.strictSame(await store.getDevice(u, d1.id), { ...d1, acked: 12, push: { platform: 'apns', token: 'abc' } });
      await store.setDevicePush(u, d1.id, { platform: 'apns', token: 'def' });
      t.strictSame((await store.getDevice(u, d1.id))!.push, { platform: 'apns', token: 'def' }, 'replaced');

      await store.setDeviceAcked(u, 'zzzzzzzz', 4);
      await store.setDevicePush(u, 'yyyyyyyy', { platform: 'fcm', token: 'x' });
      t.equal(await store.getDevice(u, 'zzzzzzzz'), undefined, 'ack on an unknown device creates nothing');
      t.equal(await store.getDevice(u, 'yyyyyyyy'), undefined, 'push on an unknown device creates nothing');
      t.strictSame((await store.listDevices(u)).map((d) => d.id), [d2.id, d1.id]);
    });

    t.test('devices: a push registration round-trips every field, and is removed', async (t) => {
      const u = uid();
      const d = { user: u, id: 'aaaaaaaa', name: 'browser', platform: 'web', createdAt: T0, acked: 0 };
      await store.putDevice(d);
      const web = { platform: 'webpush' as const, token: 'https://push.example/abc', p256dh: `B${'x'.repeat(86)}`, auth: 'y'.repeat(22), app: 'com.example', previews: true };
      await store.setDevicePush(u, d.id, web);
      t.strictSame(await store.getDevice(u, d.id), { ...d, push: web }, 'every field');
      t.strictSame((await store.listDevices(u))[0]!.push, web, 'listed with it');
      await store.setDevicePush(u, d.id, { platform: 'apns', token: 'ab' });
      t.strictSame((await store.getDevice(u, d.id))!.push, { platform: 'apns', token: 'ab' }, 'replaced whole: no field of the older one is left');
      await store.setDevicePush(u, d.id, undefined);
      t.strictSame(await store.getDevice(u, d.id), d, 'removed');
      const withPush = { ...d, id: 'bbbbbbbb', push: web };
      await store.putDevice(withPush);
      t.strictSame(await store.getDevice(u, withPush.id), withPush, 'putDevice stores it too');
    });

    t.test('push token index: a token has one holder; a claim names the one it replaced; release only by the holder', async (t) => {
      const token = `tok-${uid()}`;
      const [a, b, c] = [`${uid()}.aaaaaaaa`, `${uid()}.bbbbbbbb`, `${uid()}.cccccccc`];
      t.equal(await store.claimPushToken(token, a), undefined, 'a new token: nobody before');
      t.equal(await store.claimPushToken(token, a), undefined, 'claimed again by its holder: nobody replaced');
      t.equal(await store.claimPushToken(token, b), a, 'moved: the old holder is named');
      await store.releasePushToken(token, a);
      t.equal(await store.claimPushToken(token, c), b, 'a release by a former holder changed nothing');
      await store.releasePushToken(token, c);
      t.equal(await store.claimPushToken(token, a), undefined, 'released by its holder: gone');
      t.equal(await store.claimPushToken(`tok-${uid()}`, a), undefined, 'tokens are separate');

      // Racing claims through every client: one holder in the end, and each claim replaced a distinct holder
      // (so every device that lost the token is told, once).
      const raced = `tok-${uid()}`;
      const owners = range(0, 7).map((i) => `${uid()}.d${i}`);
      const replaced = await Promise.all(owners.map((o, i) => writers[i % writers.length]!.claimPushToken(raced, o)));
      const named = replaced.filter((x): x is string => x !== undefined);
      t.equal(named.length, owners.length - 1, 'every claim but the first replaced someone');
      t.equal(new Set(named).size, named.length, 'nobody was replaced twice');
      const last = owners.find((o) => !named.includes(o))!;
      t.equal(await store.claimPushToken(raced, last), undefined, `the holder is the one nobody replaced (${last})`);
    });

    t.test('push marks: put, replaced, listed, deleted', async (t) => {
      const u = uid();
      const key = `${u}.aaaaaaaa`;
      const mark = { user: u, device: 'aaaaaaaa', ptr: 3, conv: 'd.a.b', seq: 9, from: 'a', kind: 'text' as const };
      await store.putPushMark(key, mark);
      t.strictSame((await store.listPushMarks()).filter((m) => m.user === u), [mark]);
      await store.putPushMark(key, { ...mark, ptr: 4 });
      t.strictSame((await store.listPushMarks()).filter((m) => m.user === u), [{ ...mark, ptr: 4 }], 'one per device');
      await store.deletePushMark(key);
      t.strictSame((await store.listPushMarks()).filter((m) => m.user === u), [], 'deleted');
      await store.deletePushMark(key);
      t.pass('deleting again is harmless');
    });

    t.test('mutes: set, replaced, listed per user, unmuted with 0', async (t) => {
      const u = uid();
      t.strictSame(await store.getMutes(u), new Map(), 'none');
      await store.setMute(u, 'g.group1', T0 + 10);
      await store.setMute(u, 'd.a.b', Number.MAX_SAFE_INTEGER);
      await store.setMute(uid(), 'g.group1', T0);
      t.strictSame(await store.getMutes(u), new Map([['d.a.b', Number.MAX_SAFE_INTEGER], ['g.group1', T0 + 10]]));
      await store.setMute(u, 'g.group1', T0 + 20);
      t.equal((await store.getMutes(u)).get('g.group1'), T0 + 20, 'replaced');
      await store.setMute(u, 'g.group1', 0);
      t.strictSame([...(await store.getMutes(u)).keys()], ['d.a.b'], 'unmuted');
      await store.setMute(u, 'g.never', 0);
      t.notOk((await store.getMutes(u)).has('g.never'), 'unmuting what was not muted is harmless');
    });

    t.test('devices: lastActive is a running max', async (t) => {
      const u = uid();
      const d = { user: u, id: 'aaaaaaaa', name: 'phone', platform: 'ios', createdAt: T0, acked: 0 };
      await store.putDevice(d);
      t.notOk('lastActive' in (await store.getDevice(u, d.id))!, 'absent until set');
      await store.setDeviceActive(u, d.id, T0 + 5);
      t.equal((await store.getDevice(u, d.id))!.lastActive, T0 + 5);
      await Promise.all([T0 + 9, T0 + 12, T0 + 3].map((at) => store.setDeviceActive(u, d.id, at)));
      t.equal((await store.getDevice(u, d.id))!.lastActive, T0 + 12, 'concurrent and late writes: the highest');
      t.strictSame(await store.listDevices(u), [{ ...d, lastActive: T0 + 12 }], 'listed with it');
      await store.setDeviceActive(u, 'zzzzzzzz', T0);
      t.equal(await store.getDevice(u, 'zzzzzzzz'), undefined, 'on an unknown device it creates nothing');
    });

    t.test('deleteDevice: the record is gone for good, the user\'s other devices stay', async (t) => {
      const u = uid();
      const gone = { user: u, id: 'bbbbbbbb', name: 'old phone', platform: 'ios', createdAt: T0, acked: 4, push: { platform: 'apns' as const, token: 'tok' } };
      const kept = { user: u, id: 'aaaaaaaa', name: 'laptop', platform: 'web', createdAt: T0 + 1, acked: 0 };
      await store.putDevice(gone);
      await store.putDevice(kept);
      await store.setDeviceActive(u, gone.id, T0 + 10);
      await store.deleteDevice(u, gone.id);
      t.equal(await store.getDevice(u, gone.id), undefined, 'gone');
      t.strictSame(await store.listDevices(u), [kept], 'not listed; the other device untouched');
      // What a user entity may still have in flight for the device: none of it brings it back.
      await Promise.all([
        store.setDeviceAcked(u, gone.id, 9),
        store.setDevicePush(u, gone.id, { platform: 'fcm', token: 'late' }),
        store.setDeviceActive(u, gone.id, Date.now()),
      ]);
      t.equal(await store.getDevice(u, gone.id), undefined, 'late acked / push / active writes create nothing');
      t.strictSame((await store.listDevices(u)).map((d) => d.id), [kept.id]);
      await store.deleteDevice(u, gone.id);
      await store.deleteDevice(uid(), 'cccccccc');
      t.pass('deleting again, or an unknown device, is harmless');
    });

    t.test('inboxDrop: entries and the high-water mark go, other inboxes stay', async (t) => {
      const dev = `${uid()}.${uid()}`;
      const other = `${uid()}.${uid()}`;
      for (const p of range(1, 30)) await store.inboxPut(dev, entry(p));
      await store.inboxReserve(dev, 1000);
      await store.inboxPut(other, entry(7));
      // Writes still in flight when the drop is issued (a delivery racing a sign-out) don't survive it.
      const late = range(31, 40).map((p) => store.inboxPut(dev, entry(p)));
      await store.inboxDrop(dev);
      await Promise.all(late);
      t.strictSame(await store.inboxRange(dev, 0, 100), [], 'no entry left');
      t.equal(await store.inboxLastPtr(dev), 0, 'no high-water mark left');
      t.strictSame(ptrs(await store.inboxRange(other, 0, 10)), [7], 'another device\'s inbox is untouched');
      t.equal(await store.inboxLastPtr(other), 7);
      await store.inboxDrop(`${uid()}.${uid()}`);
      t.pass('an unknown inbox is harmless');
    });

    const otpRecord = (over: Partial<OtpRecord> = {}): OtpRecord => {
      const now = Date.now();
      return { codeHash: 'h1', codeExpiresAt: now + 60_000, attempts: 0, sentAt: now, sends: 1, guesses: 0, guessWindow: 0, guessers: {}, expiresAt: now + 60_000, ...over };
    };
    const look = (cur: OtpRecord | undefined): OtpStep<OtpRecord | undefined> => ({ result: cur });

    t.test('otp: a step sees the stored record, replaces it or leaves it; expired records are gone', async (t) => {
      const phone = user().phone;
      const rec = otpRecord();
      t.equal(await store.getOtp(phone), undefined);
      t.equal(await store.otpUpdate(phone, (cur) => ({ next: rec, result: cur })), undefined, 'the first step sees nothing');
      t.strictSame(await store.getOtp(phone), rec, 'stored');
      t.strictSame(await store.otpUpdate(phone, look), rec, 'a step sees the stored record');
      t.strictSame(await store.getOtp(phone), rec, 'a step without next writes nothing');
      const { codeHash: _spent, ...rest } = rec;
      const next: OtpRecord = { ...rest, attempts: 2, guesses: 2, guessWindow: rec.sentAt, guessers: { '127.0.0.1': 1, '2001:db8:0:1::/64': 1 } };
      t.equal(await store.otpUpdate(phone, () => ({ next, result: 'done' })), 'done', 'the answer is the step\'s');
      t.strictSame(await store.getOtp(phone), next, 'replaced: no code hash stays none, every field round-trips');

      await store.otpUpdate(phone, () => ({ next: { ...rec, expiresAt: Date.now() - 1 }, result: null }));
      t.equal(await store.getOtp(phone), undefined, 'an expired record is not returned');
      t.equal(await store.otpUpdate(phone, look), undefined, 'nor given to a step');
      await store.otpUpdate(phone, () => ({ next: rec, result: null }));
      t.strictSame(await store.getOtp(phone), rec, 'and a new one takes its place');

      const soon = otpRecord({ expiresAt: Date.now() + 1100 });
      await store.otpUpdate(phone, () => ({ next: soon, result: null }));
      t.strictSame(await store.getOtp(phone), soon);
      await sleep(2100); // past the expiry, and past a TTL rounded up to the next second
      t.equal(await store.getOtp(phone), undefined, 'expires while stored');
      t.equal(await store.otpUpdate(phone, (cur) => ({ next: rec, result: cur })), undefined, 'a step after the expiry sees nothing');
      t.strictSame(await store.getOtp(phone), rec, 'and stores afresh');
    });

    t.test('otp: parallel steps on one phone are serialized (a bounded counter grants exactly its bound)', async (t) => {
      const phone = user().phone;
      await store.otpUpdate(phone, () => ({ next: otpRecord(), result: null }));
      // The brief's bug: each guess read the count and wrote count + 1, so parallel guesses all read the old count.
      const grant = (cur: OtpRecord | undefined): OtpStep<number> =>
        cur && cur.attempts < 5 ? { next: { ...cur, attempts: cur.attempts + 1 }, result: cur.attempts } : { result: -1 };
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => writers[i % writers.length]!.otpUpdate(phone, grant)));
      t.strictSame(results.filter((r) => r >= 0).sort(), [0, 1, 2, 3, 4], 'five granted, each after the one before');
      t.equal(results.filter((r) => r < 0).length, 195, 'the rest refused');
      t.equal((await store.getOtp(phone))!.attempts, 5);

      // No update is lost: every one of 60 parallel increments lands, each seeing a different count.
      const inc = (cur: OtpRecord | undefined): OtpStep<number> => ({ next: { ...cur!, guesses: cur!.guesses + 1 }, result: cur!.guesses });
      const seen = await Promise.all(Array.from({ length: 60 }, (_, i) => writers[i % writers.length]!.otpUpdate(phone, inc)));
      t.strictSame([...seen].sort((a, b) => a - b), range(0, 59));
      t.equal((await store.getOtp(phone))!.guesses, 60);
    });

    t.test('contacts', async (t) => {
      const u = uid();
      t.strictSame(await store.getContacts(u), []);
      await store.setContacts(u, ['cccc', 'aaaa', 'bbbb'], []);
      t.strictSame(await store.getContacts(u), ['aaaa', 'bbbb', 'cccc'], 'sorted');
      await store.setContacts(u, ['aaaa', 'dddd'], ['bbbb', 'zzzz']);
      t.strictSame(await store.getContacts(u), ['aaaa', 'cccc', 'dddd'], 'add is idempotent; removing a stranger is harmless');
      await store.setContacts(u, [], []);
      t.strictSame(await store.getContacts(u), ['aaaa', 'cccc', 'dddd'], 'nothing to do');
      await store.setContacts(u, ['eeee'], ['eeee', 'aaaa']);
      t.strictSame(await store.getContacts(u), ['cccc', 'dddd'], 'added and removed at once: removed');
      t.strictSame(await store.getContacts(uid()), [], 'per user');
    });

    t.test('last seen', async (t) => {
      const u = uid();
      t.equal(await store.getLastSeen(u), undefined);
      await store.setLastSeen(u, T0);
      t.equal(await store.getLastSeen(u), T0);
      await store.setLastSeen(u, T0 + 5000);
      t.equal(await store.getLastSeen(u), T0 + 5000);
    });

    // ---- groups ----

    t.test('groups: both directions', async (t) => {
      const [a, b, c, d] = [uid(), uid(), uid(), uid()];
      const g = { id: uid(), name: 'Team', createdBy: a, createdAt: T0, members: { [a]: 'admin' as const, [b]: 'member' as const, [c]: 'member' as const } };
      t.equal(await store.getGroup(g.id), undefined);
      await store.putGroup(g);
      t.strictSame(await store.getGroup(g.id), g);
      for (const u of [a, b, c]) t.strictSame(await store.userGroups(u), [g.id], 'user → group');
      t.strictSame(await store.userGroups(d), []);

      const g2 = { id: uid(), name: 'Two', createdBy: b, createdAt: T0 + 1, members: { [b]: 'admin' as const } };
      await store.putGroup(g2);
      t.strictSame(await store.userGroups(b), [g.id, g2.id].sort(), 'several groups, sorted');

      const next = { ...g, name: 'Renamed', members: { [a]: 'member' as const, [c]: 'admin' as const, [d]: 'member' as const } };
      await store.putGroup(next);
      t.strictSame(await store.getGroup(g.id), next, 'members replaced, roles changed, renamed');
      t.strictSame(await store.userGroups(a), [g.id]);
      t.strictSame(await store.userGroups(b), [g2.id], 'a removed member loses the group');
      t.strictSame(await store.userGroups(c), [g.id]);
      t.strictSame(await store.userGroups(d), [g.id], 'an added member gains it');

      const empty = { ...next, members: {} };
      await store.putGroup(empty);
      t.strictSame(await store.getGroup(g.id), empty, 'a group with no members');
      for (const u of [a, c, d]) t.strictSame(await store.userGroups(u), []);
    });

    t.test('groups: a large group', async (t) => {
      const members: Record<string, 'admin' | 'member'> = {};
      const ids = range(1, 300).map(() => uid());
      for (const u of ids) members[u] = 'member';
      members[ids[0]!] = 'admin';
      const g = { id: uid(), name: 'Big', createdBy: ids[0]!, createdAt: T0, members };
      await store.putGroup(g);
      t.strictSame(await store.getGroup(g.id), g);
      t.strictSame(await store.userGroups(ids[299]!), [g.id]);
    });

    // ---- journal and snapshots ----

    const ev = (seq: number, data: unknown = { n: seq }, tags: string[] = []) => ({ seq, data, tags, createdAt: T0 + seq });
    const evSeqs = (es: { seq: number }[]) => es.map((e) => e.seq);

    t.test('journal: append, read after a seq (exclusive, ascending, limit), every field round-trips', async (t) => {
      const key = `j:${uid()}`;
      t.strictSame(await store.journalRead(key, 0, 10), [], 'empty');
      const es = [
        ev(1, { kind: 'created', name: 'Team', members: { a: 'admin' }, list: [1, 'two', null], n: -1.5, ok: true }, ['group']),
        ev(2, new Uint8Array([0, 1, 2, 250, 255]), ['bytes', 'group']),
        ev(3, 'a string'),
        ev(4, 42),
        ev(5, null, ['x']),
      ];
      for (const e of es) await store.journalAppend(key, e);
      const got = await store.journalRead(key, 0, 100);
      t.strictSame(evSeqs(got), [1, 2, 3, 4, 5]);
      for (let i = 0; i < es.length; i++) {
        const { data: gd, ...g } = got[i]!;
        const { data: wd, ...w } = es[i]!;
        t.strictSame(g, w, `seq ${w.seq}: seq, tags, createdAt`);
        if (wd instanceof Uint8Array) {
          t.ok(gd instanceof Uint8Array, 'bytes stay bytes');
          t.equal(bytesOf(gd), bytesOf(wd));
        } else {
          t.strictSame(gd, wd, `seq ${w.seq}: data`);
        }
      }
      t.strictSame(evSeqs(await store.journalRead(key, 0, 2)), [1, 2], 'limit');
      t.strictSame(evSeqs(await store.journalRead(key, 2, 2)), [3, 4], 'after is exclusive');
      t.strictSame(evSeqs(await store.journalRead(key, 4, 10)), [5]);
      t.strictSame(evSeqs(await store.journalRead(key, 5, 10)), [], 'after the last');
      t.strictSame(evSeqs(await store.journalRead(key, 0, 0)), [], 'limit 0');
      t.strictSame(await store.journalRead(`j:${uid()}`, 0, 10), [], 'per key');
      t.strictSame(await store.journalRead(`${key}x`, 0, 10), [], 'a key that extends another is another key');
    });

    t.test('journal: seqs with gaps, far apart (across partitions), read and paged in order', async (t) => {
      const key = `j:${uid()}`;
      const all = [1, 2, 3, 4999, 5000, 5001, 5002, 12_345, 20_001, 20_002];
      // written out of order and concurrently, as retries might land
      await Promise.all(all.slice().reverse().map((seq) => store.journalAppend(key, ev(seq))));
      t.strictSame(evSeqs(await store.journalRead(key, 0, 100)), all);
      t.strictSame(evSeqs(await store.journalRead(key, 3, 2)), [4999, 5000]);
      t.strictSame(evSeqs(await store.journalRead(key, 5000, 10)), [5001, 5002, 12_345, 20_001, 20_002]);
      t.strictSame(evSeqs(await store.journalRead(key, 6000, 10)), [12_345, 20_001, 20_002], 'after a seq in a gap');
      t.strictSame(evSeqs(await store.journalRead(key, 15_000, 1)), [20_001], 'over an empty stretch');
      t.strictSame(evSeqs(await store.journalRead(key, 20_002, 10)), []);
      const paged: number[] = [];
      for (let after = 0; ;) {
        const page = await store.journalRead(key, after, 3);
        if (!page.length) break;
        paged.push(...evSeqs(page));
        after = page[page.length - 1]!.seq;
      }
      t.strictSame(paged, all, 'paging');
    });

    t.test('journal: a seq is never replaced (the same event again is a harmless retry); bad seqs are refused', async (t) => {
      const key = `j:${uid()}`;
      await store.journalAppend(key, ev(1, 'first'));
      await store.journalAppend(key, ev(1, 'first')); // a retry after a lost answer
      await t.rejects(writers[writers.length - 1]!.journalAppend(key, ev(1, 'other', ['retry'])), { code: 'stale_owner' }, 'another writer\'s event at a taken seq');
      t.strictSame(await store.journalRead(key, 0, 10), [ev(1, 'first')]);
      const racing = await Promise.allSettled(range(0, 5).map((i) => writers[i % writers.length]!.journalAppend(key, ev(2, `writer ${i}`))));
      t.equal(racing.filter((r) => r.status === 'fulfilled').length, 1, 'of racing writers of one seq, one wins');
      t.strictSame(evSeqs(await store.journalRead(key, 0, 10)), [1, 2]);
      for (const seq of [0, -1, 1.5, Number.NaN]) {
        await t.rejects(store.journalAppend(key, ev(seq)), { code: 'invalid' }, `seq ${seq}`);
      }
      t.strictSame(evSeqs(await store.journalRead(key, 0, 10)), [1, 2], "bad seqs stored nothing");
    });

    t.test('snapshots: the latest by seq, older ones superseded', async (t) => {
      const key = `s:${uid()}`;
      t.equal(await store.snapshotLatest(key), undefined, 'none');
      await store.snapshotPut(key, { seq: 5, data: { total: 15, members: ['a', 'b'] }, createdAt: T0 });
      t.strictSame(await store.snapshotLatest(key), { seq: 5, data: { total: 15, members: ['a', 'b'] }, createdAt: T0 });
      await store.snapshotPut(key, { seq: 10, data: { total: 55 }, createdAt: T0 + 1 });
      t.strictSame(await store.snapshotLatest(key), { seq: 10, data: { total: 55 }, createdAt: T0 + 1 });
      await store.snapshotPut(key, { seq: 7, data: { total: 28 }, createdAt: T0 + 2 });
      t.strictSame((await store.snapshotLatest(key))?.seq, 10, 'a late, older snapshot does not replace a newer one');
      await store.snapshotPut(key, { seq: 10, data: { total: 56 }, createdAt: T0 + 3 });
      t.strictSame((await store.snapshotLatest(key))?.data, { total: 56 }, 'the same seq again replaces it');
      const bin = `s:${uid()}`;
      await store.snapshotPut(bin, { seq: 0, data: new Uint8Array([9, 8, 7]), createdAt: T0 });
      const got = await store.snapshotLatest(bin);
      t.equal(got?.seq, 0, 'a snapshot at seq 0 (before any event)');
      t.ok(got?.data instanceof Uint8Array, 'bytes stay bytes');
      t.equal(bytesOf(got?.data), bytesOf(new Uint8Array([9, 8, 7])));
      t.equal(await store.snapshotLatest(`s:${uid()}`), undefined, 'per key');
      await t.rejects(store.snapshotPut(key, { seq: -1, data: 1, createdAt: T0 }), { code: 'invalid' });
    });

    // ---- dev outboxes ----

    t.test('dev outboxes: per box and key, oldest first, through every client, the newest DEV_OUTBOX_KEEP kept', async (t) => {
      const phone = `+1555${uid()}`;
      const user = uid();
      const bytes = (s: string) => new TextEncoder().encode(s);
      const text = (e: { data: Uint8Array }) => new TextDecoder().decode(e.data);
      t.strictSame(await store.devOutboxList('sms', phone), [], 'nothing yet');
      const before = Date.now();
      for (let i = 0; i < 3; i++) await writers[i % writers.length]!.devOutboxAdd('sms', phone, bytes(`code ${i}`));
      await store.devOutboxAdd('push', phone, bytes('another box, the same key'));
      await store.devOutboxAdd('push', user, bytes('a push'));
      for (const reader of writers) {
        const got = await reader.devOutboxList('sms', phone);
        t.strictSame(got.map(text), ['code 0', 'code 1', 'code 2'], 'oldest first, whoever wrote them');
        t.ok(got.every((e) => e.at >= before && e.at <= Date.now()), 'each with when it was sent');
        t.strictSame((await reader.devOutboxList('push', user)).map(text), ['a push']);
        t.strictSame((await reader.devOutboxList('push', phone)).map(text), ['another box, the same key']);
      }
      const busy = uid();
      for (let i = 0; i < DEV_OUTBOX_KEEP + 5; i++) await writers[i % writers.length]!.devOutboxAdd('push', busy, bytes(String(i)));
      const kept = (await store.devOutboxList('push', busy)).map(text);
      t.equal(kept.length, DEV_OUTBOX_KEEP, `the newest ${DEV_OUTBOX_KEEP} of ${DEV_OUTBOX_KEEP + 5}`);
      t.ok(['0', '1', '2', '3', '4'].every((x) => !kept.includes(x)), 'the oldest are the ones gone');
    });

    // ---- analytics ----

    t.test('analytics: a row per (period, source), replaced whole, read per period from every client', async (t) => {
      // Periods unique to this run: a keyspace outlives test runs.
      const day = `d-${uid()}`;
      const month = `m-${uid()}`;
      const other = `d-${uid()}`;
      const b = (...xs: number[]) => new Uint8Array(xs);
      t.strictSame(await store.analyticsRows([day, month]), [], 'nothing yet');
      await writers[0]!.putAnalytics(day, 'n1', b(1));
      await writers[writers.length - 1]!.putAnalytics(day, 'n2', b(2, 2));
      await store.putAnalytics(day, 'n1', b(3, 3, 3)); // replaces n1's row
      await store.putAnalytics(month, 'n1', b(4));
      await store.putAnalytics(other, 'n1', b(5));
      for (const reader of writers) {
        const rows = (await reader.analyticsRows([day, month, day]))
          .map((r) => ({ period: r.period, source: r.source, data: bytesOf(r.data) }))
          .sort((x, y) => (x.period + x.source).localeCompare(y.period + y.source));
        t.strictSame(rows, [
          { period: day, source: 'n1', data: '030303' },
          { period: day, source: 'n2', data: '0202' },
          { period: month, source: 'n1', data: '04' },
        ].sort((x, y) => (x.period + x.source).localeCompare(y.period + y.source)), 'each node\'s last row of the asked periods, once each');
      }
      t.strictSame(await store.analyticsRows([]), [], 'no periods, no rows');
    });

    // ---- media ----

    t.test('media', async (t) => {
      const id = 'ab'.repeat(32);
      const m = { id, mime: 'image/png', size: 12345, owner: uid(), createdAt: T0 };
      t.equal(await store.getMedia(id), undefined);
      await store.putMedia(m);
      t.strictSame(await store.getMedia(id), m);
      await store.putMedia({ ...m, owner: uid(), createdAt: T0 + 1 });
      t.strictSame(await store.getMedia(id), m, 'the first upload of the bytes keeps the id');
      const big = { id: 'cd'.repeat(32), mime: 'video/mp4', size: 3 * 2 ** 32, owner: uid(), createdAt: T0 };
      await store.putMedia(big);
      t.strictSame(await store.getMedia(big.id), big, 'sizes beyond 32 bits');
    });

    t.test('media references: per media, per holder, a group conversation keeps its highest seq', async (t) => {
      const media = newId(32) + newId(32);
      const other = newId(32) + newId(32);
      const [a, b, stranger] = [uid(), uid(), uid()];
      const g = `c:${groupConversationId(uid())}` as const;
      const byHolder = (refs: { holder: string; seq: number }[]) => [...refs].sort((x, y) => (x.holder < y.holder ? -1 : 1));
      t.strictSame(await store.getMediaRefs(media, [`u:${a}`, g, '*']), [], 'none yet');
      t.strictSame(await store.getMediaRefs(media, []), [], 'no holders asked');
      await store.putMediaRefs(media, [{ holder: `u:${a}`, seq: 0 }]);
      await store.putMediaRefs(media, [{ holder: `u:${a}`, seq: 0 }, { holder: `u:${b}`, seq: 0 }]);
      t.strictSame(byHolder(await store.getMediaRefs(media, [`u:${a}`, `u:${b}`, `u:${stranger}`, g])),
        byHolder([{ holder: `u:${a}`, seq: 0 }, { holder: `u:${b}`, seq: 0 }]), 'only the holders asked about that hold it; again is harmless');
      t.strictSame(await store.getMediaRefs(other, [`u:${a}`]), [], 'per media');

      // Writes of a conversation's refs may land in any order: the highest seq wins.
      await Promise.all([7, 3, 12, 5].map((seq) => store.putMediaRefs(media, [{ holder: g, seq }])));
      await store.putMediaRefs(media, [{ holder: g, seq: 9 }]);
      t.strictSame(await store.getMediaRefs(media, [g]), [{ holder: g, seq: 12 }], 'a running max');
      await store.putMediaRefs(media, [{ holder: g, seq: 13 }]);
      t.strictSame(await store.getMediaRefs(media, [g, g]), [{ holder: g, seq: 13 }], 'raised; a holder asked twice answers once');

      await store.putMediaRefs(other, [{ holder: '*', seq: 0 }]);
      t.strictSame(await store.getMediaRefs(other, ['*', `u:${a}`]), [{ holder: '*', seq: 0 }], 'the public holder');

      // A user in many groups asks about all of them at once (more than one IN list's worth in Scylla).
      const groups = Array.from({ length: 250 }, () => `c:${groupConversationId(uid())}` as const);
      await store.putMediaRefs(media, [{ holder: groups[0]!, seq: 1 }, { holder: groups[249]!, seq: 2 }]);
      t.strictSame(byHolder(await store.getMediaRefs(media, [`u:${stranger}`, ...groups])),
        byHolder([{ holder: groups[0]!, seq: 1 }, { holder: groups[249]!, seq: 2 }]), '250 holders in one call');

      // A message naming a media is stored with its refs.
      const c = conv();
      const shared = newId(32) + newId(32);
      const [x, y] = c.split('.').slice(1) as [string, string];
      await store.appendMessage(msg(c, 1, T0, { kind: 'image', body: { media: shared } }), undefined,
        { media: shared, refs: [{ holder: `u:${x}`, seq: 0 }, { holder: `u:${y}`, seq: 0 }] });
      t.strictSame(byHolder(await store.getMediaRefs(shared, [`u:${x}`, `u:${y}`, `u:${stranger}`])),
        byHolder([{ holder: `u:${x}`, seq: 0 }, { holder: `u:${y}`, seq: 0 }]), 'with the append');
      t.equal((await store.getMessage(c, 1))?.kind, 'image');
    });
  });
}
