import t from 'tap';
import type { Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import webpush from 'web-push';
import { Fixture } from '../helpers/fixture.js';
import { devCert } from '../helpers/tls.js';
import { ApnsMock, FcmMock, WebPushMock, WnsMock, apnsKeys, type Recorded } from '../helpers/push-mocks.js';
import type { TestDevice } from '../helpers/clients.js';
import { collapseIdOf } from '../../src/push/policy.js';

/**
 * Issue #14 end to end: a real node whose four providers point at local servers speaking APNs, FCM v1,
 * Web Push and WNS. Whatever a test says did not happen is shown by a round trip: something sent after it
 * arrives, and the unwanted push did not come first (one provider sends one request at a time here, in the
 * order the notifications fell due: PARLEY_PUSH_CONCURRENCY=1).
 */

const dir = mkdtempSync(join(tmpdir(), 'parley-push-e2e-'));
const cert = devCert(dir, 'apns');
const keys = apnsKeys();
const vapid = webpush.generateVAPIDKeys();
const TOPIC = 'com.example.parley';
let apns: ApnsMock;
let fcm: FcmMock;
let wp: WebPushMock;
let wns: WnsMock;
let f: Fixture;

t.before(async () => {
  [apns, fcm, wp, wns] = await Promise.all([ApnsMock.start(keys, TOPIC, cert), FcmMock.start(), WebPushMock.start(vapid.publicKey), WnsMock.start()]);
  writeFileSync(join(dir, 'apns.p8'), keys.privatePem);
  writeFileSync(join(dir, 'fcm.json'), JSON.stringify(fcm.serviceAccount));
  f = await Fixture.start({
    PARLEY_PUSH_COALESCE_MS: '700', PARLEY_PUSH_CONCURRENCY: '1', PARLEY_PUSH_RETRY_BASE_MS: '60000',
    PARLEY_RATE_PER_S: '100000', PARLEY_RATE_BURST: '100000',
    PARLEY_APNS_URL: apns.url, PARLEY_APNS_KEY_FILE: join(dir, 'apns.p8'), PARLEY_APNS_KEY_ID: keys.keyId, PARLEY_APNS_TEAM_ID: keys.teamId,
    PARLEY_APNS_TOPIC: TOPIC, PARLEY_APNS_CA_FILE: cert.caFile,
    PARLEY_FCM_SERVICE_ACCOUNT: join(dir, 'fcm.json'), PARLEY_FCM_URL: fcm.url,
    PARLEY_VAPID_PUBLIC_KEY: vapid.publicKey, PARLEY_VAPID_PRIVATE_KEY: vapid.privateKey, PARLEY_VAPID_SUBJECT: 'mailto:ops@example.com',
    PARLEY_WEBPUSH_ORIGINS: wp.url,
    PARLEY_WNS_CLIENT_ID: WnsMock.clientId, PARLEY_WNS_CLIENT_SECRET: WnsMock.clientSecret, PARLEY_WNS_TOKEN_URL: `${wns.url}/accesstoken.srf`,
    PARLEY_WNS_ORIGINS: wns.url,
  });
});
t.teardown(async () => {
  await f.destroy();
  await Promise.all([apns.close(), fcm.close(), wp.close(), wns.close()]);
  rmSync(dir, { recursive: true, force: true });
});

let tokens = 0;
const apnsToken = (): string => (++tokens).toString(16).padStart(64, 'a');
const forToken = (token: string) => (rs: Recorded[]) => rs.filter((r) => r.token === token);
const aps = (r: Recorded) => (r.payload as { aps: { badge?: number; alert?: { title?: string; body?: string } }; conv: string; seq: number; count: number });

async function alice(t: Test): Promise<TestDevice> {
  const a = await f.device(t);
  await a.client.setProfile({ name: 'Alice' });
  return a;
}

/** A signed-in device of `of` (a new user when absent) that registers `reg`, then goes offline. */
async function offlineDevice(t: Test, reg: (c: TestDevice['client']) => Promise<unknown>, of?: TestDevice): Promise<TestDevice> {
  const d = of ? await f.secondDevice(t, of) : await f.device(t);
  t.same(await reg(d.client), { registered: true });
  await d.close();
  return d;
}

t.test('a phone with no open socket is pushed while the same user\'s laptop is online', async (t) => {
  const a = await alice(t);
  const token = apnsToken();
  const phone = await offlineDevice(t, (c) => c.registerPush('apns', token));
  const laptop = await f.secondDevice(t, phone);
  const sent = await a.client.text({ to: phone.user }, 'secret words');
  await laptop.waitMessage((m) => m.seq === sent.seq, 'the laptop has it live');
  const [r] = await apns.waitFor((rs) => { const x = forToken(token)(rs); return x.length ? x : undefined; }, 5000, 'the phone\'s push');
  t.equal(r!.status, 200);
  t.match(aps(r!), { aps: { alert: { body: 'New message from Alice' }, badge: 1 }, conv: sent.conv, seq: sent.seq, count: 1 });
  t.notOk(JSON.stringify(r!.payload).includes('secret'), 'previews are off by default: no text');
  t.match(r!.headers, { 'apns-topic': TOPIC, 'apns-collapse-id': collapseIdOf(sent.conv), 'apns-push-type': 'alert' });

  // The phone wakes and syncs: the message is in its inbox.
  const woke = await f.device(t, { session: phone.session, phone: phone.phone });
  await woke.waitMessage((m) => m.seq === sent.seq, 'the phone syncs it');
});

t.test('a burst of 20 is one notification per offline device through each provider, with a count', async (t) => {
  const a = await alice(t);
  const token = apnsToken();
  const phone = await offlineDevice(t, (c) => c.registerPush('apns', token));
  await offlineDevice(t, (c) => c.registerPush('fcm', 'fcm-burst-token'), phone);
  const sub = wp.add(wp.subscribe());
  await offlineDevice(t, (c) => c.registerPush('webpush', undefined, { endpoint: sub.endpoint, keys: sub.keys, previews: true }), phone);
  const channel = wns.channel();
  await offlineDevice(t, (c) => c.registerPush('wns', channel), phone);

  const sent = await Promise.all(Array.from({ length: 20 }, (_, i) => a.client.text({ to: phone.user }, `burst ${i + 1}`)));
  const last = Math.max(...sent.map((s) => s.seq));
  const one = async (mock: ApnsMock | FcmMock | WebPushMock | WnsMock, addr: string) =>
    (await mock.waitFor((rs) => { const x = rs.filter((r) => r.token === addr || r.path === new URL(addr, 'http://x').pathname); return x.length ? x : undefined; }, 5000, `a push to ${addr}`))[0]!;
  const viaApns = await one(apns, token);
  t.match(aps(viaApns), { aps: { badge: 20, alert: { body: '20 new messages from Alice' } }, seq: last, count: 20 }, 'APNs: one, with the count');
  const viaFcm = await fcm.waitFor((rs) => rs.find((r) => r.token === 'fcm-burst-token'), 5000, 'the FCM push');
  t.match(viaFcm.payload, { message: { data: { count: '20', seq: String(last) }, notification: { body: '20 new messages from Alice' }, android: { collapse_key: collapseIdOf(sent[0]!.conv) } } }, 'FCM: one');
  const viaWp = await one(wp, sub.endpoint);
  t.match(viaWp.payload, { count: 20, seq: last, title: 'Alice' }, 'Web Push: one, decrypted');
  t.match((viaWp.payload as { body: string }).body, /^burst \d+ \(\+19 more\)$/, 'this device allowed previews: the newest text shows');
  const viaWns = await one(wns, channel);
  t.match(viaWns.payload, /<text>20 new messages from Alice<\/text>/, 'WNS: one toast');

  // Round trip: one more message is one more notification on each, and nothing of the burst came between.
  const next = await a.client.text({ to: phone.user }, 'after the burst');
  await apns.waitFor((rs) => forToken(token)(rs).length >= 2 || undefined, 5000, 'the next APNs push');
  await fcm.waitFor((rs) => rs.filter((r) => r.token === 'fcm-burst-token').length >= 2 || undefined, 5000, 'the next FCM push');
  await wp.waitFor((rs) => rs.filter((r) => r.path === new URL(sub.endpoint).pathname).length >= 2 || undefined, 5000, 'the next Web Push');
  await wns.waitFor((rs) => rs.filter((r) => r.path === new URL(channel).pathname).length >= 2 || undefined, 5000, 'the next WNS push');
  const apnsAll = forToken(token)(apns.requests);
  t.equal(apnsAll.length, 2, 'APNs: exactly two notifications for 21 messages');
  t.match(aps(apnsAll[1]!), { seq: next.seq, count: 1, aps: { badge: 1 } });
  t.equal(fcm.requests.filter((r) => r.token === 'fcm-burst-token').length, 2, 'FCM: two');
  t.equal(wp.requests.filter((r) => r.path === new URL(sub.endpoint).pathname).length, 2, 'Web Push: two');
  t.equal(wns.requests.filter((r) => r.path === new URL(channel).pathname).length, 2, 'WNS: two');
});

t.test('a muted conversation does not push; another conversation still does, and unmuted it pushes again', async (t) => {
  const a = await alice(t);
  const carol = await f.device(t);
  const token = apnsToken();
  const phone = await offlineDevice(t, (c) => c.registerPush('apns', token));
  const laptop = await f.secondDevice(t, phone); // online: mutes for the user
  const muted = await a.client.text({ to: phone.user }, 'hello?');
  await apns.waitFor((rs) => forToken(token)(rs).length === 1 || undefined, 5000, 'the first push');
  t.same(await laptop.client.mute(muted.conv), { conv: muted.conv, until: Number.MAX_SAFE_INTEGER });

  await a.client.text({ to: phone.user }, 'are you there?');
  const other = await carol.client.text({ to: phone.user }, 'from carol');
  const [, second] = await apns.waitFor((rs) => { const x = forToken(token)(rs); return x.length >= 2 ? x : undefined; }, 5000, 'carol\'s push');
  t.match(aps(second!), { conv: other.conv, seq: other.seq, count: 1 }, 'carol\'s message alone: alice\'s muted one was not in the burst');

  t.same(await laptop.client.mute(muted.conv, 0), { conv: muted.conv, until: 0 }, 'unmuted');
  const again = await a.client.text({ to: phone.user }, 'now?');
  const [, , third] = await apns.waitFor((rs) => { const x = forToken(token)(rs); return x.length >= 3 ? x : undefined; }, 5000, 'the push after unmuting');
  t.match(aps(third!), { conv: again.conv, seq: again.seq });
  t.equal(forToken(token)(apns.requests).length, 3);
});

t.test('a token APNs calls unregistered is removed: after a restart the next message pushes only the live device', async (t) => {
  const a = await alice(t);
  const dead = apnsToken();
  const live = apnsToken();
  apns.unregistered.add(dead);
  const phone = await offlineDevice(t, (c) => c.registerPush('apns', dead));
  await offlineDevice(t, (c) => c.registerPush('apns', live), phone);
  await a.client.text({ to: phone.user }, 'one');
  await apns.waitFor((rs) => (forToken(dead)(rs).length && forToken(live)(rs).length) || undefined, 5000, 'both pushed once');
  t.equal(forToken(dead)(apns.requests)[0]!.status, 410);

  // The node forgets what it held in memory; what it knows of the registration now comes from the store.
  // Its removal happens in the user entity's turn after the 410; wait for it by a round trip through that entity.
  await a.client.text({ to: phone.user }, 'two'); // after the drop message in the user's mailbox
  await apns.waitFor((rs) => forToken(live)(rs).length >= 2 || undefined, 5000, 'the live device\'s second push');
  await f.restart();
  const a2 = await f.device(t, { session: a.session, phone: a.phone });
  // Two rounds: the devices' order in the entity is the store's, so the dead one might come second in the
  // first round; it would still come before the live device's push of the second.
  const three = await a2.client.text({ to: phone.user }, 'three');
  await apns.waitFor((rs) => forToken(live)(rs).length >= 3 || undefined, 10_000, 'the live device\'s third push');
  const four = await a2.client.text({ to: phone.user }, 'four');
  const pushes = await apns.waitFor((rs) => { const x = forToken(live)(rs); return x.length >= 4 ? x : undefined; }, 10_000, 'the live device\'s fourth push');
  t.match(aps(pushes[2]!), { seq: three.seq, count: 1 });
  t.match(aps(pushes[3]!), { seq: four.seq, count: 1 });
  t.equal(forToken(dead)(apns.requests).length, 1, 'the dead token was not pushed again: its registration is gone from the store');
});

t.test('a token registered by another user\'s device leaves the old device', async (t) => {
  const a = await alice(t);
  const token = apnsToken();
  const bob = await offlineDevice(t, (c) => c.registerPush('apns', token));
  const carol = await offlineDevice(t, (c) => c.registerPush('apns', token)); // the same phone, now carol's app
  const toBob = await a.client.text({ to: bob.user }, 'for bob');
  const toCarol = await a.client.text({ to: carol.user }, 'for carol');
  const [first] = await apns.waitFor((rs) => { const x = forToken(token)(rs); return x.length ? x : undefined; }, 5000, 'carol\'s push');
  t.match(aps(first!), { conv: toCarol.conv, seq: toCarol.seq }, 'the first push to the token is carol\'s: bob\'s device no longer has it');
  t.not(toBob.conv, toCarol.conv);
});

t.test('registrations are checked: a Web Push endpoint elsewhere than the allowed push services is refused', async (t) => {
  const d = await f.device(t);
  const sub = wp.subscribe();
  const err = await d.client.registerPush('webpush', undefined, { endpoint: `${f.url}/v1/admin/actors`, keys: sub.keys }).catch((e: unknown) => e);
  t.match(err, { code: 'invalid', message: /does not send webpush notifications to/ });
  t.match(await d.client.registerPush('apns', 'not-hex').catch((e: unknown) => e), { code: 'invalid', message: /hex digits/ });
  t.same(await d.client.unregisterPush(), { registered: false });
});

t.test('a group message: the online member has it at once; the 30 offline ones are pushed once each, queued behind a slow service', async (t) => {
  const a = await alice(t);
  const online = await f.device(t);
  const offline: string[] = [];
  await Promise.all(Array.from({ length: 30 }, async (_, i) => {
    const d = await offlineDevice(t, (c) => c.registerPush('fcm', `group-member-${i}`));
    offline.push(d.user);
  }));
  const g = await a.client.createGroup('Everyone', [online.user, ...offline]);
  fcm.delayMs = 100; // one at a time (PARLEY_PUSH_CONCURRENCY=1): 30 sends take 3 s
  t.teardown(() => { fcm.delayMs = 0; });
  const sent = await a.client.text({ conv: g.conv }, 'hello all');
  await online.waitMessage((m) => m.seq === sent.seq, 'the online member has it live');
  const mine = (rs: Recorded[]) => rs.filter((r) => String(r.token).startsWith('group-member-'));
  t.ok(mine(fcm.requests).length < 30, `delivery did not wait for the pushes (${mine(fcm.requests).length} of 30 sent when it arrived)`);
  await fcm.waitFor((rs) => mine(rs).length >= 30 || undefined, 20_000, 'every offline member pushed');
  const tokens = mine(fcm.requests).map((r) => r.token);
  t.equal(new Set(tokens).size, 30, 'each once');
  t.ok(mine(fcm.requests).every((r) => (r.payload as { message: { data: { seq: string } } }).message.data.seq === String(sent.seq)), 'for the text, not the group\'s system message');
});

t.test('a notification still owed when the node is killed is sent after the restart', async (t) => {
  const a = await alice(t);
  const token = apnsToken();
  const phone = await offlineDevice(t, (c) => c.registerPush('apns', token));
  apns.script.push({ status: 503, reason: 'ServiceUnavailable' }); // the first attempt fails; the retry would wait 30–60 s
  const sent = await a.client.text({ to: phone.user }, 'before the crash');
  await apns.waitFor((rs) => forToken(token)(rs).length === 1 || undefined, 5000, 'the first attempt');
  t.equal(forToken(token)(apns.requests)[0]!.status, 503);
  await f.restart('SIGKILL');
  const [, second] = await apns.waitFor((rs) => { const x = forToken(token)(rs); return x.length >= 2 ? x : undefined; }, 10_000, 'the push after the restart');
  t.equal(second!.status, 200, 'sent by the new process, from the push mark in the store');
  t.match(aps(second!), { conv: sent.conv, seq: sent.seq, count: 1 });

  // Once sent, it is owed no more: another restart sends nothing again (round trip: the next message's push is the next request).
  await f.restart();
  const a2 = await f.device(t, { session: a.session, phone: a.phone });
  const next = await a2.client.text({ to: phone.user }, 'after');
  const [, , third] = await apns.waitFor((rs) => { const x = forToken(token)(rs); return x.length >= 3 ? x : undefined; }, 10_000, 'the next push');
  t.match(aps(third!), { seq: next.seq, count: 1 }, 'the third request is the new message\'s: nothing was sent twice');
});

t.test('the node logged no errors', async (t) => { t.same(f.errorLogs(), []); });
