import t from 'tap';
import { SeqOrder } from '../../src/client/seq-order.js';

t.test("the SDK's order: increasing seq per conversation as messages, gaps not waited for, a lower one late", async (t) => {
  const o = new SeqOrder();
  t.strictSame([1, 2, 4, 7].map((s) => o.place('c', s)), ['message', 'message', 'message', 'message'], 'gaps (a failed write, one not for this device) go straight on');
  t.equal(o.place('c', 5), 'late', 'below one already emitted: late, after a crash');
  t.equal(o.place('c', 8), 'message', 'and the conversation goes on from its highest');
  t.equal(o.place('d', 1), 'message', 'conversations are independent');
  t.equal(o.place('c', 3), 'late');
});

t.test('it remembers the most recently active conversations, up to its bound', async (t) => {
  const o = new SeqOrder(2);
  o.place('a', 10);
  o.place('b', 10);
  o.place('a', 11); // a is now the most recent
  o.place('c', 10); // b, the least recent, is forgotten
  t.equal(o.place('a', 5), 'late', 'a is remembered');
  t.equal(o.place('b', 5), 'message', 'b was forgotten: it starts afresh');
});
