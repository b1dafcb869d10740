import t from 'tap';
import { createServer, type Server } from 'node:http';
import { Fixture } from '../helpers/fixture.js';
import { newPhone } from '../helpers/clients.js';
import {
  STORE_CASES_ENV, closeAgent, outboxCode, requestCode, storeBackedOtpCases, tally, verify, wrongCode, type Answer,
} from './otp-cases.js';

/**
 * One-time codes that hold (security issue #10, part 3), on the embedded store: the store-backed cases of
 * otp-cases.ts, then the limits a node keeps in memory (codes per address, app key and node; wrong guesses per
 * address), the growing cooldown, and an SMS gateway that fails. Each group runs a node with the strict
 * setting it tests; the test helper's defaults open every limit wide.
 */
t.teardown(closeAgent);

const MIN = 60_000;
const HOUR = 60 * MIN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Error lines of the nodes gone so far (checked by the last test). */
const errorLogs: string[] = [];

/** A node for one subtest, gone when it ends. */
async function node(tt: tap.Test, env: Record<string, string>): Promise<Fixture> {
  const f = await Fixture.start(env);
  tt.teardown(async () => {
    errorLogs.push(...f.errorLogs());
    await f.destroy();
  });
  return f;
}

t.test('store-backed limits (LMDB)', async (t) => {
  const f = await node(t, STORE_CASES_ENV);
  storeBackedOtpCases(t, () => f);
});

t.test('codes per address: refused past the allowance with the wait; other addresses unaffected', async (t) => {
  const f = await node(t, { PARLEY_OTP_IP_CODES: '3/h' });
  const from = { ip: '127.0.0.3' };
  for (let i = 0; i < 3; i++) t.equal((await requestCode(f, newPhone(), from)).status, 200, `code ${i + 1} from one address`);
  const refused = await requestCode(f, newPhone(), from);
  t.match(refused, { status: 429, code: 'rate_limited' }, 'the fourth, to yet another number, is refused');
  t.ok(refused.retryAfterMs! > 19 * MIN && refused.retryAfterMs! <= 20 * MIN, `one more every 20 min (${refused.retryAfterMs} ms)`);
  t.equal(refused.retryAfter, String(Math.ceil(refused.retryAfterMs! / 1000)), 'Retry-After in seconds');
  t.equal((await requestCode(f, newPhone(), { ip: '127.0.0.4' })).status, 200, 'another address still gets codes');
  t.match(await requestCode(f, '12345', { ip: '127.0.0.5' }), { status: 400, code: 'invalid' }, 'a bad number is refused first...');
  for (let i = 0; i < 3; i++) t.equal((await requestCode(f, newPhone(), { ip: '127.0.0.5' })).status, 200, '...and costs nothing');
});

t.test('codes per app key: refused past the allowance, whatever the address; another key unaffected', async (t) => {
  const f = await node(t, { PARLEY_API_KEYS: 'app-one,app-two', PARLEY_OTP_KEY_CODES: '3/h' });
  const answers: Answer[] = [];
  for (let i = 0; i < 5; i++) answers.push(await requestCode(f, newPhone(), { ip: `127.0.3.${i + 1}`, key: 'app-one' }));
  t.strictSame(answers.map((a) => a.code ?? a.status), [200, 200, 200, 'rate_limited', 'rate_limited']);
  t.ok(answers[3]!.retryAfterMs! > 19 * MIN && answers[3]!.retryAfterMs! <= 20 * MIN, `retryAfterMs ${answers[3]!.retryAfterMs}`);
  t.equal((await requestCode(f, newPhone(), { ip: '127.0.3.9', key: 'app-two' })).status, 200, 'the other app key is not held back');
});

t.test('codes per node: a burst to 60 numbers from 60 addresses sends only the node\'s allowance', async (t) => {
  const f = await node(t, { PARLEY_OTP_NODE_CODES: '4/h' });
  const phones = Array.from({ length: 60 }, () => newPhone());
  const answers = await Promise.all(phones.map((p, i) => requestCode(f, p, { ip: `127.0.4.${i + 1}` })));
  t.strictSame(tally(answers), { ok: 4, rate_limited: 56 });
  t.ok(answers.filter((a) => a.code).every((a) => a.retryAfterMs! > 14 * MIN && a.retryAfterMs! <= 15 * MIN), 'each told to wait for the next one');
  let sent = 0;
  for (const p of phones) if ((await fetch(`${f.url}/v1/dev/otp?phone=${encodeURIComponent(p)}`)).status === 200) sent++;
  t.equal(sent, 4, 'four SMS went out, no more');
});

t.test('the cooldown of a number grows with each code (capped) and ends after a quiet spell', async (t) => {
  const base = 600;
  const f = await node(t, { PARLEY_OTP_COOLDOWN_MS: String(base), PARLEY_OTP_COOLDOWN_MAX_MS: '1500', PARLEY_OTP_COOLDOWN_RESET_MS: '4000' });
  const phone = newPhone();
  const slack = 400; // a request's own round trip, on a loaded machine
  t.equal((await requestCode(f, phone)).status, 200, 'the first code goes at once');
  for (const wait of [base, 2 * base, 1500, 1500]) {
    const refused = await requestCode(f, phone);
    t.match(refused, { status: 429, code: 'rate_limited' }, 'another one at once is refused');
    t.ok(refused.retryAfterMs! > wait - slack && refused.retryAfterMs! <= wait, `with a wait of about ${wait} ms (${refused.retryAfterMs})`);
    await sleep(refused.retryAfterMs!);
    t.equal((await requestCode(f, phone)).status, 200, 'and granted once the wait is over');
  }
  await sleep(4000);
  t.equal((await requestCode(f, phone)).status, 200, 'after a quiet spell...');
  const fresh = await requestCode(f, phone);
  t.ok(fresh.retryAfterMs! > base - slack && fresh.retryAfterMs! <= base, `...the wait starts again at ${base} ms (${fresh.retryAfterMs})`);
  t.equal((await verify(f, phone, await outboxCode(f, phone))).status, 200, 'the last code sent works');
});

t.test('a number\'s cooldown and its locked code hold across a restart (they are in the store, not in memory)', async (t) => {
  const f = await node(t, { PARLEY_OTP_COOLDOWN_MS: String(HOUR), PARLEY_OTP_MAX_ATTEMPTS: '2' });
  const phone = newPhone();
  t.equal((await requestCode(f, phone)).status, 200);
  const code = await outboxCode(f, phone);
  t.strictSame([(await verify(f, phone, wrongCode(code, 1))).code, (await verify(f, phone, wrongCode(code, 2))).code], ['otp_invalid', 'otp_invalid']);
  await f.restart('SIGKILL');
  const again = await requestCode(f, phone);
  t.match(again, { code: 'rate_limited' }, 'after a crash: still no new code');
  t.ok(again.retryAfterMs! > HOUR - MIN, `for the rest of the hour (${again.retryAfterMs} ms)`);
  t.match(await verify(f, phone, code), { code: 'otp_locked' }, 'and the code is still locked');
});

t.test('wrong guesses per address across numbers: refused past the allowance; right codes cost nothing', async (t) => {
  const f = await node(t, { PARLEY_OTP_IP_GUESSES: '4/h' });
  const phones = [newPhone(), newPhone(), newPhone()];
  for (const p of phones) t.equal((await requestCode(f, p)).status, 200);
  const codes = await Promise.all(phones.map((p) => outboxCode(f, p)));
  const stranger = { ip: '127.0.5.1' };
  const spray: Answer[] = [];
  for (let i = 0; i < 9; i++) spray.push(await verify(f, phones[i % 3]!, wrongCode(codes[i % 3]!, i + 1), stranger));
  t.strictSame(spray.map((a) => a.code), ['otp_invalid', 'otp_invalid', 'otp_invalid', 'otp_invalid', 'rate_limited', 'rate_limited', 'rate_limited', 'rate_limited', 'rate_limited']);
  t.ok(spray[4]!.retryAfterMs! > 14 * MIN && spray[4]!.retryAfterMs! <= 15 * MIN, `one more every 15 min (${spray[4]!.retryAfterMs})`);
  t.match(await verify(f, phones[0]!, codes[0]!, stranger), { code: 'rate_limited' }, 'from that address nothing is compared, the right code neither');
  t.equal((await verify(f, phones[0]!, codes[0]!, { ip: '127.0.5.2' })).status, 200, 'from another address the owner signs in');

  const friendly = { ip: '127.0.5.3' };
  for (let i = 0; i < 6; i++) {
    const p = newPhone();
    await requestCode(f, p, friendly);
    t.equal((await verify(f, p, await outboxCode(f, p), friendly)).status, 200, `right code ${i + 1} from one address`);
  }
});

t.test('a malformed code is invalid and costs no attempt', async (t) => {
  const f = await node(t, { PARLEY_OTP_MAX_ATTEMPTS: '2', PARLEY_OTP_IP_GUESSES: '2/h' });
  const phone = newPhone();
  await requestCode(f, phone);
  for (const bad of ['12345', '1234567', 'abcdef', '', ' 12 34 ']) {
    t.match(await verify(f, phone, bad), { status: 400, code: 'invalid' }, JSON.stringify(bad));
  }
  t.equal((await verify(f, phone, await outboxCode(f, phone))).status, 200, 'the right code still works, from the same address');
});

/** An SMS gateway on a local socket, speaking what HttpSms posts ({to, text} as JSON); it fails while `failing`. */
async function smsGateway(tt: tap.Test): Promise<{ url: string; sent: { to: string; text: string }[]; failing: boolean }> {
  const gw = { url: '', sent: [] as { to: string; text: string }[], failing: false };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (gw.failing) { res.writeHead(502).end(); return; }
      gw.sent.push(JSON.parse(body) as { to: string; text: string });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  gw.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/sms`;
  tt.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return gw;
}

t.test('an SMS gateway that fails: over_capacity, and nothing is spent (the cooldown, the address allowance)', async (t) => {
  const gw = await smsGateway(t);
  const f = await node(t, { PARLEY_SMS: 'http', PARLEY_SMS_URL: gw.url, PARLEY_OTP_COOLDOWN_MS: String(HOUR), PARLEY_OTP_IP_CODES: '2/h' });
  const phone = newPhone();
  gw.failing = true;
  for (let i = 0; i < 3; i++) t.match(await requestCode(f, phone), { status: 503, code: 'over_capacity' }, `the gateway fails (${i + 1})`);
  gw.failing = false;
  t.equal((await requestCode(f, phone)).status, 200, 'once it is back the code goes at once: the failures did not start the cooldown');
  t.equal(gw.sent.length, 1);
  const code = /(\d{6})/.exec(gw.sent[0]!.text)![1]!;
  t.match(await requestCode(f, phone), { code: 'rate_limited' }, 'now the cooldown holds');
  t.equal((await requestCode(f, newPhone())).status, 200, 'and the address had its second code left');
  t.equal((await verify(f, phone, code)).status, 200, 'the code that went out works');
});

t.test('no node logged an error (a failed SMS is a warning)', async (t) => { t.strictSame(errorLogs, []); });
