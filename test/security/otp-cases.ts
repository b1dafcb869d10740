import http from 'node:http';
import type tap from 'tap';
import type { Fixture } from '../helpers/fixture.js';
import { API_KEY, newPhone } from '../helpers/clients.js';

/**
 * One-time codes under attack, as a client sees them over HTTP (security issue #10, part 3). The cases that
 * depend on the store (the atomic count, the number's budget, a stranger's share of it) are here so that
 * otp.test.ts runs them on LMDB and otp-scylla.test.ts on Scylla; the node-local limits are in otp.test.ts.
 *
 * Requests can come from any address of 127/8: the client socket is bound to it (`localAddress`) while the
 * node listens on 127.0.0.1, so the node sees them as different peers.
 */

export interface Answer { status: number; code?: string; retryAfterMs?: number; retryAfter?: string; json: Record<string, unknown> }

/** Keep-alive sockets, pooled per local address by the agent (its pool key includes localAddress). */
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
export const closeAgent = (): void => agent.destroy();

export function post(base: string, path: string, body: unknown, o: { ip?: string; key?: string } = {}): Promise<Answer> {
  const url = new URL(path, base);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, localAddress: o.ip ?? '127.0.0.1',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), 'x-api-key': o.key ?? API_KEY },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const json = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        const error = json.error as { code?: string; retryAfterMs?: number } | undefined;
        const retryAfter = res.headers['retry-after'];
        resolve({
          status: res.statusCode ?? 0, json,
          ...(error?.code ? { code: error.code } : {}),
          ...(error?.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
          ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

export const requestCode = (f: Fixture, phone: string, o: { ip?: string; key?: string } = {}) => post(f.url, '/v1/accounts/code', { phone }, o);
export const verify = (f: Fixture, phone: string, code: string, o: { ip?: string; key?: string } = {}) => post(f.url, '/v1/accounts/verify', { phone, code }, o);

/** The code the dev SMS outbox holds for the number. */
export async function outboxCode(f: Fixture, phone: string): Promise<string> {
  const r = await fetch(`${f.url}/v1/dev/otp?phone=${encodeURIComponent(phone)}`);
  if (r.status !== 200) throw new Error(`no code in the dev outbox for ${phone}: ${r.status}`);
  return ((await r.json()) as { code: string }).code;
}

export const wrongCode = (code: string, i = 1): string => String((Number(code) + i) % 1_000_000).padStart(6, '0');

/** How many answers had each error code (`ok` for a 200). */
export function tally(answers: Answer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const k = a.status === 200 ? 'ok' : a.code ?? `http_${a.status}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** The node settings the store-backed cases assume: five guesses a code, twelve a number a day, six per address. */
export const STORE_CASES_ENV: Record<string, string> = {
  PARLEY_OTP_MAX_ATTEMPTS: '5', PARLEY_OTP_PHONE_GUESSES: '12/d', PARLEY_OTP_PHONE_IP_GUESSES: '6',
};

const DAY = 86_400_000;

/**
 * `peer`, when the store is shared by several nodes, is another node on the same data: the 2,000 guesses
 * then go through both, half each, so the count is contended between processes, not only within one.
 */
export function storeBackedOtpCases(t: typeof tap | tap.Test, fx: () => Fixture, peer?: () => Fixture): void {
  t.test(`2,000 parallel wrong guesses at one code${peer ? ' through two nodes' : ''}: five are compared, the rest are refused, and the right code is locked`, async (t) => {
    const f = fx();
    const nodes = peer ? [f, peer()] : [f];
    const phone = newPhone();
    t.equal((await requestCode(f, phone)).status, 200);
    const code = await outboxCode(f, phone);
    const answers = await Promise.all(Array.from({ length: 2000 }, (_, i) => verify(nodes[i % nodes.length]!, phone, wrongCode(code, 1 + (i % 999_998)))));
    const counts = tally(answers);
    t.equal(counts.otp_invalid, 5, `exactly maxAttempts guesses compared (${JSON.stringify(counts)})`);
    t.equal((counts.otp_locked ?? 0) + (counts.rate_limited ?? 0), 1995, 'every other guess refused without being compared');
    t.equal(counts.ok, undefined, 'none of them got in');
    const right = await verify(f, phone, code);
    t.match(right, { status: 429, code: 'otp_locked' }, 'the right code afterwards: locked');
  });

  t.test('a new code does not reset the number\'s budget of wrong guesses', async (t) => {
    const f = fx();
    const phone = newPhone();
    let n = 0;
    const stranger = () => ({ ip: `127.0.1.${++n}` }); // one guess per address: only the number's budget applies
    const wrong: string[] = [];
    for (const perCode of [5, 5, 2]) {
      t.equal((await requestCode(f, phone)).status, 200, 'a new code');
      const code = await outboxCode(f, phone);
      for (let i = 0; i < perCode; i++) wrong.push((await verify(f, phone, wrongCode(code, i + 1), stranger())).code!);
      if (perCode === 5) t.match(await verify(f, phone, code, stranger()), { code: 'otp_locked' }, 'this code is locked');
    }
    t.equal(wrong.filter((c) => c === 'otp_invalid').length, 12, 'twelve wrong guesses over three codes');
    const code = await outboxCode(f, phone);
    const refused = await verify(f, phone, code, stranger());
    t.match(refused, { status: 429, code: 'rate_limited' }, 'then even the right code is not compared');
    t.ok(refused.retryAfterMs! > DAY - 10 * 60_000 && refused.retryAfterMs! <= DAY, `until the day is over (${refused.retryAfterMs} ms)`);
    t.equal(refused.retryAfter, String(Math.ceil(refused.retryAfterMs! / 1000)), 'Retry-After says the same');
    const again = await requestCode(f, phone);
    t.match(again, { status: 429, code: 'rate_limited' }, 'and a new code is not sent: it could not be tried');
    t.ok(again.retryAfterMs! > DAY - 10 * 60_000, 'for the rest of the day');
  });

  t.test('a stranger guessing from one address can\'t lock the owner out: the owner, elsewhere, signs in with a fresh code', async (t) => {
    const f = fx();
    const phone = newPhone();
    const owner = { ip: '127.0.0.1' };
    const stranger = { ip: '127.0.0.2' };
    t.equal((await requestCode(f, phone, owner)).status, 200);
    const first = await outboxCode(f, phone);
    const burst1 = tally(await Promise.all(Array.from({ length: 200 }, (_, i) => verify(f, phone, wrongCode(first, i + 1), stranger))));
    t.equal(burst1.otp_invalid, 5, `the stranger's first burst: five compared, then the code is locked (${JSON.stringify(burst1)})`);
    t.match(await verify(f, phone, first, owner), { code: 'otp_locked' }, 'so the owner\'s code is locked');

    t.equal((await requestCode(f, phone, owner)).status, 200, 'the owner asks for a fresh code');
    const fresh = await outboxCode(f, phone);
    const burst2 = await Promise.all(Array.from({ length: 200 }, (_, i) => verify(f, phone, wrongCode(fresh, i + 1), stranger)));
    const counts2 = tally(burst2);
    t.equal(counts2.otp_invalid, 1, `the stranger's second burst: one more compared, its share of six is spent (${JSON.stringify(counts2)})`);
    t.equal(counts2.rate_limited, 199, 'the rest refused');
    t.ok(burst2.filter((a) => a.code === 'rate_limited').every((a) => a.retryAfterMs! > DAY - 10 * 60_000), 'for the day');

    const signedIn = await verify(f, phone, fresh, owner);
    t.equal(signedIn.status, 200, 'the owner signs in with the fresh code');
    t.equal(signedIn.json.created, true);
  });
}
