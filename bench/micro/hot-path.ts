/**
 * The message path in one process, without sockets: ClientSession → conversation → user entities → LMDB,
 * frames encoded as the gateway would, deliveries acked in batches like the SDK (every 20 ms), receipts
 * counted. Prints server-side CPU µs per message; what it leaves out (syscalls, uWS, the kernel's TCP) is
 * what the relay scenario adds. For iterating on the hot path in seconds:
 *
 *   npm run build && node dist/bench/micro/hot-path.js [rate=5000] [seconds=5] [pairs=500]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configurePersistence, start as startActorSystem, stop as stopActor } from 'nact';
import { LmdbStore } from '../../src/store/lmdb/lmdb-store.js';
import { StorePersistenceEngine } from '../../src/store/persistence-engine.js';
import { LocalSharding } from '../../src/routing/local-sharding.js';
import { LocalGateway, LocalPubSub } from '../../src/routing/local-gateway.js';
import { ConnectionRegistry, type Connection } from '../../src/routing/connections.js';
import type { Outbound } from '../../src/messages/seam.js';
import { Regions, answerErrors } from '../../src/actors/regions.js';
import { ClientSession } from '../../src/session/client-session.js';
import { User } from '../../src/actors/user.js';
import { Conversation } from '../../src/actors/conversation.js';
import { Group } from '../../src/actors/group.js';
import { RETRY_MS } from '../../src/actors/fanout.js';
import { OutboxProvider } from '../../src/push/push-gateway.js';
import { PushDispatcher } from '../../src/push/dispatcher.js';
import { pushConfig } from '../../src/push/push-config.js';
import { decodeFrame, encodeDelivery, encodeFrame, pack } from '../../src/protocol/codec.js';
import { validateClientFrame } from '../../src/protocol/validate.js';
import { DEFAULT_LIMITS } from '../../src/protocol/limits.js';
import { newId } from '../../src/protocol/ids.js';
import type { ServerFrame } from '../../src/protocol/frames.js';
import { KeyedLimiter } from '../../src/transport/rate-limit.js';
import { loadConfig } from '../../src/config.js';

const [rate = 5000, seconds = 5, pairs = 500] = process.argv.slice(2).map(Number);

class FakeSocket implements Connection {
  session!: ClientSession;
  ptr = 0;
  ackDue = false;
  /** `receipts` counts messages a delivered receipt covered (one receipt may cover several: it is a watermark). */
  counts = { sent: 0, delivered: 0, receipts: 0 };
  /** Per conversation, the seqs this socket sent that no receipt covered yet, ascending. */
  private readonly uncovered = new Map<string, number[]>();
  readonly ready = true;
  constructor(readonly id: number, readonly user: string, readonly device: string) {}
  send(frame: Outbound): boolean {
    if (frame.t === 'conn.drain') return (this.session.drained(512 * 1024), true); // nothing buffers here
    // Encoded as the gateway would; read back as the client would.
    if (frame.t === 'delivery') {
      encodeDelivery(frame.ptr, frame.packed, 'msgpack');
      this.ptr = frame.ptr;
      this.counts.delivered++;
      ackQueue.add(this);
    } else {
      encodeFrame(frame as ServerFrame, 'msgpack');
      if (frame.t === 'sent') {
        this.counts.sent++;
        const list = this.uncovered.get(frame.conv) ?? [];
        list.push(frame.seq);
        this.uncovered.set(frame.conv, list);
      } else if (frame.t === 'receipt' && frame.status === 'delivered') {
        const list = this.uncovered.get(frame.conv) ?? [];
        while (list.length && list[0]! <= frame.upTo) { list.shift(); this.counts.receipts++; }
      }
      else if (frame.t === 'synced') this.ptr = Math.max(this.ptr, frame.ptr);
      else if (frame.t === 'error') throw new Error(JSON.stringify(frame));
    }
    return true;
  }
  close(): void { /* never */ }
  receive(frame: unknown): void {
    const bytes = pack(frame);
    this.session.handle(validateClientFrame(decodeFrame(bytes, true), DEFAULT_LIMITS, bytes.byteLength));
  }
}

const ackQueue = new Set<FakeSocket>();

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-hot-'));
  const store = new LmdbStore(dir);
  const system = startActorSystem(configurePersistence(new StorePersistenceEngine(store)));
  const conns = new ConnectionRegistry();
  const sharding = new LocalSharding('n1');
  const gateway = new LocalGateway('n1', conns);
  const { shaping } = loadConfig({});
  const budgets = { fanout: new KeyedLimiter(shaping.fanout), syncResend: new KeyedLimiter(shaping.syncResend) };
  const deps = { store, sharding, gateway, pubsub: new LocalPubSub(conns), push: new PushDispatcher(pushConfig({}).dispatch, { providers: {}, fallback: new OutboxProvider(), senderName: async () => undefined, dead: () => undefined }), budgets, config: { limits: DEFAULT_LIMITS, inboxTtlMs: 86_400_000, inboxDeferMs: Number(process.env.PARLEY_INBOX_DEFER_MS ?? 300), deviceTrustMs: 86_400_000, shaping, fanout: { retryMs: RETRY_MS }, retention: { mode: 'forever' as const, sweepMs: 3_600_000 } } };
  const regions = new Regions(system, [User.kind(deps), Conversation.kind(deps), Group.kind(deps)] as never[], answerErrors(sharding, gateway), 120_000);
  sharding.serve(regions);
  const drain = () => regions.drain(() => sharding.asking > 0);
  const directory = { lookup: async () => ({}) };

  const sockets: FakeSocket[] = [];
  for (let i = 0; i < pairs * 2; i++) {
    const user = newId(12), device = newId(8);
    await store.createUser({ id: user, phone: `+1555${String(i).padStart(7, '0')}`, name: 'u', createdAt: Date.now(), lastSeenPrivacy: 'everyone' });
    await store.putDevice({ user, id: device, name: 'd', platform: 'bench', createdAt: Date.now(), acked: 0 });
    const s = new FakeSocket(conns.nextId(), user, device);
    s.session = new ClientSession({ node: 'n1', id: s.id }, user, device, s, { sharding, directory });
    conns.add(s);
    await s.session.open();
    s.receive({ t: 'sync', since: 0 });
    sockets.push(s);
  }
  await drain();
  const acker = setInterval(() => {
    for (const s of ackQueue) s.receive({ t: 'ack', ptr: s.ptr });
    ackQueue.clear();
  }, 20);

  const total = Math.round(rate * seconds);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.round(((performance.now() - t0) / 1000) * rate));
      for (; n < due; n++) {
        const from = sockets[n % sockets.length]!;
        const to = sockets[(n % sockets.length) ^ 1]!;
        from.receive({ t: 'send', to: to.user, cid: `c${n}`, kind: 'text', body: { text: 'x'.repeat(60) }, fresh: true });
      }
      if (n >= total) { clearInterval(tick); resolve(); }
    }, 1);
  });
  const sum = () => sockets.reduce((a, s) => ({ sent: a.sent + s.counts.sent, delivered: a.delivered + s.counts.delivered, receipts: a.receipts + s.counts.receipts }), { sent: 0, delivered: 0, receipts: 0 });
  while (sum().receipts < total && performance.now() - t0 < seconds * 1000 + 20_000) await new Promise((r) => setTimeout(r, 20));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const c = sum();
  console.log(JSON.stringify({ rate, seconds, pairs, offered: total, ...c, wall_s: +wall.toFixed(2), cpu_us_per_msg: +((cpu.user + cpu.system) / total).toFixed(1), cores: +((cpu.user + cpu.system) / 1e6 / wall).toFixed(2) }));
  clearInterval(acker);
  await drain();
  regions.stop();
  sharding.stop();
  stopActor(system);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}

void main();
