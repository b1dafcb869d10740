import t from 'tap';
import { SEQ_BLOCK, SeqFence } from '../../src/actors/seq-fence.js';

t.test('a fresh activation covers nothing until it reserved a block', async (t) => {
  const f = new SeqFence(3, 40);
  t.notOk(f.covers(41), 'nothing above where it starts');
  f.reservedUpTo(40 + SEQ_BLOCK);
  t.ok(f.covers(41));
  t.ok(f.covers(40 + SEQ_BLOCK));
  t.notOk(f.covers(41 + SEQ_BLOCK));
});

t.test('a renewal starts past half the block, one at a time, and never lowers the mark', async (t) => {
  const f = new SeqFence(1, 0);
  f.reservedUpTo(SEQ_BLOCK);
  t.equal(f.renewal(SEQ_BLOCK / 2), undefined, 'not at half');
  t.equal(f.renewal(SEQ_BLOCK / 2 + 1), SEQ_BLOCK / 2 + 1 + SEQ_BLOCK, 'just past half: a block above the seq');
  t.equal(f.renewal(SEQ_BLOCK / 2 + 2), undefined, 'one in flight');
  f.renewing = false;
  f.reservedUpTo(SEQ_BLOCK / 2 + 1 + SEQ_BLOCK);
  f.reservedUpTo(SEQ_BLOCK); // a late, lower renewal
  t.equal(f.reserved, SEQ_BLOCK / 2 + 1 + SEQ_BLOCK);
});

t.test('a stale activation covers nothing and renews nothing', async (t) => {
  const f = new SeqFence(2, 0);
  f.reservedUpTo(SEQ_BLOCK);
  f.stale = true;
  t.notOk(f.covers(1));
  t.equal(f.renewal(SEQ_BLOCK), undefined);
});
