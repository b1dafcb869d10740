import { open } from 'lmdb';
import { join } from 'node:path';
import type { Fixture } from './fixture.js';

/** A place a scan found one of the strings: which table, which key, which string. */
export interface Hit { where: string; key: string; found: string }

/**
 * Every named database of the node's LMDB environment, listed from the environment itself (the root
 * database's keys are the names), opened read-only beside the running node; keys as text, values as bytes.
 */
export async function scanLmdb(fx: Fixture, needles: string[]): Promise<Hit[]> {
  const root = open({ path: join(fx.node.dataDir, 'lmdb'), readOnly: true, maxDbs: 64 });
  const hits: Hit[] = [];
  try {
    const names = [...root.getKeys()].map(String);
    if (!names.includes('users.2')) throw new Error(`the environment lists no users table: ${names.join(', ')}`);
    for (const name of names) {
      const db = root.openDB<Buffer>({ name, encoding: 'binary' });
      for (const { key, value } of db.getRange({})) {
        const k = JSON.stringify(key);
        for (const n of needles) if (k.includes(n) || Buffer.from(value).includes(Buffer.from(n))) hits.push({ where: name, key: k, found: n });
      }
    }
  } finally {
    await root.close();
  }
  return hits;
}
