import t from 'tap';
import { randomBytes } from 'node:crypto';
import { scyllaNodeForTests } from '../helpers/cql.js';
import { http } from '../helpers/fixture.js';
import { rawRequest, statusOf, within } from '../helpers/raw-http.js';
import { uploadMedia } from '../../src/client/accounts-api.js';

/**
 * Security issue #10 (media) on the Scylla store: who may fetch a media is kept in media_refs and checked
 * end to end, and an upload answered after a real round trip to the database leaves its connection usable.
 * (test/security/media.test.ts has the whole story on the embedded store.)
 */

const s = scyllaNodeForTests(t, 'parley_media');
const get = (id: string, token: string) => http(s.f.url, `/v1/media/${id}`, { headers: { authorization: `Bearer ${token}` } });

t.test('an upload, then another request on the same connection: both answered', async (t) => {
  const alice = await s.f.device(t);
  const body = randomBytes(1500).toString('hex'); // 3000 bytes of ASCII
  const up = rawRequest(s.f.node.port, 'POST', '/v1/media', {
    authorization: `Bearer ${alice.session.token}`, 'content-type': 'image/png', 'content-length': '3000',
  }, body);
  const first = await within(5000, up.response);
  t.equal(statusOf(first), 201, 'the upload');
  const id = JSON.parse(first.slice(first.indexOf('\r\n\r\n') + 4)).id as string;
  let second = '';
  const answered = new Promise<string>((resolve) => up.socket.on('data', (d) => { second += d.toString(); if (/\r\n\r\n/.test(second)) resolve(second); }));
  up.socket.write(`GET /v1/media/${id}/url HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${alice.session.token}\r\n\r\n`);
  t.equal(statusOf(await within(5000, answered)), 200, 'the next request on that connection is read (the upload left it unpaused)');
  up.socket.destroy();
});

t.test('1:1 and group refs in CQL: who may fetch, who gets 404', async (t) => {
  const [alice, bob, carol, dave] = await Promise.all([s.f.device(t), s.f.device(t), s.f.device(t), s.f.device(t)]);
  const photo = randomBytes(2000);
  const up = await uploadMedia(s.f.url, alice.session.token, photo, 'image/jpeg');
  const direct = await alice.client.send({ to: bob.user }, 'image', { media: up.id });
  await bob.waitMessage((m) => m.seq === direct.seq);
  t.ok((await get(up.id, bob.session.token)).bytes.equals(photo), 'the other user of the 1:1 chat');
  t.equal((await get(up.id, carol.session.token)).status, 404, 'a stranger');
  await t.rejects(carol.client.send({ to: dave.user }, 'image', { media: up.id }), { code: 'not_found' }, 'who can\'t fetch it can\'t send it');

  const g = await alice.client.createGroup('cql', [carol.user]);
  const inGroup = await alice.client.send({ conv: g.conv }, 'video', { media: up.id });
  await carol.waitMessage((m) => m.conv === g.conv && m.seq === inGroup.seq);
  t.equal((await get(up.id, carol.session.token)).status, 200, 'a group member');
  await alice.client.addMembers(g.id, [dave.user]);
  t.equal((await get(up.id, dave.session.token)).status, 404, 'one added after the message');

  const rows = await s.admin.execute(`SELECT holder, seq FROM ${s.keyspace}.media_refs WHERE media = ?`, [up.id], { prepare: true });
  const refs = Object.fromEntries(rows.rows.map((r) => [r.get('holder') as string, Number(r.get('seq'))]));
  t.same(refs, { [`u:${alice.user}`]: 0, [`u:${bob.user}`]: 0, [`c:${g.conv}`]: inGroup.seq }, 'media_refs: the uploader, both of the 1:1, the group as of its message');
});
