import t from 'tap';
import { Fixture, http } from '../helpers/fixture.js';
import { API_KEY, device, newPhone, waitFor } from '../helpers/clients.js';
import { devCode, requestCode, verifyCode, type SessionInfo } from '../../src/client/accounts-api.js';

/**
 * Issue #16 §3: a node logging at debug, driven through sign-in (a wrong code, then the right one),
 * contact discovery, a push registration and a chat, writes none of the phone numbers, one-time codes,
 * tokens or message bodies to stderr; and its lines name the frame or HTTP request they were written for.
 */

let f: Fixture;
t.before(async () => { f = await Fixture.start({ PARLEY_LOG_LEVEL: 'debug' }); });
t.teardown(() => f.destroy());

t.test('sign-in and a chat at debug: no phone, code, token or body in the log', async (t) => {
  const phones = [newPhone(), newPhone()];
  const codes: string[] = [];
  const sessions: SessionInfo[] = [];
  for (const phone of phones) {
    await requestCode(f.url, API_KEY, phone);
    const code = await devCode(f.url, phone);
    codes.push(code);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    await t.rejects(verifyCode(f.url, API_KEY, phone, wrong), { code: 'otp_invalid' }, 'a wrong code first');
    sessions.push(await verifyCode(f.url, API_KEY, phone, code));
  }
  const tokens = sessions.map((s) => s.token);
  const [alice, bob] = await Promise.all(phones.map(async (phone, i) => {
    const d = await device(f.url, { phone, session: sessions[i]! });
    t.teardown(() => d.close());
    return d;
  }));
  const bodies = ['the first secret words', 'a reply nobody else reads', 'third, in a group'];
  await alice!.client.text({ to: bob!.user }, bodies[0]!);
  await bob!.client.text({ to: alice!.user }, bodies[1]!);
  const group = await alice!.client.createGroup('private circle', [bob!.user]);
  await alice!.client.text({ conv: group.conv }, bodies[2]!);
  await bob!.waitFor(() => (bob!.messages.length >= 2 ? true : undefined), 10_000, 'bob has both');
  t.same(await alice!.client.lookup([phones[1]!]), { users: { [phones[1]!]: bob!.user } }, 'contact discovery by phone');
  const pushToken = 'push-token-0123456789abcdef';
  await alice!.client.registerPush('fcm', pushToken);
  // Refused on the socket (logged at debug): a send to oneself, and a lookup frame that isn't valid.
  const raw = await f.raw(t, tokens[0]!);
  raw.send({ t: 'send', cid: 'self-cid-1', kind: 'text', to: alice!.user, body: { text: 'to me' } });
  await raw.next((x) => x.t === 'error' && x.cid === 'self-cid-1', 'the refusal');
  raw.send({ t: 'users.lookup', rid: 'bad-lookup', phones: phones[0] });
  await raw.next((x) => x.t === 'error' && x.rid === 'bad-lookup', 'the refused lookup');
  await http(f.url, '/v1/accounts/me', { headers: { authorization: `Bearer ${tokens[1]}`, 'x-request-id': 'client-req-42' } });

  // The node has written the lines for all of that: its access line for the last request comes last.
  await waitFor(() => f.node.logs.find((l) => l.includes('"client-req-42"')), 5000, 'the access line of the last request');
  const logs = f.node.logs.join('\n');
  t.ok(f.node.logs.length > 10, `the node logged at debug (${f.node.logs.length} lines)`);
  t.ok(f.node.logs.some((l) => /sms \(dev outbox\)/.test(l) && /"phone":"\[redacted\]"/.test(l)), 'the dev outbox line is there, censored');
  const secrets = [...phones, ...phones.map((p) => p.slice(1)), ...codes, ...tokens, ...bodies, pushToken, 'to me'];
  t.same(secrets.filter((s) => logs.includes(s)), [], 'none of the phones, codes, tokens or bodies');

  const lines = f.node.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(lines.find((l) => l.msg === 'frame refused' && l.req === 'self-cid-1'), { type: 'send', error: 'invalid', conn: Number }, 'a refused frame is logged under its cid');
  t.match(lines.find((l) => l.msg === 'frame refused' && l.req === 'bad-lookup'), { type: 'invalid', error: 'invalid' }, 'or its rid');
  t.match(lines.find((l) => l.msg === 'http request' && l.req === 'client-req-42'), { route: '/v1/accounts/me', method: 'get', status: '2xx' }, 'an HTTP request under its id');
  t.ok(lines.filter((l) => l.msg === 'http request').every((l) => typeof l.req === 'string'), 'every HTTP request has one');
  t.ok(lines.some((l) => l.msg === 'http request' && l.route === '/v1/accounts/verify' && l.status === '4xx'), 'the wrong code, as a refused request');
});
