import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { WriteBatch } from '../../src/store/lmdb/write-batch.js';

const dir = mkdtempSync(join(tmpdir(), 'parley-batch-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const env = (name: string) => {
  const root = open({ path: join(dir, name), noSync: true });
  return { root, db: root.openDB<string, string>({ name: 'kv', encoding: 'string' }) };
};

t.test('writes queued together commit together, in order; each caller gets its own result', async (t) => {
  const { root, db } = env('a');
  const batch = new WriteBatch(root, 2);
  const results = await Promise.all([
    batch.run(() => db.putSync('x', '1')),
    batch.run(() => db.get('x')), // sees the write queued before it, inside the same transaction
    batch.run(() => { db.putSync('y', '2'); return 'done'; }),
  ]);
  t.strictSame(results.slice(1), ['1', 'done']);
  t.equal(db.get('y'), '2', 'committed');
  await root.close();
});

t.test('an op that throws fails alone; the others commit', async (t) => {
  const { root, db } = env('b');
  const batch = new WriteBatch(root, 2);
  const ok1 = batch.run(() => db.putSync('a', 'kept'));
  const bad = batch.run(() => { throw new Error('refused'); });
  const ok2 = batch.run(() => db.putSync('b', 'kept too'));
  await t.rejects(bad, { message: 'refused' });
  await ok1;
  await ok2;
  t.equal(db.get('a'), 'kept');
  t.equal(db.get('b'), 'kept too');
  await root.close();
});

t.test('a commit that fails rejects every write of its batch, and nothing of it is stored', async (t) => {
  const { root, db } = env('c');
  const batch = new WriteBatch(root, 2);
  await batch.run(() => db.putSync('before', 'yes'));
  const writes = [batch.run(() => db.putSync('lost1', 'x')), batch.run(() => db.putSync('lost2', 'x'))];
  await root.close(); // the environment goes away before the batch commits
  for (const w of writes) await t.rejects(w, /closed/, 'the caller hears of it');
  const again = env('c');
  t.equal(again.db.get('before'), 'yes', 'earlier commits stay');
  t.equal(again.db.get('lost1'), undefined);
  t.equal(again.db.get('lost2'), undefined);
  await again.root.close();
});

t.test('commits are spaced by the window: writes in it share one transaction', async (t) => {
  const { root, db } = env('d');
  const batch = new WriteBatch(root, 500);
  await batch.run(() => db.putSync('first', '1')); // opens the window
  let txns = 0;
  const real = root.transactionSync.bind(root);
  root.transactionSync = ((action, flags) => { txns++; return real(action, flags); }) as typeof root.transactionSync;
  const later = [];
  for (let i = 0; i < 5; i++) {
    later.push(batch.run(() => db.putSync(`k${i}`, String(i))));
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(later);
  t.equal(txns, 1, 'five writes issued over ~10 ms inside a 500 ms window: one commit');
  t.equal(db.get('k4'), '4');
  await root.close();
});
