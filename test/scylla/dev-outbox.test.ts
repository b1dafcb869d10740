import t from 'tap';
import { http } from '../helpers/fixture.js';
import { eventually, twoNodesOnOneKeyspace } from '../helpers/cql.js';
import { SHARED_SECRET } from '../features/ownership-cases.js';
import { devCode, requestCode, verifyCode } from '../../src/client/accounts-api.js';
import { API_KEY, newPhone } from '../helpers/clients.js';

/**
 * Issue #13 point 9: the dev outboxes answer for the cluster. Two development nodes on one keyspace (a real
 * Cassandra 5): a code asked for through A is read from B's /v1/dev/otp, and a push A sent to an offline
 * device is listed by B's /v1/dev/push.
 */
const two = twoNodesOnOneKeyspace(t, 'parley_outbox', SHARED_SECRET);

t.test('a sign-in code asked for through A is in B\'s outbox, and signs in through B', async (t) => {
  const phone = newPhone();
  t.equal((await http(two.b.url, `/v1/dev/otp?phone=${encodeURIComponent(phone)}`)).status, 404, 'nothing sent to this number yet');
  await requestCode(two.a.url, API_KEY, phone);
  const code = await devCode(two.b.url, phone);
  t.match(code, /^\d{6}$/);
  t.equal(await devCode(two.a.url, phone), code, 'the same code through A');
  const session = await verifyCode(two.b.url, API_KEY, phone, code);
  t.ok(session.token && session.created, 'signed in through B with it');
  const row = await two.admin.execute(`SELECT box, key FROM ${two.keyspace}.dev_outbox WHERE box = 'sms' AND key = ?`, [phone], { prepare: true });
  t.equal(row.rowLength, 1, 'kept in the store, under the phone');
});

t.test('a push A sent to an offline device is listed by B', async (t) => {
  const alice = await two.a.device(t);
  const bob = await two.a.device(t);
  await bob.client.registerPush('fcm', 'fcm-cluster-token');
  await bob.close();
  const sent = await alice.client.text({ to: bob.user }, 'are you there');
  const notices = async () => (await http(two.b.url, '/v1/dev/push', { headers: { authorization: `Bearer ${bob.session.token}` } })).json.notices as Record<string, unknown>[];
  const list = await eventually(notices, (n) => n.length > 0);
  t.equal(list.length, 1);
  t.match(list[0], { user: bob.user, device: bob.session.device, platform: 'fcm', token: 'fcm-cluster-token', conv: sent.conv, seq: sent.seq, count: 1 });
  const aliceSees = (await http(two.b.url, '/v1/dev/push', { headers: { authorization: `Bearer ${alice.session.token}` } })).json.notices;
  t.same(aliceSees, [], 'each user sees only their own');
});
