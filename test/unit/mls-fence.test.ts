import t from 'tap';
import { MlsFence } from '../../src/actors/mls-fence.js';
import { renderDigits, safetyNumber } from '../../src/client/e2e/safety-number.js';
import type { MlsBody } from '../../src/protocol/frames.js';

const commit = (epoch: number, users: string[]): MlsBody => ({ mls: 'commit', epoch, users, data: new Uint8Array([1]) });
const app = (epoch: number): MlsBody => ({ mls: 'app', epoch, data: new Uint8Array([1]) });

t.test('one commit per epoch; messages from the current epoch only', async (t) => {
  const f = MlsFence.fromRecord(undefined, false);
  t.equal(f.admit(app(0), ['a']), undefined, 'not encrypted yet: nothing owed');
  const first = f.admit(commit(0, ['a', 'b']), ['a', 'b'])!;
  t.equal(f.current, 1);
  t.throws(() => f.admit(commit(0, ['a', 'b']), ['a', 'b']), { code: 'epoch_conflict' }, 'a second commit from epoch 0');
  t.throws(() => f.admit(commit(2, ['a', 'b']), ['a', 'b']), { code: 'epoch_conflict' }, 'nor one from an epoch not reached');
  t.throws(() => f.admit(app(0), ['a', 'b']), { code: 'epoch_stale' });
  t.equal(f.admit(app(1), ['a', 'b']), undefined);
  t.strictSame(first.record(7), { epoch: 0, users: [], pending: { seq: 7, users: ['a', 'b'] } });
  t.strictSame(first.done, { epoch: 1, users: ['a', 'b'] });
});

t.test('a commit that is not stored gives its epoch back', async (t) => {
  const f = MlsFence.fromRecord({ epoch: 3, users: ['a', 'b'] }, false);
  const c = f.admit(commit(3, ['a']), ['a'])!;
  c.undo();
  t.equal(f.current, 3);
  t.ok(f.admit(commit(3, ['a', 'b']), ['a', 'b']), 'the epoch is free again');
});

t.test('the membership owed: encrypted messages wait for a commit declaring the members', async (t) => {
  const f = MlsFence.fromRecord({ epoch: 2, users: ['a', 'b', 'c'] }, false);
  t.equal(f.admit(app(2), ['a', 'b', 'c']), undefined);
  t.throws(() => f.admit(app(2), ['a', 'b']), { code: 'epoch_stale' }, 'c was removed by the admin API');
  t.ok(f.owed(['a', 'b']));
  f.admit(commit(2, ['a', 'b']), ['a', 'b']);
  t.equal(f.admit(app(3), ['a', 'b']), undefined, 'the commit reflected it');
});

t.test('after a restart: a pending commit counts if its message is in the log', async (t) => {
  const rec = { epoch: 4, users: ['a', 'b'], pending: { seq: 9, users: ['a'] } };
  const landed = MlsFence.fromRecord(rec, true);
  t.equal(landed.current, 5);
  t.ok(landed.owed(['a', 'b']), 'with the users it declared');
  const lost = MlsFence.fromRecord(rec, false);
  t.equal(lost.current, 4);
  t.notOk(lost.owed(['a', 'b']));
});

t.test('an erased member is named no more, and the commit removing its leaves is still owed', async (t) => {
  const f = MlsFence.fromRecord({ epoch: 2, users: ['a', 'b', 'c'] }, false);
  t.equal(f.erase('z', '~erased'), undefined, 'not a declared user: nothing to store');
  t.strictSame(f.erase('c', '~erased'), { epoch: 2, users: ['a', 'b', '~erased'] });
  t.ok(f.owed(['a', 'b']));
});

t.test('safety numbers: 12 groups of 5 digits, the same whoever computes it, changed by any key', async (t) => {
  t.equal(renderDigits(new Uint8Array(64)), Array(12).fill('00000').join(' '));
  const k = (x: number) => new Uint8Array([x, x, x]);
  const one = await safetyNumber(new Map([['alice', [k(1), k(2)]], ['bob', [k(3)]]]));
  const other = await safetyNumber(new Map([['bob', [k(3)]], ['alice', [k(2), k(1)]]]));
  t.equal(one, other, 'order of users and keys does not matter');
  t.match(one, /^(\d{5} ){11}\d{5}$/);
  t.not(await safetyNumber(new Map([['alice', [k(1), k(2)]], ['bob', [k(4)]]])), one);
  t.not(await safetyNumber(new Map([['alice', [k(1)]], ['bob', [k(2), k(3)]]])), one, 'a key moved to the other user');
});
