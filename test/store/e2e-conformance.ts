import { newId, directConversationId } from '../../src/protocol/ids.js';
import type { Store } from '../../src/store/store.js';
import type { TapTest } from './conformance.js';

/**
 * The E2eStore conformance suite (src/store/e2e-store.ts): the key directory and group epochs, the same on
 * every store. With `openPeer` (another client of the same data: another node) the concurrent claims run
 * through both clients at once.
 */
export function runE2eConformance(parent: TapTest, name: string, open: () => Promise<Store>, openPeer?: () => Promise<Store>): void {
  parent.test(`${name} e2e store conformance`, async (t) => {
    const store = await open();
    t.teardown(() => store.close());
    const peer = openPeer ? await openPeer() : undefined;
    if (peer) t.teardown(() => peer.close());
    const clients = peer ? [store, peer] : [store];
    const uid = () => newId(12);
    const b = (...xs: number[]) => new Uint8Array(xs);
    const hex = (x: Uint8Array) => Buffer.from(x).toString('hex');
    const oneTime = (n: number, tag: number) => Array.from({ length: n }, (_, i) => ({ id: `k${String(i).padStart(4, '0')}`, keyPackage: b(tag, i >> 8, i & 255) }));

    t.test('publish, list, count and claim: one-time packages once each, then the last resort', async (t) => {
      const [u, d] = [uid(), uid()];
      await t.rejects(store.e2e.publishKeys(u, d, { oneTime: oneTime(1, 1) }), { code: 'invalid' }, 'the identity comes first');
      t.equal(await store.e2e.claimKey(u, d), undefined, 'no keys: nothing to claim');
      await store.e2e.publishKeys(u, d, { identity: b(9, 9), lastResort: b(7), oneTime: oneTime(2, 1) });
      t.equal(await store.e2e.countKeys(u, d), 2);
      const [listed] = await store.e2e.keyDevices(u);
      t.match(listed, { user: u, device: d, hasLastResort: true });
      t.equal(hex(listed!.identity), '0909');
      const first = await store.e2e.claimKey(u, d);
      const second = await store.e2e.claimKey(u, d);
      t.strictSame([first!.lastResort, second!.lastResort], [false, false]);
      t.not(hex(first!.keyPackage), hex(second!.keyPackage), 'two different packages');
      t.equal(hex(first!.identity), '0909', 'with the identity');
      t.equal(await store.e2e.countKeys(u, d), 0);
      for (let i = 0; i < 2; i++) {
        const last = await store.e2e.claimKey(u, d);
        t.strictSame([last!.lastResort, hex(last!.keyPackage)], [true, '07'], 'the last resort, again and again');
      }
      await store.e2e.publishKeys(u, d, { oneTime: [{ id: 'more', keyPackage: b(5) }] });
      t.equal(await store.e2e.countKeys(u, d), 1, 'replenished');
      t.equal(hex((await store.e2e.claimKey(u, d))!.keyPackage), '05');
    });

    t.test('an upload sent again adds nothing; a new identity or last resort replaces the old', async (t) => {
      const [u, d] = [uid(), uid()];
      await store.e2e.publishKeys(u, d, { identity: b(1), lastResort: b(2), oneTime: oneTime(3, 4) });
      await store.e2e.publishKeys(u, d, { identity: b(1), oneTime: oneTime(3, 4) });
      t.equal(await store.e2e.countKeys(u, d), 3);
      await store.e2e.publishKeys(u, d, { identity: b(3), lastResort: b(4) });
      const [k] = await store.e2e.keyDevices(u);
      t.equal(hex(k!.identity), '03');
      for (let i = 0; i < 3; i++) await store.e2e.claimKey(u, d);
      t.equal(hex((await store.e2e.claimKey(u, d))!.keyPackage), '04');
    });

    t.test('concurrent claims through every client hand each one-time package out exactly once', async (t) => {
      const [u, d] = [uid(), uid()];
      const n = 40;
      await store.e2e.publishKeys(u, d, { identity: b(1), lastResort: b(255, 255, 255), oneTime: oneTime(n, 8) });
      const claims = await Promise.all(Array.from({ length: n + 10 }, (_, i) => clients[i % clients.length]!.e2e.claimKey(u, d)));
      const oneTimes = claims.filter((c) => !c!.lastResort).map((c) => hex(c!.keyPackage));
      t.equal(oneTimes.length, n, 'every one-time package handed out');
      t.equal(new Set(oneTimes).size, n, 'none twice');
      t.equal(claims.filter((c) => c!.lastResort).length, 10, 'the rest got the last resort');
      t.equal(await store.e2e.countKeys(u, d), 0);
    });

    t.test('a device and a user drop their keys', async (t) => {
      const [u, d1, d2] = [uid(), uid(), uid()];
      await store.e2e.publishKeys(u, d1, { identity: b(1), lastResort: b(1), oneTime: oneTime(2, 1) });
      await store.e2e.publishKeys(u, d2, { identity: b(2), lastResort: b(2), oneTime: oneTime(2, 2) });
      t.strictSame((await store.e2e.keyDevices(u)).map((k) => k.device).sort(), [d1, d2].sort());
      await store.e2e.dropDeviceKeys(u, d1);
      t.strictSame((await store.e2e.keyDevices(u)).map((k) => k.device), [d2]);
      t.equal(await store.e2e.claimKey(u, d1), undefined);
      t.equal(await store.e2e.countKeys(u, d1), 0);
      await store.e2e.dropUserKeys(u);
      t.strictSame(await store.e2e.keyDevices(u), []);
      t.equal(await store.e2e.countKeys(u, d2), 0);
    });

    t.test('group epochs round-trip, with and without a pending commit', async (t) => {
      const c = directConversationId(uid(), uid());
      t.equal(await store.e2e.getGroupEpoch(c), undefined);
      await store.e2e.putGroupEpoch(c, { epoch: 3, users: ['a', 'b'], pending: { seq: 17, users: ['a'] } });
      t.strictSame(await store.e2e.getGroupEpoch(c), { epoch: 3, users: ['a', 'b'], pending: { seq: 17, users: ['a'] } });
      await store.e2e.putGroupEpoch(c, { epoch: 4, users: ['a'] });
      t.strictSame(await store.e2e.getGroupEpoch(c), { epoch: 4, users: ['a'] }, 'the pending part is gone');
      await store.e2e.dropGroupEpoch(c);
      t.equal(await store.e2e.getGroupEpoch(c), undefined);
    });
  });
}
