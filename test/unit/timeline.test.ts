import t from 'tap';
import { Timeline } from '../../src/client/timeline.js';
import type { Message } from '../../src/protocol/frames.js';

/** The SDK's Timeline: a conversation as a chat shows it, whatever order its messages arrive in. */

const msg = (seq: number, from: string, kind: Message['kind'], body?: Message['body'], target?: number): Message => ({
  conv: 'd.aaaa.bbbb', seq, from, dev: 'dev1', cid: `c${seq}`, kind, ts: seq * 1000, ...(body ? { body } : {}), ...(target !== undefined ? { target } : {}),
});

t.test('content in seq order, whatever order pages and live messages come in', async (t) => {
  const tl = new Timeline();
  tl.add(msg(10, 'aaaa', 'text', { text: 'ten' }), msg(12, 'bbbb', 'text', { text: 'twelve' }));
  tl.add(msg(3, 'aaaa', 'text', { text: 'three' }), msg(1, 'bbbb', 'text', { text: 'one' })); // an older page
  tl.add(msg(11, 'aaaa', 'text', { text: 'eleven' })); // late, between
  t.same(tl.slice().map((i) => i.m.seq), [1, 3, 10, 11, 12]);
  t.equal(tl.add(msg(10, 'aaaa', 'text', { text: 'ten' })), false, 'a repeat changes nothing');
  t.equal(tl.size, 5);
  t.equal(tl.first, 1);
  t.equal(tl.last, 12);
  t.equal(tl.indexOf(4), 2, 'the first at or above');
  t.equal(tl.indexOf(13), 5);
  t.same(tl.slice(1, 3).map((i) => i.m.seq), [3, 10]);
});

t.test('edits, reactions and deletes fold into their target, in log order, even before it is loaded', async (t) => {
  const tl = new Timeline();
  tl.add(msg(7, 'aaaa', 'edit', { text: 'hello!' }, 5), msg(8, 'bbbb', 'reaction', { emoji: '👍' }, 5));
  t.equal(tl.size, 0, 'marks alone show nothing');
  tl.add(msg(5, 'aaaa', 'text', { text: 'hello' }));
  let it = tl.get(5)!;
  t.same([it.body, it.edited, it.reactions], [{ text: 'hello!' }, true, { '👍': ['bbbb'] }]);

  tl.add(msg(9, 'bbbb', 'reaction', { emoji: '❤️' }, 5), msg(10, 'aaaa', 'reaction', { emoji: '❤️' }, 5));
  t.same(tl.get(5)!.reactions, { '❤️': ['bbbb', 'aaaa'] }, "a user's newer reaction replaces the older");
  tl.add(msg(11, 'bbbb', 'reaction', { emoji: '' }, 5));
  t.same(tl.get(5)!.reactions, { '❤️': ['aaaa'] }, 'an empty one takes it back');

  tl.add(msg(6, 'bbbb', 'edit', { text: 'hijacked' }, 5));
  t.same(tl.get(5)!.body, { text: 'hello!' }, "another user's edit is not shown (the node refuses it anyway)");

  tl.add(msg(12, 'aaaa', 'delete', undefined, 5));
  it = tl.get(5)!;
  t.same([it.deleted, it.body], [true, undefined]);
  tl.add(msg(4, 'aaaa', 'text')); // as history returns a message deleted for everyone: no body
  t.equal(tl.get(4)!.deleted, true);
  tl.add(msg(2, 'aaaa', 'system', { event: 'created', by: 'aaaa' }));
  t.equal(tl.get(2)!.deleted, false, 'a system message is not a deleted one');
});
