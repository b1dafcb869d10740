/**
 * A safety number two users compare to know no one sits between them (as Signal shows one): 60 digits in
 * 12 groups of 5, from SHA-512 over both users' device identity keys, each user's keys sorted, the users in
 * id order. Both sides compute the same number; any device key added or changed changes it. Pure (WebCrypto).
 */
export async function safetyNumber(keys: Map<string, Uint8Array[]>): Promise<string> {
  const users = [...keys.keys()].sort();
  const parts: Uint8Array[] = [new TextEncoder().encode('parley-safety-number-v1')];
  for (const u of users) {
    parts.push(new TextEncoder().encode(`\u0000${u}\u0000`));
    const sorted = [...keys.get(u)!].sort((a, b) => hex(a).localeCompare(hex(b)));
    for (const k of sorted) parts.push(k);
  }
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const all = new Uint8Array(new ArrayBuffer(total));
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.byteLength; }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-512', all));
  return renderDigits(digest);
}

/** 12 groups of 5 digits, each from 5 bytes of the digest (40 bits mod 100,000: the bias is negligible). */
export function renderDigits(digest: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 12; i++) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + digest[i * 5 + j]!;
    groups.push(String(n % 100_000).padStart(5, '0'));
  }
  return groups.join(' ');
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
