import t from 'tap';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { resolve } from 'node:path';
import { ADMIN_KEY, Fixture, http } from '../helpers/fixture.js';
import { uploadMedia } from '../../src/client/accounts-api.js';
import { groupConversationId } from '../../src/protocol/ids.js';
import type { AnalyticsReport } from '../../src/analytics/report.js';

/** Issue #16 §4: the node's product numbers, counted from real traffic and read from the admin API. */

let f: Fixture;
t.before(async () => { f = await Fixture.start({ PARLEY_ANALYTICS_FLUSH_MS: '200' }); });
t.teardown(() => f.destroy());

const today = () => new Date().toISOString().slice(0, 10);
async function report(query = `?from=${today()}&to=${today()}`): Promise<AnalyticsReport> {
  const r = await http(f.url, `/v1/admin/analytics${query}`, { headers: { 'x-admin-key': ADMIN_KEY } });
  if (r.status !== 200) throw new Error(`analytics answered ${r.status}: ${JSON.stringify(r.json)}`);
  return r.json as AnalyticsReport;
}
async function poll<T>(get: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('sign-ups, active users, messages by kind, group vs 1:1, media bytes, pushes and latency; kept across a restart', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const carol = await f.device(t);
  const image = randomBytes(5_000);
  const up = await uploadMedia(f.url, alice.session.token, image, 'image/png');
  const hi = await alice.client.text({ to: bob.user }, 'hello bob');
  const pic = await alice.client.send({ to: bob.user }, 'image', { media: up.id, mime: 'image/png', size: image.length });
  const group = await alice.client.createGroup('trio', [bob.user, carol.user]);
  const inGroup = await alice.client.text({ conv: groupConversationId(group.id) }, 'hello all');
  await bob.waitMessage((m) => m.seq === pic.seq && m.conv === pic.conv);
  await bob.waitMessage((m) => m.seq === inGroup.seq && m.conv === inGroup.conv);
  await carol.waitMessage((m) => m.seq === inGroup.seq && m.conv === inGroup.conv);
  t.ok(hi.seq > 0);

  // A push: bob's registered device goes offline, alice writes, the dev outbox sends the notice.
  t.same(await bob.client.registerPush('fcm', 'fcm-analytics-token'), { registered: true });
  await bob.close();
  const late = await alice.client.text({ to: bob.user }, 'while you were away');
  await poll(async () => (await http(f.url, '/v1/dev/push', { headers: { authorization: `Bearer ${bob.session.token}` } })).json.notices as unknown[], (n) => n.length > 0, 'a push notice');
  const bodyWords = ['hello bob', 'hello all', 'while you were away'];

  const got = await poll(report, (r) => r.days[0]!.pushSent >= 1, 'the push counted');
  const day = got.days[0]!;
  t.equal(got.days.length, 1);
  t.equal(day.day, today());
  t.equal(day.signups, 3, 'three accounts created');
  t.equal(day.dau, 3, 'three users attached a socket (HyperLogLog linear counting: exact at small n)');
  t.equal(day.messages.byKind.text, 3, 'two 1:1 texts and one group text');
  t.equal(day.messages.byKind.image, 1);
  t.equal(day.messages.direct, 3);
  t.equal(day.messages.group, 1 + day.messages.byKind.system, 'the group text and the group\'s own system messages');
  t.equal(day.mediaBytes, image.length);
  t.equal(day.pushSent, 1);
  t.ok(day.latency.count >= 1 && day.latency.p50! >= 0 && day.latency.p99! >= day.latency.p50! && day.latency.p99! < 5_000, `delivery latency timed: ${JSON.stringify(day.latency)}`);
  t.strictSame(got.months, [{ month: today().slice(0, 7), mau: 3 }]);
  t.ok(got.distinctError > 0.008 && got.distinctError < 0.0082, 'the sketch\'s standard error is stated');
  const stored = JSON.stringify(got);
  t.notOk(bodyWords.some((w) => stored.includes(w)) || [alice, bob, carol].some((d) => stored.includes(d.user)), 'no body, no user id');
  t.ok(late.seq > 0);

  // Counted after the last read and stored only by the node's stop (SIGTERM), then read back by the new process.
  await alice.client.text({ to: carol.user }, 'one more');
  await alice.close();
  await carol.close();
  await f.restart('SIGTERM');
  const after = (await report()).days[0]!;
  t.equal(after.messages.byKind.text, 4, 'the day\'s numbers survive the restart, with what came after the last flush');
  t.equal(after.signups, 3);
  t.equal(after.dau, 3);
  t.equal(after.mediaBytes, image.length);

  // The node after the restart adds to the same row (it read its own back first).
  const dave = await f.device(t);
  await dave.client.text({ to: carol.user }, 'hi carol');
  const more = (await report()).days[0]!;
  t.equal(more.signups, 4);
  t.equal(more.dau, 4);
  t.equal(more.messages.direct, 5);

  // The operator's table: `npm run ops -- analytics --days 2`.
  const cli = (await promisify(execFile)(process.execPath, [resolve(__dirname, '../../src/ops/ops-cli.js'), 'analytics', '--url', f.url, '--key', ADMIN_KEY, '--days', '2'])).stdout;
  const lines = cli.split('\n');
  t.match(lines[0], /^day +dau +msgs +direct +group +text +image +video +media MB +signups +push +p50 ms +p90 ms +p99 ms$/, 'a header');
  t.equal(lines.filter((l) => /^\d{4}-\d{2}-\d{2} /.test(l)).length, 2, 'a row per day');
  const row = lines.find((l) => l.startsWith(today()))!.split(/ +/);
  t.strictSame(row.slice(1, 4), ['4', String(5 + more.messages.group), '5'], 'dau, messages, direct');
  t.match(cli, new RegExp(`mau ${today().slice(0, 7)}: 4`));
  t.match(cli, /standard error 0\.81%/);

  // A crash (kill -9) loses at most what came after the last flush: the report above flushed, so nothing.
  await dave.close();
  await f.restart('SIGKILL');
  const crashed = (await report()).days[0]!;
  t.strictSame({ ...crashed, latency: undefined }, { ...more, latency: undefined }, 'the rows the report flushed survive a crash');
  t.equal(crashed.latency.count, more.latency.count);
});

t.test('the admin API: admin key, bounded ranges, a clear error for bad dates', async (t) => {
  t.equal((await http(f.url, `/v1/admin/analytics?from=${today()}&to=${today()}`)).status, 401, 'no key');
  const bad = async (q: string) => (await http(f.url, `/v1/admin/analytics${q}`, { headers: { 'x-admin-key': ADMIN_KEY } })).json.error.code;
  t.equal(await bad('?from=2026-13-01&to=2026-12-02'), 'invalid');
  t.equal(await bad('?from=2026-12-02&to=2026-12-01'), 'invalid', 'to before from');
  t.equal(await bad('?from=2020-01-01&to=2026-12-01'), 'invalid', 'over 400 days');
  const week = await report('');
  t.equal(week.days.length, 7, 'no range: the last 7 days');
  t.equal(week.to, today());
  t.equal(week.days[0]!.dau, 0, 'a day without traffic is zeros');
});
