/**
 * A load worker: a child process that holds a share of the virtual users' sockets and drives them. Several
 * run side by side so one event loop (and one process's 20,000 open files) is never the limit. It speaks
 * Parley's protocol, the uWebSockets baseline's, Socket.IO's (Engine.IO v4 over WebSocket) and Centrifugo's
 * (its JSON protocol), the last two by hand so the load generator costs about the same for all, and does the
 * accounting: latency from the intended send time, loss, duplicates and receipts.
 */
import WebSocket from 'ws';
import { Packr } from 'msgpackr';
import { monoMs, monoUs, sleep } from '../lib/clock.js';
import { encodeHistogram, newHistogram, type Histogram } from '../lib/hist.js';
import {
  serverAcks, type ConnectCmd, type ConnectResult, type DrainCmd, type DropCmd, type GroupsCmd, type PingCmd, type RunCmd, type RunStats, type SetupCmd,
  type StreamSpec, type TargetKind, type VuSpec, type WorkerCmd, type WorkerEvent,
} from './messages.js';
import {
  benchPayload, connectCommand, connectToken, groupChannel, padFor, parseFrame, personalChannel, PONG, publishCommand, readPayload, subscribeCommand,
} from './centrifugo-protocol.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const ACK_DELAY_MS = 20;
const ACK_EVERY = 100;
const READY_TIMEOUT_MS = 30_000;
const GROUP_BIT = 0x80000000;

// ---- accounting ------------------------------------------------------------------------------------------

class BitSet {
  private a = new Uint8Array(64);
  /** True when n was not set before. */
  set(n: number): boolean {
    const i = n >>> 3;
    if (i >= this.a.length) {
      const b = new Uint8Array(Math.max(this.a.length * 2, i + 64));
      b.set(this.a);
      this.a = b;
    }
    const bit = 1 << (n & 7);
    if (this.a[i]! & bit) return false;
    this.a[i]! |= bit;
    return true;
  }
  has(n: number): boolean {
    const i = n >>> 3;
    return i < this.a.length && (this.a[i]! & (1 << (n & 7))) !== 0;
  }
}

class Stream {
  readonly id: number;
  readonly group: boolean;
  readonly senders: Vu[];
  readonly recipients: Vu[];
  readonly to: string | number | undefined;
  readonly create?: StreamSpec['create'];
  conv?: string;
  /** Messages issued so far (n of the last one). */
  n = 0;
  /** n at the start of the current run. */
  mark = 0;
  readonly acked = new BitSet();
  readonly failed = new BitSet();
  /** Sender of each n (group streams take turns). */
  senderOf = new Int32Array(64);
  /** Closed loop: recipients still to reach, per n in flight. */
  readonly remaining = new Map<number, number>();
  inflight = 0;
  issuedThisRun = 0;
  constructor(spec: StreamSpec, vus: Map<number, Vu>) {
    this.id = spec.id;
    this.group = spec.group;
    this.senders = spec.senders.map((i) => vus.get(i)!);
    this.recipients = spec.recipients.map((i) => vus.get(i)!);
    this.to = spec.to;
    this.create = spec.create;
    for (const r of this.recipients) r.streams.set(this.id, new BitSet());
  }
  recipientsOf(sender: Vu): number {
    return this.group ? this.recipients.length - (this.recipients.includes(sender) ? 1 : 0) : this.recipients.length;
  }
  setSender(n: number, vu: Vu): void {
    if (n >= this.senderOf.length) {
      const b = new Int32Array(Math.max(this.senderOf.length * 2, n + 64));
      b.set(this.senderOf);
      this.senderOf = b;
    }
    this.senderOf[n] = vu.idx;
  }
}

interface Counters {
  sent: number; acked: number; expected: number; delivered: number; deliveredInWindow: number; duplicated: number;
  receipts: number; resentFiltered: number; redelivered: number; failed: number; errors: Record<string, number>; errorCount: number;
}
const newCounters = (): Counters => ({ sent: 0, acked: 0, expected: 0, delivered: 0, deliveredInWindow: 0, duplicated: 0, receipts: 0, resentFiltered: 0, redelivered: 0, failed: 0, errors: {}, errorCount: 0 });

// ---- state of this worker ---------------------------------------------------------------------------------

let kind: TargetKind = 'parley';
let wsBase = '';
let addresses: string[] = ['127.0.0.1'];
let frameBytes = 100;
let connectConcurrency = 256;
let connectRetries = 2;
const vus = new Map<number, Vu>();
const streams = new Map<number, Stream>();
let c: Counters = newCounters();
let hist: Histogram = newHistogram();
let ackHist: Histogram = newHistogram();
let recordFromUs = Infinity;
let windowEndUs = Infinity;
/** The run in progress (closed loop issuing), if any. */
let active: { cmd: RunCmd; endAt: number; issued: number; stopped: boolean } | undefined;
/** VUs with deliveries to ack (Parley, and the uWS relay driven with acks). */
const ackDirty = new Set<{ flushAck(): void }>();

function error(code: string): void {
  c.errors[code] = (c.errors[code] ?? 0) + 1;
  c.errorCount++;
}

/** A delivery reached recipient `vu`: count it once, time it, and free a closed-loop slot. */
function delivered(vu: Vu, streamId: number, n: number, tUs: number, now: number): void {
  const seen = vu.streams.get(streamId);
  if (!seen) { error('unexpected_delivery'); return; }
  if (!seen.set(n)) { c.duplicated++; return; }
  c.delivered++;
  if (now <= windowEndUs) c.deliveredInWindow++;
  if (tUs >= recordFromUs) hist.recordValue(Math.max(1, Math.round(now - tUs)));
  const s = streams.get(streamId)!;
  const left = s.remaining.get(n);
  if (left !== undefined) {
    if (left <= 1) { s.remaining.delete(n); slotFreed(s); } else s.remaining.set(n, left - 1);
  }
}

/** The server has message n of a stream (Parley "sent", Centrifugo's publish reply; the baselines count a send as acked). */
function acknowledged(s: Stream, n: number, tUs: number): void {
  if (!s.acked.set(n)) return;
  c.acked++;
  c.expected += s.recipientsOf(senderOfN(s, n));
  if (tUs >= recordFromUs && serverAcks(kind)) ackHist.recordValue(Math.max(1, Math.round(monoUs() - tUs)));
  if (active?.cmd.gate === 'ack') slotFreed(s);
}

function senderOfN(s: Stream, n: number): Vu {
  return s.group ? vus.get(s.senderOf[n]!)! : s.senders[0]!;
}

function failedSend(s: Stream, n: number): void {
  if (!s.failed.set(n)) return;
  c.failed++;
  if (s.remaining.delete(n) || active?.cmd.gate === 'ack') slotFreed(s);
}

function slotFreed(s: Stream): void {
  if (s.inflight > 0) s.inflight--;
  const a = active;
  if (!a || a.cmd.mode !== 'closed' || a.stopped) return;
  if (monoMs() >= a.endAt || a.issued >= a.cmd.maxMessages) { a.stopped = true; return; }
  if (a.cmd.perStream && s.issuedThisRun >= a.cmd.perStream) return;
  issue(s, monoUs());
  a.issued++;
}

function issue(s: Stream, tUs: number): void {
  const n = ++s.n;
  s.issuedThisRun++;
  const sender = s.group ? s.senders[(n - 1) % s.senders.length]! : s.senders[0]!;
  if (s.group) s.setSender(n, sender);
  if (!sender.open) { error('send_not_open'); if (s.failed.set(n)) c.failed++; return; }
  if (active?.cmd.mode === 'closed' && active.cmd.gate === 'delivery') s.remaining.set(n, s.recipientsOf(sender));
  s.inflight++;
  sender.send(s, n, tUs);
  c.sent++;
  if (!serverAcks(kind)) acknowledged(s, n, tUs);
}

// ---- virtual users -----------------------------------------------------------------------------------------

abstract class Vu {
  ws?: WebSocket;
  open = false;
  ready = false;
  /** Per stream this VU receives: the n's it got. */
  readonly streams = new Map<number, BitSet>();
  onReady?: () => void;
  onFail?: (why: string) => void;
  constructor(readonly idx: number, readonly spec: VuSpec) {}
  abstract url(): string;
  abstract handle(data: Buffer, isBinary: boolean): void;
  abstract send(s: Stream, n: number, tUs: number): void;
  /** Baselines: subscribe to these groups (resolves once the server confirmed, where it does). */
  join(_groups: number[]): void | Promise<void> { /* baselines only */ }
  closed(): void { /* per protocol */ }

  connect(): Promise<void> {
    const address = addresses[this.idx % addresses.length]!;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let readyTimer: NodeJS.Timeout | undefined;
      this.stage = 'connecting';
      const ws = new WebSocket(this.url(), { perMessageDeflate: false, skipUTF8Validation: true, localAddress: address, handshakeTimeout: 30_000, maxPayload: 16 * 1024 * 1024 });
      this.ws = ws;
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(readyTimer);
        this.onReady = undefined;
        this.onFail = undefined;
        try { ws.terminate(); } catch { /* already gone */ }
        reject(new Error(why));
      };
      this.onReady = () => {
        if (settled) return;
        settled = true;
        clearTimeout(readyTimer);
        this.ready = true;
        this.onReady = undefined;
        this.onFail = undefined;
        resolve();
      };
      this.onFail = fail;
      ws.on('unexpected-response', (_req, res) => fail(`http_${res.statusCode}`));
      ws.on('error', (e: NodeJS.ErrnoException) => fail(e.code ?? 'ws_error'));
      // Open but never ready (no welcome, or no end of sync): a failure of its own, not a hang of the run.
      ws.on('open', () => { this.open = true; this.stage = 'open'; readyTimer = setTimeout(() => fail(`not_ready_after_${this.stage}`), READY_TIMEOUT_MS); this.opened(); });
      ws.on('message', (data: Buffer, isBinary: boolean) => this.handle(data, isBinary));
      ws.on('close', (code) => {
        const wasReady = this.ready;
        this.open = false;
        this.ready = false;
        this.closed();
        if (!settled) fail(`closed_${code}_before_ready`);
        else if (wasReady && !this.dropping && this.ws === ws) error(`closed_${code}`);
      });
    });
  }
  dropping = false;
  /** How far the connection got (named in a ready timeout): connecting, open, welcome. */
  stage = 'connecting';
  opened(): void { /* per protocol */ }
}

class ParleyVu extends Vu {
  ptr: number;
  acked: number;
  /** 1:1 senders, per conversation: seqs of this VU's acked messages (in order), and the delivered receipt's high mark. */
  sentSeqs = new Map<string, number[]>();
  receiptUpTo = new Map<string, number>();
  /** Per conversation, the seqs this device got. */
  private readonly seqsSeen = new Map<string, BitSet>();
  private readonly waiting = new Map<string, (f: Record<string, unknown>) => void>();
  constructor(idx: number, spec: VuSpec) {
    super(idx, spec);
    this.ptr = spec.ptr ?? 0;
    this.acked = this.ptr;
  }
  url(): string { return `${this.spec.url ? this.spec.url.replace(/^http/, 'ws') : wsBase}/v1/ws?token=${encodeURIComponent(this.spec.token!)}&format=msgpack`; }
  raw(frame: unknown): void { this.ws!.send(packr.pack(frame)); }
  request(frame: Record<string, unknown>, rid: string, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting.delete(rid); reject(new Error('request timed out')); }, timeoutMs);
      this.waiting.set(rid, (f) => { clearTimeout(timer); resolve(f); });
      this.raw({ ...frame, rid });
    });
  }
  send(s: Stream, n: number, tUs: number): void {
    const cid = `${s.id.toString(36)}.${n.toString(36)}.${Math.round(tUs).toString(36)}`;
    this.ws!.send(packr.pack(s.group
      ? { t: 'send', cid, conv: s.conv, kind: 'text', body: { text: textPad }, fresh: true }
      : { t: 'send', cid, to: s.to, kind: 'text', body: { text: textPad }, fresh: true }));
  }
  handle(data: Buffer): void {
    const f = packr.unpack(data) as Record<string, any>;
    switch (f.t) {
      case 'msg': {
        if (f.ptr <= this.ptr) { c.resentFiltered++; return; }
        this.ptr = f.ptr;
        if (this.ptr - this.acked >= ACK_EVERY) this.flushAck(); else ackDirty.add(this);
        const m = f.m;
        if (m.kind === 'system') return;
        // A redelivery (the fan-out's retry, when a confirmation came late) brings a (conv, seq) the device
        // has: the SDK drops it, and so does this. A duplicate is the same (stream, n) under another seq.
        let seqs = this.seqsSeen.get(m.conv);
        if (!seqs) this.seqsSeen.set(m.conv, (seqs = new BitSet()));
        if (!seqs.set(m.seq)) { c.redelivered++; return; }
        const cid = m.cid as string;
        const a = cid.indexOf('.'), b = cid.indexOf('.', a + 1);
        delivered(this, parseInt(cid.slice(0, a), 36), parseInt(cid.slice(a + 1, b), 36), parseInt(cid.slice(b + 1), 36), monoUs());
        return;
      }
      case 'sent': {
        const cid = f.cid as string;
        const a = cid.indexOf('.'), b = cid.indexOf('.', a + 1);
        const s = streams.get(parseInt(cid.slice(0, a), 36));
        if (!s) return;
        if (f.dup) error('server_dedupe');
        if (!s.group) {
          let l = this.sentSeqs.get(f.conv);
          if (!l) this.sentSeqs.set(f.conv, (l = []));
          l.push(f.seq as number);
        }
        acknowledged(s, parseInt(cid.slice(a + 1, b), 36), parseInt(cid.slice(b + 1), 36));
        return;
      }
      case 'receipt':
        c.receipts++;
        if (f.status === 'delivered' && f.upTo > (this.receiptUpTo.get(f.conv) ?? 0)) this.receiptUpTo.set(f.conv, f.upTo);
        return;
      case 'welcome':
        this.stage = 'welcome';
        if (f.acked > this.ptr) this.ptr = f.acked;
        this.acked = this.ptr;
        this.raw({ t: 'sync', since: this.ptr });
        return;
      case 'synced':
        this.flushAck();
        if (f.more) this.raw({ t: 'sync', since: this.ptr });
        else this.onReady?.();
        return;
      case 'res': case 'pong': {
        const w = f.rid !== undefined ? this.waiting.get(f.rid) : undefined;
        if (w) { this.waiting.delete(f.rid); w(f); }
        return;
      }
      case 'error': {
        error(`server_${f.code}`);
        if (typeof f.cid === 'string') {
          const [sid, n] = f.cid.split('.');
          const s = streams.get(parseInt(sid, 36));
          if (s) failedSend(s, parseInt(n, 36));
        }
        if (f.rid !== undefined && this.waiting.has(f.rid)) { const w = this.waiting.get(f.rid)!; this.waiting.delete(f.rid); w(f); }
        return;
      }
      default:
        return; // presence, typing: not used here
    }
  }
  flushAck(): void {
    ackDirty.delete(this);
    if (this.ptr > this.acked && this.open) {
      this.raw({ t: 'ack', ptr: this.ptr });
      this.acked = this.ptr;
    }
  }
  override closed(): void {
    ackDirty.delete(this);
    this.acked = Math.min(this.acked, this.ptr);
    for (const [rid, w] of this.waiting) { this.waiting.delete(rid); w({ t: 'error', code: 'disconnected' }); }
  }
  ping(timeoutMs: number): Promise<number> {
    const t0 = monoUs();
    return this.request({ t: 'ping' }, `p${this.idx}`, timeoutMs).then(() => monoUs() - t0);
  }
}

let uwsTemplate = Buffer.alloc(0);
class UwsVu extends Vu {
  url(): string { return `${wsBase}/?u=${this.idx}`; }
  override opened(): void { this.onReady?.(); }
  override join(groups: number[]): void { this.ws!.send(`join:${groups.join(',')}`); }
  send(s: Stream, n: number, tUs: number): void {
    const b = Buffer.from(uwsTemplate);
    b.writeUInt32LE(s.group ? (GROUP_BIT | s.id) >>> 0 : (s.to as number), 0);
    b.writeUInt32LE(s.id, 4);
    b.writeUInt32LE(n, 8);
    b.writeUInt32LE(this.idx, 12);
    b.writeDoubleLE(tUs, 16);
    this.ws!.send(b, { binary: true });
  }
  handle(data: Buffer, isBinary: boolean): void {
    if (!isBinary) return;
    delivered(this, data.readUInt32LE(4), data.readUInt32LE(8), data.readDoubleLE(16), monoUs());
  }
}

/**
 * The uWS relay with Parley's frames per 1:1 message: the recipient acks what it got (batched like the
 * SDK: every ACK_DELAY_MS, or at once after ACK_EVERY) and the relay carries the ack back to the sender,
 * as Parley carries the tick and the delivered receipt. Two frames in and two out per message, nothing
 * stored: the socket cost Parley's protocol can't go below on this stack.
 */
const ACK_STREAM = 0xffffffff;
class UwsAckedVu extends UwsVu {
  /** Per sender VU: the highest n of its stream this VU got and hasn't acked yet. */
  private readonly unacked = new Map<number, number>();
  private count = 0;
  override handle(data: Buffer, isBinary: boolean): void {
    if (!isBinary) return;
    const stream = data.readUInt32LE(4);
    if (stream === ACK_STREAM) { c.receipts++; return; } // the sender's "delivered"
    super.handle(data, isBinary);
    this.unacked.set(data.readUInt32LE(12), data.readUInt32LE(8));
    if (++this.count >= ACK_EVERY) this.flushAck(); else ackDirty.add(this);
  }
  flushAck(): void {
    ackDirty.delete(this);
    this.count = 0;
    if (!this.open) return this.unacked.clear();
    for (const [to, n] of this.unacked) {
      const b = Buffer.alloc(16);
      b.writeUInt32LE(to, 0);
      b.writeUInt32LE(ACK_STREAM, 4);
      b.writeUInt32LE(n, 8);
      b.writeUInt32LE(this.idx, 12);
      this.ws!.send(b, { binary: true });
    }
    this.unacked.clear();
  }
  override closed(): void { ackDirty.delete(this); this.unacked.clear(); }
}

let sioPad = '';
class SocketIoVu extends Vu {
  url(): string { return `${wsBase}/socket.io/?EIO=4&transport=websocket&u=${this.idx}`; }
  override join(groups: number[]): void { this.ws!.send(`42["join",[${groups.join(',')}]]`); }
  send(s: Stream, n: number, tUs: number): void {
    const dest = s.group ? `"g":${s.id}` : `"to":${s.to as number}`;
    this.ws!.send(`42["m",{${dest},"s":${s.id},"n":${n},"t":${Math.round(tUs)},"x":"${sioPad}"}]`);
  }
  handle(data: Buffer): void {
    const first = data[0];
    if (first === 0x34 /* 4 */ && data[1] === 0x32 /* 2: event */) {
      const [, m] = JSON.parse(data.toString('latin1', 2)) as [string, { s: number; n: number; t: number }];
      delivered(this, m.s, m.n, m.t, monoUs());
    } else if (first === 0x32 /* 2: ping */) {
      this.ws!.send('3');
    } else if (first === 0x30 /* 0: open */) {
      this.ws!.send('40');
    } else if (first === 0x34 && data[1] === 0x30 /* 40: connected to the namespace */) {
      this.onReady?.();
    } else if (first === 0x34 && data[1] === 0x34 /* 44: connect error */) {
      this.onFail?.('sio_connect_error');
    }
  }
}

/**
 * Centrifugo over its JSON protocol: connect with a JWT, subscribe to the user's own user-limited channel
 * (ready once the server confirmed it), publish a 1:1 message into the partner's personal channel and a
 * group message into the group's channel. The publish reply is the server's ack; deliveries arrive as
 * publications. A group's sender gets its own publication back (Centrifugo has no "all but the
 * publisher"): not counted as a delivery.
 */
let cfPad = '';
let jwtSecret = '';
type CfPending =
  | { kind: 'connect' }
  | { kind: 'subscribe'; channel: string; done?: () => void }
  | { kind: 'publish'; s: Stream; n: number; t: number };
class CentrifugoVu extends Vu {
  private readonly user = String(this.idx);
  private nextId = 0;
  private readonly pending = new Map<number, CfPending>();
  private pong = false;
  url(): string { return `${wsBase}/connection/websocket`; }
  private command(p: CfPending, frame: (id: number) => string): void {
    const id = this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1;
    this.pending.set(id, p);
    this.ws!.send(frame(id));
  }
  override opened(): void {
    const token = connectToken(this.user, jwtSecret, Math.floor(Date.now() / 1000));
    this.command({ kind: 'connect' }, (id) => connectCommand(id, token));
  }
  override join(groups: number[]): Promise<void> {
    return Promise.all(groups.map((g) => new Promise<void>((done) => {
      const channel = groupChannel(g);
      this.command({ kind: 'subscribe', channel, done }, (id) => subscribeCommand(id, channel));
    }))).then(() => undefined);
  }
  send(s: Stream, n: number, tUs: number): void {
    const channel = s.group ? groupChannel(s.id) : personalChannel(String(s.to));
    this.command({ kind: 'publish', s, n, t: tUs }, (id) => publishCommand(id, channel, benchPayload(s.id, n, tUs, cfPad)));
  }
  handle(data: Buffer): void {
    for (const m of parseFrame(data.toString())) {
      switch (m.type) {
        case 'publication': {
          if (m.user === this.user) break; // a group sender's own message
          const p = readPayload(m.data);
          if (p) delivered(this, p.s, p.n, p.t, monoUs()); else error('cf_foreign_publication');
          break;
        }
        case 'reply': {
          const p = this.pending.get(m.id);
          if (!p) { error('cf_unexpected_reply'); break; }
          this.pending.delete(m.id);
          if (m.error) {
            error(`server_${m.error.code}`);
            if (p.kind === 'publish') failedSend(p.s, p.n);
            else if (p.kind === 'connect' || p.channel === personalChannel(this.user)) this.onFail?.(`cf_${p.kind}_${m.error.code}`);
            else p.done?.();
          } else if (p.kind === 'publish') {
            acknowledged(p.s, p.n, p.t);
          } else if (p.kind === 'connect') {
            this.pong = m.result.pong === true;
            const channel = personalChannel(this.user);
            this.command({ kind: 'subscribe', channel }, (id) => subscribeCommand(id, channel));
          } else if (p.channel === personalChannel(this.user)) {
            this.onReady?.();
          } else {
            p.done?.();
          }
          break;
        }
        case 'ping':
          if (this.pong) this.ws!.send(PONG);
          break;
        case 'unsubscribe': error(`cf_unsubscribed_${m.code}`); break;
        case 'disconnect': error(`cf_disconnect_${m.code}`); break;
        default: break;
      }
    }
  }
  override closed(): void {
    // What was in flight has no answer now: publishes count as failed, group joins give up.
    for (const p of this.pending.values()) {
      if (p.kind === 'publish') failedSend(p.s, p.n);
      else if (p.kind === 'subscribe') p.done?.();
    }
    this.pending.clear();
    this.pong = false;
  }
}

let textPad = '';

// ---- commands ------------------------------------------------------------------------------------------

function setup(cmd: SetupCmd): unknown {
  kind = cmd.kind;
  wsBase = cmd.url.replace(/^http/, 'ws');
  addresses = cmd.addresses.length ? cmd.addresses : ['127.0.0.1'];
  frameBytes = cmd.frameBytes;
  connectConcurrency = cmd.connectConcurrency;
  connectRetries = cmd.connectRetries;
  jwtSecret = cmd.jwtSecret ?? '';
  vus.clear();
  streams.clear();
  const Ctor = kind === 'parley' ? ParleyVu : kind === 'uws' ? UwsVu : kind === 'uws-acked' ? UwsAckedVu : kind === 'socketio' ? SocketIoVu : CentrifugoVu;
  for (const v of cmd.vus) vus.set(v.idx, new Ctor(v.idx, v));
  for (const s of cmd.streams) streams.set(s.id, new Stream(s, vus));
  // Payloads sized so the frame a client sends is about `frameBytes` on every target.
  uwsTemplate = Buffer.alloc(Math.max(24, frameBytes), 0x78);
  sioPad = 'x'.repeat(Math.max(1, frameBytes - 62));
  textPad = 'x'.repeat(Math.max(1, frameBytes - 62));
  cfPad = 'x'.repeat(padFor(frameBytes, personalChannel('999')));
  c = newCounters();
  return { vus: vus.size, streams: streams.size };
}

async function connect(cmd: ConnectCmd): Promise<ConnectResult> {
  const list = (cmd.vus ? cmd.vus.map((i) => vus.get(i)!).filter(Boolean) : [...vus.values()]).filter((v) => !v.ready);
  const readyHist = newHistogram();
  const errors: Record<string, number> = {};
  let connected = 0, failed = 0, next = 0;
  const deadline = Date.now() + cmd.timeoutMs;
  const one = async (vu: Vu) => {
    vu.dropping = false;
    for (let attempt = 0; ; attempt++) {
      const t0 = monoUs();
      try {
        await vu.connect();
        readyHist.recordValue(Math.max(1, Math.round(monoUs() - t0)));
        connected++;
        return;
      } catch (e) {
        const why = (e as Error).message;
        errors[why] = (errors[why] ?? 0) + 1;
        if (attempt >= connectRetries || Date.now() > deadline || why === 'http_503' || why === 'http_401') { failed++; return; }
        await sleep(250 * (attempt + 1));
      }
    }
  };
  const lanes = Array.from({ length: Math.min(connectConcurrency, list.length) }, async () => {
    while (next < list.length && Date.now() < deadline) await one(list[next++]!);
  });
  await Promise.all(lanes);
  failed += list.length - connected - failed;
  // Baselines: groups are joined once connected (Centrifugo confirms each subscription; the others don't).
  if (kind !== 'parley') {
    const joining = new Set(list);
    const byVu = new Map<Vu, number[]>();
    for (const s of streams.values()) if (s.group) for (const r of s.recipients) if (joining.has(r)) byVu.set(r, [...(byVu.get(r) ?? []), s.id]);
    const joined: Promise<void>[] = [];
    for (const [vu, gs] of byVu) if (vu.open) { const j = vu.join(gs); if (j) joined.push(j); }
    const all = Promise.all(joined).then(() => true);
    if (!(await Promise.race([all, sleep(Math.max(1000, deadline - Date.now())).then(() => false)]))) error('join_timeout');
    if (byVu.size && !serverAcks(kind)) await sleep(500);
  }
  return { connected, failed, readyHist: encodeHistogram(readyHist), synced: connected, errors };
}

async function createGroups(cmd: GroupsCmd): Promise<{ created: number; failed: number }> {
  if (kind !== 'parley') return { created: [...streams.values()].filter((s) => s.group).length, failed: 0 };
  let created = 0, failed = 0;
  await Promise.all([...streams.values()].filter((s) => s.group && s.create).map(async (s) => {
    const creator = s.senders[0] as ParleyVu;
    const res = await creator.request({ t: 'group.create', name: s.create!.name, members: s.create!.members }, `g${s.id}`, cmd.timeoutMs).catch(() => undefined);
    const conv = (res?.data as { conv?: string } | undefined)?.conv;
    if (res?.t === 'res' && conv) { s.conv = conv; created++; } else { failed++; error(`group_create_${String(res?.code ?? 'timeout')}`); }
  }));
  return { created, failed };
}

async function run(cmd: RunCmd): Promise<RunStats> {
  c = newCounters();
  hist = newHistogram();
  ackHist = newHistogram();
  recordFromUs = cmd.recordFrom * 1000;
  const endAt = cmd.startAt + cmd.durationMs;
  windowEndUs = endAt * 1000;
  const slots = [...streams.values()].filter((s) => s.senders.length && (!s.group || kind !== 'parley' || s.conv));
  for (const s of streams.values()) { s.mark = s.n; s.issuedThisRun = 0; s.inflight = 0; s.remaining.clear(); }
  for (const v of vus.values()) if (v instanceof ParleyVu) v.sentSeqs.clear();
  const a: NonNullable<typeof active> = { cmd, endAt, issued: 0, stopped: false };
  active = a;
  let maxLag = 0;
  while (monoMs() < cmd.startAt) await sleep(Math.min(5, Math.max(0, cmd.startAt - monoMs())));
  if (slots.length === 0) a.stopped = true;
  if (cmd.mode === 'closed') {
    for (const s of slots) for (let i = 0; i < cmd.window && a.issued < cmd.maxMessages && (!cmd.perStream || s.issuedThisRun < cmd.perStream); i++) { issue(s, monoUs()); a.issued++; }
    while (!a.stopped && monoMs() < endAt) {
      await sleep(5);
      if (cmd.perStream && slots.every((s) => s.issuedThisRun >= cmd.perStream)) break;
    }
    a.stopped = true;
  } else {
    const perMs = cmd.ratePerS / 1000;
    let slot = 0;
    while (!a.stopped) {
      const now = monoMs();
      const due = Math.min(cmd.maxMessages, Math.floor((Math.min(now, endAt) - cmd.startAt) * perMs) + 1);
      if (a.issued < due) maxLag = Math.max(maxLag, now - (cmd.startAt + a.issued / perMs));
      while (a.issued < due) {
        issue(slots[slot]!, (cmd.startAt + a.issued / perMs) * 1000);
        slot = (slot + 1) % slots.length;
        a.issued++;
      }
      if (now >= endAt || a.issued >= cmd.maxMessages) break;
      await sleep(1);
    }
    a.stopped = true;
  }
  const d = cmd.drainMs > 0 ? await drain(cmd.drainMs, cmd.stallMs, cmd.awaitDelivery) : { drained: false, stalled: false };
  active = undefined;
  return collect(d, Math.max(0, Math.min(monoMs(), endAt) - cmd.startAt), maxLag);
}

function isDrained(awaitDelivery: boolean): boolean {
  if (c.acked + c.failed < c.sent) return false;
  if (!awaitDelivery) return true;
  if (c.delivered < c.expected) return false;
  if (kind === 'parley') return receiptsMissing() === 0;
  return true;
}

/** Waits until everything sent arrived; gives up at the cap, or earlier when nothing moves for stallMs. */
async function drain(timeoutMs: number, stallMs: number, awaitDelivery = true): Promise<{ drained: boolean; stalled: boolean }> {
  const end = monoMs() + timeoutMs;
  let last = -1, lastChange = monoMs();
  while (monoMs() < end) {
    if (isDrained(awaitDelivery)) return { drained: true, stalled: false };
    const progress = c.acked + c.failed + c.delivered + c.receipts;
    if (progress !== last) { last = progress; lastChange = monoMs(); } else if (monoMs() - lastChange > stallMs) return { drained: false, stalled: true };
    await sleep(20);
  }
  return { drained: isDrained(awaitDelivery), stalled: false };
}

function receiptsMissing(): number {
  let missing = 0;
  for (const v of vus.values()) {
    if (!(v instanceof ParleyVu)) continue;
    for (const [conv, seqs] of v.sentSeqs) {
      const upTo = v.receiptUpTo.get(conv) ?? 0;
      for (let i = seqs.length - 1; i >= 0 && seqs[i]! > upTo; i--) missing++;
    }
  }
  return missing;
}

function lostCount(): number {
  let lost = 0;
  for (const s of streams.values()) {
    for (let n = s.mark + 1; n <= s.n; n++) {
      if (!s.acked.has(n)) continue;
      const from = senderOfN(s, n);
      for (const r of s.recipients) if (r !== from && !r.streams.get(s.id)!.has(n)) lost++;
    }
  }
  return lost;
}

function collect({ drained, stalled }: { drained: boolean; stalled: boolean }, windowMs: number, maxLag: number): RunStats {
  return {
    sent: c.sent, acked: c.acked, expected: c.expected, delivered: c.delivered, deliveredInWindow: c.deliveredInWindow,
    duplicated: c.duplicated, lost: lostCount(), receiptsMissing: kind === 'parley' ? receiptsMissing() : 0, receipts: c.receipts,
    resentFiltered: c.resentFiltered, redelivered: c.redelivered, errors: { ...c.errors }, hist: encodeHistogram(hist), ackHist: encodeHistogram(ackHist),
    drained, stalled, maxIssueLagMs: Math.round(maxLag * 10) / 10, windowMs,
  };
}

async function drainCmd(cmd: DrainCmd): Promise<RunStats> {
  return collect(await drain(cmd.timeoutMs, cmd.stallMs, true), 0, 0);
}

function drop(cmd: DropCmd): { dropped: number } {
  let dropped = 0;
  for (const v of cmd.vus ? cmd.vus.map((i) => vus.get(i)!).filter(Boolean) : vus.values()) {
    if (!v.ws) continue;
    v.dropping = true;
    if (v instanceof ParleyVu) v.flushAck();
    v.ready = false;
    v.ws.terminate();
    dropped++;
  }
  return { dropped };
}

async function ping(cmd: PingCmd): Promise<{ ok: number; failed: number; hist: string }> {
  const h = newHistogram();
  const list = [...vus.values()].filter((v): v is ParleyVu => v instanceof ParleyVu && v.ready);
  const step = Math.max(1, Math.floor(list.length / Math.max(1, cmd.sample)));
  let ok = 0, failed = 0;
  await Promise.all(list.filter((_, i) => i % step === 0).slice(0, cmd.sample).map(async (v) => {
    try { h.recordValue(Math.max(1, Math.round(await v.ping(cmd.timeoutMs)))); ok++; } catch { failed++; }
  }));
  return { ok, failed, hist: encodeHistogram(h) };
}

// Batched acks, like the SDK: at most ACK_DELAY_MS after a delivery (or at once after ACK_EVERY).
setInterval(() => { for (const v of ackDirty) v.flushAck(); }, ACK_DELAY_MS).unref();

// Progress for the coordinator's bar.
setInterval(() => {
  let connected = 0;
  for (const v of vus.values()) if (v.ready) connected++;
  emit({ ev: 'progress', sent: c.sent, delivered: c.delivered, connected, errors: c.errorCount });
}, 250).unref();

function emit(e: WorkerEvent): void {
  if (process.connected) process.send!(e);
}

process.on('message', (msg: WorkerCmd & { id: number }) => {
  const { id } = msg;
  const reply = (p: Promise<unknown> | unknown) => Promise.resolve(p).then(
    (result) => emit({ ev: 'reply', id, ok: true, result }),
    (err) => emit({ ev: 'reply', id, ok: false, error: (err as Error)?.stack ?? String(err) }),
  );
  switch (msg.cmd) {
    case 'setup': return void reply(setup(msg));
    case 'connect': return void reply(connect(msg));
    case 'groups': return void reply(createGroups(msg));
    case 'run': return void reply(run(msg));
    case 'drain': return void reply(drainCmd(msg));
    case 'drop': return void reply(drop(msg));
    case 'ping': return void reply(ping(msg));
    case 'close':
      for (const v of vus.values()) { v.dropping = true; v.ws?.terminate(); }
      void reply({ closed: true }).then(() => setTimeout(() => process.exit(0), 50));
      return;
  }
});
process.on('disconnect', () => process.exit(0));
