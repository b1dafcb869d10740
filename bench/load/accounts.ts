import http from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** A signed-in bench user: one user with one device. */
export interface Account { phone: string; user: string; device: string; token: string }

const API_KEY = process.env.BENCH_API_KEY ?? 'parley-dev-key';

function request(agent: http.Agent, base: URL, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({
      agent, host: base.hostname, port: base.port, method, path,
      headers: { 'x-api-key': API_KEY, ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        try { resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : {} }); } catch (e) { reject(e); }
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('sign-in request timed out')));
    req.on('error', reject);
    req.end(data);
  });
}

/**
 * Signs in users by phone number the way an app does (code → dev outbox → verify), `concurrency` at a time
 * over keep-alive connections. The node should run with the one-time-code limits opened wide (bench/targets/targets.ts `parleyEnv`).
 */
export async function signIn(baseUrl: string, phones: string[], concurrency: number, onProgress?: (done: number) => void): Promise<Account[]> {
  const base = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const out: Account[] = new Array(phones.length);
  let next = 0, done = 0;
  const one = async (phone: string): Promise<Account> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const a = await request(agent, base, 'POST', '/v1/accounts/code', { phone });
        if (a.status !== 200) throw new Error(`code: HTTP ${a.status} ${JSON.stringify(a.json)}`);
        const o = await request(agent, base, 'GET', `/v1/dev/otp?phone=${encodeURIComponent(phone)}`);
        if (o.status !== 200) throw new Error(`otp: HTTP ${o.status} ${JSON.stringify(o.json)}`);
        const v = await request(agent, base, 'POST', '/v1/accounts/verify', { phone, code: o.json.code, device: { name: 'bench', platform: 'bench' } });
        if (v.status !== 200) throw new Error(`verify: HTTP ${v.status} ${JSON.stringify(v.json)}`);
        return { phone, user: v.json.user, device: v.json.device, token: v.json.token };
      } catch (e) {
        if (attempt >= 3) throw e;
        await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, phones.length) }, async () => {
    while (next < phones.length) {
      const i = next++;
      out[i] = await one(phones[i]!);
      if (++done % 100 === 0) onProgress?.(done);
    }
  }));
  agent.destroy();
  return out;
}

/** Phone numbers of bench users: +1 <4-digit prefix> <7-digit index>. */
export const benchPhone = (prefix: string, i: number): string => `+1${prefix}${String(i).padStart(7, '0')}`;

export function loadAccounts(file: string): Account[] {
  if (!existsSync(file)) return [];
  try { return JSON.parse(readFileSync(file, 'utf8')) as Account[]; } catch { return []; }
}

export function saveAccounts(file: string, accounts: Account[]): void {
  writeFileSync(file, JSON.stringify(accounts));
}
