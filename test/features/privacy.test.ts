import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { devCode, requestCode, uploadMedia } from '../../src/client/accounts-api.js';
import { Fixture, http } from '../helpers/fixture.js';
import { API_KEY, waitFor } from '../helpers/clients.js';
import { tokenFingerprint } from '../../src/gdpr/export.js';

/**
 * Issue #15 §5 and §8: a user's export (a job id, then the archive streamed as JSON), nothing of other users
 * in it beyond what the user sees; and a node run at debug through a chat, an export and an erasure writes no
 * phone number, message body or token to its log, while the audit log records who did what with ids only.
 */

let f: Fixture;
t.before(async () => { f = await Fixture.start({ PARLEY_LOG_LEVEL: 'debug' }); });
t.teardown(() => f.destroy());

t.test('export: a job id, then the archive with everything of the user and only their own messages', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  await alice.client.setProfile({ name: 'Alice Exported' });
  await alice.client.addContacts([bob.user]);
  const pushToken = 'fcm-export-token-0123456789';
  await alice.client.registerPush('fcm', pushToken);
  const photo = await uploadMedia(f.url, alice.session.token, Buffer.from('not really a jpeg, but bytes'), 'image/jpeg');
  const group = await alice.client.createGroup('export circle', [bob.user]);
  const mine = await alice.client.text({ to: bob.user }, 'alice says hi');
  await bob.client.text({ to: alice.user }, 'bob answers, not in her export');
  await alice.client.text({ conv: group.conv }, 'alice in the group');
  await bob.client.text({ conv: group.conv }, 'bob in the group, not in her export');
  await alice.waitMessage((m) => m.from === bob.user && m.conv === group.conv, 'bob in the group', 10_000);

  const auth = { authorization: `Bearer ${alice.session.token}` };
  const job = await http(f.url, '/v1/accounts/me/export', { method: 'POST', headers: auth });
  t.equal(job.status, 200);
  t.match(job.json, { job: String, expiresAt: Number });
  const bobAuth = { authorization: `Bearer ${bob.session.token}` };
  t.equal((await http(f.url, `/v1/accounts/me/export/${job.json.job}`, { headers: bobAuth })).json?.error?.code, 'not_found', 'nobody else can fetch it');
  t.equal((await http(f.url, `/v1/accounts/me/export/${job.json.job.slice(0, -2)}xx`, { headers: auth })).json?.error?.code, 'not_found', 'a forged job id is refused');

  const res = await http(f.url, `/v1/accounts/me/export/${job.json.job}`, { headers: auth });
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /application\/json/);
  const a = res.json;
  t.match(a, {
    format: 'parley.export.v1',
    user: { id: alice.user, phone: alice.phone, name: 'Alice Exported' },
    settings: { lastSeenPrivacy: 'contacts' },
    contacts: [bob.user],
  });
  t.equal(a.devices.length, 1);
  t.same(a.devices[0].push, { platform: 'fcm', tokenFingerprint: tokenFingerprint(pushToken), previews: false }, 'the push token as a fingerprint');
  t.notOk(res.bytes.includes(Buffer.from(pushToken)), 'not the token itself');
  t.match(a.groups, [{ id: group.id, conv: group.conv, name: 'export circle', role: 'admin', createdByYou: true }]);
  t.same(a.media.map((m: { id: string }) => m.id), [photo.id], 'the media she uploaded');
  const texts = a.messages.filter((m: { kind: string }) => m.kind === 'text').map((m: { body: { text: string } }) => m.body.text);
  t.same(texts.sort(), ['alice in the group', 'alice says hi'], 'only her own messages');
  t.ok(a.messages.some((m: { kind: string; body?: { event?: string } }) => m.kind === 'system' && m.body?.event === 'created'), 'and the system message of the group she created');
  t.match(a.messages.find((m: { seq: number; conv: string }) => m.conv === mine.conv), { seq: mine.seq, kind: 'text', device: alice.session.device, cid: String });
  t.notOk(res.bytes.includes(Buffer.from(bob.phone)), 'no other user\'s phone');
});

t.test('the node log after chat, export and erasure: no phone, body or token; the audit log: ids only', async (t) => {
  const carol = await f.device(t);
  const dan = await f.device(t);
  const bodies = ['carol writes something private', 'dan answers privately'];
  await carol.client.text({ to: dan.user }, bodies[0]!);
  await dan.client.text({ to: carol.user }, bodies[1]!);
  await carol.waitMessage((m) => m.from === dan.user, 'dan\'s answer', 10_000);
  const auth = { authorization: `Bearer ${carol.session.token}` };
  const job = await http(f.url, '/v1/accounts/me/export', { method: 'POST', headers: auth });
  await http(f.url, `/v1/accounts/me/export/${job.json.job}`, { headers: auth });
  await requestCode(f.url, API_KEY, carol.phone);
  const code = await devCode(f.url, carol.phone);
  const erased = await http(f.url, '/v1/accounts/me', { method: 'DELETE', headers: { ...auth, 'x-request-id': 'erase-req-1' }, json: { code } });
  t.equal(erased.status, 200);
  await waitFor(() => f.node.logs.find((l) => l.includes('"erase-req-1"')), 5000, 'the access line of the erasure');

  const logs = f.node.logs.join('\n');
  const secrets = [carol.phone, carol.phone.slice(1), dan.phone, dan.phone.slice(1), carol.session.token, dan.session.token, code, ...bodies];
  t.same(secrets.filter((s) => logs.includes(s)), [], 'no phone, token, code or body in the node log');

  const audit = readFileSync(join(f.node.dataDir, 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const hers = audit.filter((l) => l.subject === carol.user);
  t.same(hers.map((l) => l.audit), ['export.requested', 'export.fetched', 'erasure.requested', 'erasure.done'], 'her export and erasure, in order');
  for (const l of hers) t.match(l, { log: 'audit', t: String, node: String, actor: carol.user }, `${String(l.audit)}: who and when`);
  const text = JSON.stringify(audit);
  t.same(secrets.filter((s) => text.includes(s)), [], 'nothing personal beyond the user id in the audit log');
});
