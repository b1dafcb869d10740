import t from 'tap';
import { messageTtlSeconds, parseRetention } from '../../src/gdpr/retention.js';
import { ERASED_USER, erasedMessage, scrubUser } from '../../src/gdpr/scrub.js';

/** Issue #15 §7 (PARLEY_RETENTION, pure) and the scrubbing erasure does to stored messages and events. */

t.test('retention modes', async (t) => {
  t.same(parseRetention(undefined), { mode: 'forever' });
  t.same(parseRetention('forever'), { mode: 'forever' });
  t.same(parseRetention('transient'), { mode: 'transient' });
  t.same(parseRetention('30d'), { mode: 'days', ms: 30 * 86_400_000 });
  t.same(parseRetention('1d', '250'), { mode: 'days', ms: 250 }, 'the test knob replaces the days with milliseconds');
  for (const bad of ['0d', '7', 'd', '3w', 'never']) t.throws(() => parseRetention(bad), /PARLEY_RETENTION/, `${bad} is refused`);
  t.throws(() => parseRetention('1d', '-5'), /PARLEY_RETENTION_MS/);
  t.equal(messageTtlSeconds(parseRetention('2d')), 172_800, 'Scylla rows live N days');
  t.equal(messageTtlSeconds(parseRetention('1d', '1500')), 2, 'rounded up to whole seconds');
  t.equal(messageTtlSeconds(parseRetention('transient')), 0, 'transient has no TTL: the fan-out mark deletes');
  t.equal(messageTtlSeconds(parseRetention('forever')), 0);
});

t.test('erasure scrubs: tombstones, system messages, journal events', async (t) => {
  const base = { conv: 'g.grp1', dev: 'dev1', ts: 5 };
  t.same(erasedMessage({ ...base, seq: 3, from: 'alice', cid: 'c1', kind: 'text', body: { text: 'hi' }, reply: 2 }, 'alice'),
    { conv: 'g.grp1', seq: 3, from: ERASED_USER, dev: '', cid: '', kind: 'text', ts: 5, reply: 2 }, 'her message: a tombstone keeping seq, time, kind, reply');
  t.same(erasedMessage({ ...base, seq: 4, from: 'bob', cid: 'c2', kind: 'system', body: { event: 'added', by: 'bob', users: ['alice', 'carl'] } }, 'alice'),
    { ...base, seq: 4, from: 'bob', cid: 'c2', kind: 'system', body: { event: 'added', by: 'bob', users: [ERASED_USER, 'carl'] } }, 'a system message naming her: the name replaced');
  t.equal(erasedMessage({ ...base, seq: 5, from: 'bob', cid: 'c3', kind: 'text', body: { text: 'alice is nice' } }, 'alice'), undefined, 'text mentioning a name is not an id: untouched');
  const event = { record: { id: 'grp1', createdBy: 'alice', members: { alice: 'admin', bob: 'member' } }, event: { event: 'created', by: 'alice', users: ['alice', 'bob'] } };
  t.same(scrubUser(event, 'alice'), { record: { id: 'grp1', createdBy: ERASED_USER, members: { [ERASED_USER]: 'admin', bob: 'member' } }, event: { event: 'created', by: ERASED_USER, users: [ERASED_USER, 'bob'] } }, 'keys and values');
  t.equal(event.record.createdBy, 'alice', 'the input is left as it was');
});
