import t from 'tap';
import { ADMIN_KEY, Fixture, http } from '../helpers/fixture.js';
import { cqlAdmin, cqlContact, cqlDataCenter, dropKeyspace, scyllaNodeEnv, testKeyspace } from '../helpers/cql.js';
import { ScyllaStore } from '../../src/store/scylla/scylla-store.js';
import { pack } from '../../src/protocol/codec.js';
import { deviceKey } from '../../src/protocol/ids.js';

/**
 * A dead activation's inbox write may land after the next activation's sync read past its ptr (a Scylla
 * write isn't fenced: it goes to a ptr of the dead one's block). The conversation's retry must then not
 * take it as held: the device would never be sent it. Here the late write is made through a second store
 * client, after the device synced on the new activation.
 */
t.test("a message an earlier activation wrote to the inbox late reaches the device on the conversation's retry", async (t) => {
  const ks = testKeyspace('parley_own_late');
  const f = await Fixture.start({ ...scyllaNodeEnv(ks), PARLEY_FAULTS: '1' });
  const store = await ScyllaStore.open({ contactPoints: [cqlContact()], localDataCenter: cqlDataCenter(), keyspace: ks });
  t.teardown(async () => {
    await store.close();
    await f.destroy();
    const admin = await cqlAdmin();
    await dropKeyspace(admin, ks);
    await admin.shutdown();
  });
  const alice = await f.device(t);
  const bob = await f.device(t, { reconnect: true });
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'hello' });
  await bob.waitMessage((m) => m.seq === first.seq, 'the first message');
  bob.client.flushAck();
  await bob.client.listDevices(); // bob's entity handled the ack and is idle

  const resynced = new Promise<number>((res) => { const off = bob.client.on('synced', (ptr) => { off(); res(ptr); }); });
  const r = await http(f.url, '/v1/admin/faults', { method: 'POST', headers: { 'x-admin-key': ADMIN_KEY }, json: { type: 'user', id: bob.user, times: 1 } });
  t.equal(r.status, 200, 'armed');
  const late = await alice.client.send({ to: bob.user }, 'text', { text: 'written late' }); // bob's entity crashes on it
  await resynced; // bob reconnected to a new activation and synced: nothing of `late` in the inbox yet
  const message = await store.getMessage(late.conv, late.seq);
  t.ok(message, 'the message is in the log');
  // The dead activation's write, landing now, at the next ptr of its block.
  await store.inboxPut(deviceKey(bob.user, bob.session.device), { ptr: bob.ptrs.at(-1)! + 1, conv: late.conv, seq: late.seq, packed: pack(message), expiresAt: Date.now() + 60_000 });
  await bob.waitMessage((m) => m.seq === late.seq, 'the late message, on the retry (5 s)', 20_000);
  t.pass('bob got it');
});
