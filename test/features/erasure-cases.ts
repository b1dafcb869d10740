import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { devCode, requestCode, uploadMedia } from '../../src/client/accounts-api.js';
import { ERASED_USER } from '../../src/gdpr/scrub.js';
import { API_KEY } from '../helpers/clients.js';
import { http, type Fixture } from '../helpers/fixture.js';

/** A place the scan found one of the erased user's strings: which table or file, which key, which string. */
export interface Hit { where: string; key: string; found: string }
/** Scans every table (database) of the node's store for the strings, as text and as bytes. */
export type StoreScan = (f: Fixture, needles: string[]) => Promise<Hit[]>;

/**
 * What docs/protocol.md ("Erasure") says may remain: copies of the user's messages still waiting in other
 * users' devices' inboxes (deleted when acked, or when they expire), and notifications owed to those
 * devices (deleted once sent). Keyed by the other user's device.
 */
export function allowedRemains(hit: Hit, erased: string): boolean {
  const table = hit.where.replace(/\.\d+$/, ''); // LMDB names carry a format version
  return (table === 'inbox' || table === 'push_marks') && !hit.key.includes(erased);
}

/**
 * Every media file under the node's data directory that holds one of the strings. On the Scylla store media
 * bytes are rows (media_chunks, scanned with every table) and there is no media directory.
 */
export function scanMediaFiles(dataDir: string, needles: string[]): Hit[] {
  const hits: Hit[] = [];
  if (!existsSync(join(dataDir, 'media'))) return hits;
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) { walk(p); continue; }
      const bytes = readFileSync(p);
      for (const n of needles) if (bytes.includes(Buffer.from(n))) hits.push({ where: 'media file', key: name, found: n });
    }
  };
  walk(join(dataDir, 'media'));
  return hits;
}

/** A fresh one-time code for the phone, read from the dev outbox (erasure confirms with one). */
export const code = async (f: Fixture, phone: string): Promise<string> => {
  await requestCode(f.url, API_KEY, phone);
  return devCode(f.url, phone);
};

/**
 * Issue #15 §6: a user with two devices (one online, one with a push registration), contacts both ways, a
 * group they created, media (a profile picture only they hold, a photo sent 1:1, one sent to the group),
 * a mute and messages both ways deletes their account with a fresh one-time code. Their sockets close at
 * once, their tokens are refused, the group goes on with an admin and tombstones where their messages were,
 * and nothing of them is left in any table of the store or any media file beyond what the docs say.
 */
export function erasureCases(t: Test, s: { f: () => Fixture; start: (env: Record<string, string>) => Promise<Fixture>; scan: StoreScan }): void {
  t.test('an erased account leaves nothing behind in the store or media', async (t) => {
    const f = s.f();
    const alice = await f.device(t);
    const phone2 = await f.secondDevice(t, alice, { connect: false });
    await phone2.client.connect();
    await phone2.client.registerPush('fcm', `fcm-token-${randomBytes(8).toString('hex')}`);
    await phone2.close(); // offline, registered
    const bob = await f.device(t);
    const carol = await f.device(t);
    const needles = [alice.user, alice.phone, alice.phone.slice(1)];

    await alice.client.setProfile({ name: 'Alice Erasable' });
    await alice.client.addContacts([bob.user, carol.user]);
    await bob.client.addContacts([alice.user]);
    // A profile picture only she holds (its bytes name her), a photo sent to bob, one sent to the group.
    const avatar = await uploadMedia(f.url, alice.session.token, Buffer.concat([randomBytes(200), Buffer.from(`${alice.user} ${alice.phone}`)]), 'image/png');
    await alice.client.setProfile({ avatar: avatar.id });
    const toBob = await uploadMedia(f.url, alice.session.token, randomBytes(3000), 'image/jpeg');
    const toGroup = await uploadMedia(f.url, alice.session.token, randomBytes(3000), 'image/jpeg');

    const group = await alice.client.createGroup('erasure circle', [bob.user, carol.user]);
    const d1 = await alice.client.text({ to: bob.user }, 'alice to bob, private');
    await alice.client.send({ to: bob.user }, 'image', { media: toBob.id });
    await bob.client.text({ to: alice.user }, 'bob to alice');
    const g1 = await alice.client.text({ conv: group.conv }, 'alice in the group');
    await alice.client.send({ conv: group.conv }, 'image', { media: toGroup.id });
    const g2 = await bob.client.text({ conv: group.conv }, 'bob in the group');
    await alice.client.mute(group.conv);
    await bob.waitMessage((m) => m.conv === group.conv && m.seq > g1.seq && m.kind === 'image', 'alice\'s group photo', 10_000);
    await carol.waitMessage((m) => m.conv === group.conv && m.seq === g2.seq, 'bob\'s group message', 10_000);
    await alice.waitMessage((m) => m.conv === d1.conv && m.from === bob.user, 'bob\'s reply', 10_000);

    const before = await s.scan(f, needles);
    t.ok(before.length > 10, `before: her id and phone are in the store (${before.length} places)`);

    // A fresh code for her phone confirms it; a wrong one refuses and erases nothing.
    const auth = { authorization: `Bearer ${alice.session.token}` };
    const right = await code(f, alice.phone);
    const wrong = await http(f.url, '/v1/accounts/me', { method: 'DELETE', headers: auth, json: { code: String((Number(right) + 1) % 1_000_000).padStart(6, '0') } });
    t.equal(wrong.json?.error?.code, 'otp_invalid', 'a wrong code erases nothing');
    t.equal((await http(f.url, '/v1/accounts/me', { headers: auth })).status, 200, 'she is still signed in');
    const erased = await http(f.url, '/v1/accounts/me', { method: 'DELETE', headers: auth, json: { code: right } });
    t.same([erased.status, erased.json], [200, { erased: true }], 'the account is erased');

    await alice.waitFor(() => alice.closes.find((c) => c.code === 4401), 5000, 'her socket closed as signed out');
    t.equal((await http(f.url, '/v1/accounts/me', { headers: auth })).json?.error?.code, 'signed_out', 'her token is refused');
    t.equal((await http(f.url, '/v1/accounts/me', { headers: { authorization: `Bearer ${phone2.session.token}` } })).json?.error?.code, 'signed_out', 'so is her other device\'s');

    // The group goes on: bob is its admin now, her messages are tombstones, the rest is untouched.
    const info = await bob.client.groupInfo(group.id);
    t.same(info.members.map((m) => m.user).sort(), [bob.user, carol.user].sort(), 'she left the group');
    t.equal(info.members.find((m) => m.user === bob.user)?.role, 'admin', 'the longest-standing member is admin');
    t.equal(info.createdBy, ERASED_USER, 'the group no longer names its creator');
    const history = await bob.client.history(group.conv, { limit: 100 });
    const hers = history.find((m) => m.seq === g1.seq)!;
    t.match(hers, { seq: g1.seq, from: ERASED_USER, kind: 'text', cid: '' }, 'her message is a tombstone');
    t.notOk('body' in hers, 'with no body');
    t.match(history.find((m) => m.seq === g2.seq), { from: bob.user, body: { text: 'bob in the group' } }, 'bob\'s message is as it was');
    const seqs = history.map((m) => m.seq);
    t.same(seqs, [...seqs].sort((a, b) => a - b), 'history is in seq order');
    t.equal(new Set(seqs).size, seqs.length, 'no seq lost or doubled');
    const next = await bob.client.text({ conv: group.conv }, 'after her');
    await carol.waitMessage((m) => m.seq === next.seq, 'the group still delivers', 10_000);
    // 1:1 with her: gone, and no new one starts.
    await t.rejects(bob.client.text({ to: alice.user }, 'anyone there?'), { code: 'not_found' }, 'no conversation with an erased user');
    t.same((await bob.client.lookup([alice.phone])).users, {}, 'her number names nobody');

    const hits = [...await s.scan(f, needles), ...scanMediaFiles(f.node.dataDir, needles)];
    t.same(hits.filter((h) => !allowedRemains(h, alice.user)), [], 'nothing of her is left beyond what the docs say');
    const media = await http(f.url, `/v1/media/${avatar.id}`, { headers: { authorization: `Bearer ${bob.session.token}` } });
    t.equal(media.status, 404, 'her profile picture is gone');
    const photo = await http(f.url, `/v1/media/${toGroup.id}`, { headers: { authorization: `Bearer ${carol.session.token}` } });
    t.equal(photo.status, 200, 'the photo she sent the group stays for its members');
  });

  t.test('an erasure cut short by a crash finishes when the node starts again', async (t) => {
    const f = await s.start({ PARLEY_FAULTS: '1', PARLEY_FAULT_APPEND_DELAY_MS: '3000' });
    t.teardown(() => f.destroy());
    const dave = await f.device(t);
    const erin = await f.device(t);
    const group = await dave.client.createGroup('restart circle', [erin.user]);
    await dave.client.text({ conv: group.conv }, 'dave says');
    await dave.client.text({ to: erin.user }, 'dave, privately');
    const c = await code(f, dave.phone);
    // Crash the node while the erasure runs: the group conversation's barrier is held by a slow store
    // (PARLEY_FAULT_APPEND_DELAY_MS) and a message in flight, so the job is mid-way when the kill lands.
    const pending = http(f.url, '/v1/accounts/me', { method: 'DELETE', headers: { authorization: `Bearer ${dave.session.token}` }, json: { code: c } }).catch(() => undefined);
    void erin.client.text({ conv: group.conv }, 'in flight while dave goes').catch(() => undefined);
    await dave.waitFor(() => dave.closes.find((x) => x.code === 4401), 10_000, 'his devices revoked (step 0 done)');
    await f.restart('SIGKILL');
    await pending;
    const needles = [dave.user, dave.phone];
    const done = await waitUntilClean((n) => s.scan(f, n), needles, dave.user, 30_000);
    t.same(done, [], 'the restarted node finished the erasure');
    const audit = readFileSync(join(f.node.dataDir, 'audit.log'), 'utf8');
    const lines = audit.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    t.match(lines.find((l) => l.audit === 'erasure.resumed'), { actor: 'node', subject: dave.user, t: String }, 'the audit log says it was resumed');
    t.match(lines.find((l) => l.audit === 'erasure.done'), { subject: dave.user }, 'and done');
    t.notOk(audit.includes(dave.phone) || audit.includes(dave.phone.slice(1)), 'the audit log holds no phone number');
  });
}

/** Scans until nothing but the allowed remains is found (the resumed job runs in the background). */
async function waitUntilClean(scan: (needles: string[]) => Promise<Hit[]>, needles: string[], erased: string, ms: number): Promise<Hit[]> {
  const until = Date.now() + ms;
  for (;;) {
    const left = (await scan(needles)).filter((h) => !allowedRemains(h, erased));
    if (!left.length || Date.now() > until) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
}
