import t from 'tap';
import { http } from '../helpers/fixture.js';
import { API_KEY, texts } from '../helpers/clients.js';
import { eventually, scyllaNodeForTests } from '../helpers/cql.js';
import { devSignIn } from '../../src/client/accounts-api.js';
import { deviceKey } from '../../src/protocol/ids.js';

/**
 * Signing a device out on the Scylla store (a real CQL server: PARLEY_CQL_CONTACT): its token is refused,
 * its socket closes with 4401, and its rows are gone from CQL — the device row (acked, push, last active)
 * and its whole inbox partition, with what was waiting in it — while the user's other devices go on.
 */

const s = scyllaNodeForTests(t, 'parley_devices');

t.test('a signed-out device leaves nothing in CQL, and the other devices go on', async (t) => {
  const carol = await s.f.device(t);
  const phone = await s.f.device(t);
  const laptop = await s.f.device(t, { session: await devSignIn(s.f.url, API_KEY, phone.phone, { name: 'laptop', platform: 'web' }), phone: phone.phone });
  const tablet = await devSignIn(s.f.url, API_KEY, phone.phone, { name: 'tablet', platform: 'ios' }); // never connects
  t.same(await laptop.client.registerPush('apns', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'), { registered: true });
  const before = await carol.client.text({ to: phone.user }, 'before');
  await laptop.waitMessage((m) => m.seq === before.seq, 'before, on the laptop', 10_000);

  const inbox = async (device: string) => (await s.admin.execute(`SELECT ptr, last_ptr FROM ${s.keyspace}.inbox WHERE device = ?`, [deviceKey(phone.user, device)], { prepare: true })).rows;
  const row = async (device: string) => (await s.admin.execute(`SELECT id FROM ${s.keyspace}.devices WHERE user_id = ? AND id = ?`, [phone.user, device], { prepare: true })).rowLength;
  const holds = (rows: Awaited<ReturnType<typeof inbox>>) => rows.some((r) => r.get('ptr') !== null);
  t.ok(holds(await eventually(() => inbox(tablet.device), holds)), 'the offline tablet holds the message in its inbox');

  t.same((await phone.client.signOutOthers()).signedOut.sort(), [laptop.session.device, tablet.device].sort());
  await laptop.waitFor(() => laptop.closes.find((c) => c.code === 4401), 5000, 'close 4401');
  for (const token of [laptop.session.token, tablet.token]) {
    const me = await http(s.f.url, '/v1/accounts/me', { headers: { authorization: `Bearer ${token}` } });
    t.equal(me.json.error?.code, 'signed_out');
  }
  for (const d of [laptop.session.device, tablet.device]) {
    t.equal(await row(d), 0, `${d}: no device row`);
    t.same(await inbox(d), [], `${d}: no inbox partition, not even its high-water mark`);
  }
  t.equal(await row(phone.session.device), 1, 'the remaining device is still a row');

  const after = await carol.client.text({ to: phone.user }, 'after');
  await phone.waitMessage((m) => m.seq === after.seq, 'after, on the phone', 10_000);
  t.same(texts(phone.messages), ['before', 'after']);
  t.same(await inbox(tablet.device), [], 'nothing was written for the signed-out tablet afterwards');
  t.same((await phone.client.listDevices()).map((d) => d.id), [phone.session.device]);
});

t.test('the node logged no errors', async (t) => { t.same(s.f.errorLogs(), []); });
