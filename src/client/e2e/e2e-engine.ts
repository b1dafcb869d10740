import { Packr } from 'msgpackr';
import type { DeviceKeyInfo, Message, MlsBody, SentFrame } from '../../protocol/frames.js';
import { loadMls, type ClientState, type KeyPackage, type MLSMessage, type Mls, type MlsLoaded, type Welcome } from './mls-lib.js';
import { safetyNumber } from './safety-number.js';
import { DeviceKeys, hex, type SavedKeys } from './device-keys.js';

/**
 * The SDK's end-to-end encryption (docs/architecture.md, "End-to-end encryption"): every device is an MLS
 * leaf, every conversation (1:1 or group) an MLS group of its users' devices. The server sees only `mls`
 * messages: a header (app/commit, the epoch, a commit's users) and opaque MLS bytes. Work on one
 * conversation's group runs in one queue, so a commit and the messages around it apply in log order.
 */

/** What the engine needs from the client it runs in. */
export interface E2eHost {
  readonly user: string;
  readonly device: string;
  /** A key-directory request (keys.*), answered with its `res` data. */
  request(frame: Record<string, unknown>): Promise<unknown>;
  /** Sends an `mls` message to the conversation; resolves on its tick, rejects with the node's error. */
  sendMls(conv: string, body: MlsBody): Promise<SentFrame>;
  /** The conversation's users as the server has them (a 1:1 chat's two; a group's members). */
  members(conv: string): Promise<string[]>;
  /** A decrypted message, for the app (with its inner kind and body), and the inbox pointer it came with. */
  deliver(m: Message, ptr: number): void;
  /** A message that did not decrypt (tampered, not for this device, from an epoch it never had). */
  undecryptable(m: Message, reason: string): void;
  /** This device joined a conversation's group, or its group moved to a new epoch. */
  changed(conv: string, epoch: number): void;
}

/** A message as the app gets it after decryption: its inner kind and body, marked `e2e`. */
export type DecryptedMessage = Message & { e2e: true };

/** What an encrypted message carries inside: the app's message as it would have been sent in plaintext. */
export interface InnerMessage { kind: Message['kind']; body?: Message['body']; reply?: number; target?: number }

/** Attempts of one send (each after the commits that refused it were processed, or the owed commit made). */
const SEND_ATTEMPTS = 6;
/**
 * How often a sender checks its conversation's group against the key directory before sending (a contact's
 * new or re-registered device, one signed out): at most this stale. Each check is two small requests.
 */
export const RECONCILE_EVERY_MS = 30_000;
/**
 * Devices one commit adds at most: a commit carries their KeyPackages and the Welcome for them, and both
 * must fit in one message body (32 KiB): 20 adds come to about 15 KiB.
 */
const ADDS_PER_COMMIT = 20;
/** How long a refused sender waits for the group to move (a commit or Welcome in its inbox). */
const WAIT_MS = 5_000;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const enc = new TextEncoder();
const dec = new TextDecoder();

type Code = { code?: string };
const codeOf = (err: unknown): string | undefined => (err as Code)?.code;

export class E2eEngine {
  private lib?: MlsLoaded;
  private readonly keys: DeviceKeys;
  private readonly groups = new Map<string, ClientState>();
  /** Groups this device was removed from, with its last state (which can't open what followed). */
  private readonly removed = new Map<string, ClientState>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private started?: Promise<void>;

  /** KeyPackages claimed for a group and not used yet (past one commit's adds), by conversation. */
  private readonly spare = new Map<string, KeyPackage[]>();
  /** When each conversation's group was last checked against the directory. */
  private readonly checked = new Map<string, number>();

  /** `saved`: what `save` gave in an earlier run of this device (its keys are published already). */
  constructor(private readonly host: E2eHost, private readonly reconcileEveryMs = RECONCILE_EVERY_MS, saved?: Uint8Array) {
    this.keys = new DeviceKeys(host, () => this.load());
    if (saved) this.started = this.restore(saved);
  }

  /** Makes this device's identity and publishes its keys (once per engine). */
  start(): Promise<void> {
    return (this.started ??= this.keys.publish());
  }

  /** The epoch of the conversation's group as this device has it; undefined: not a member. */
  epoch(conv: string): number | undefined {
    const s = this.groups.get(conv);
    return s ? Number(s.groupContext.epoch) : undefined;
  }

  /** The devices (as `user/device`) of the conversation's group as this device sees it. */
  leaves(conv: string): string[] {
    const s = this.groups.get(conv);
    return s ? this.leafIds(s) : [];
  }

  // ---- the device's state, kept by the app between runs ----

  /**
   * Everything this device must keep to go on where it left off: its identity, its unused KeyPackages'
   * private keys and every group's state, as bytes (msgpack; MLS states in their own encoding). Secret:
   * store it as the app stores its token, or better. Without it a restarted app is a new identity.
   */
  async save(): Promise<Uint8Array> {
    await this.start();
    const { mls } = await this.load();
    return packr.pack({
      v: 1, ...(await this.keys.save()),
      groups: [...this.groups].map(([conv, st]) => [conv, mls.encodeGroupState(st)]),
      removed: [...this.removed].map(([conv, st]) => [conv, mls.encodeGroupState(st)]),
    });
  }

  /** Takes up a saved state: the device's keys are published already, its groups go on. */
  private async restore(bytes: Uint8Array): Promise<void> {
    const { mls, config } = await this.load();
    const saved = packr.unpack(bytes) as SavedState;
    if (saved.v !== 1) throw new Error(`unknown e2e state version ${String(saved.v)}`);
    const state = (b: Uint8Array): ClientState => {
      const decoded = mls.decodeGroupState(b, 0);
      if (!decoded) throw new Error('a saved group state does not decode');
      return { ...decoded[0], clientConfig: config };
    };
    await this.keys.restore(saved);
    for (const [conv, b] of saved.groups) this.groups.set(conv, state(b));
    for (const [conv, b] of saved.removed) this.removed.set(conv, state(b));
  }

  // ---- sending ----

  /** Encrypts `inner` for the conversation and sends it; resolves on the tick. */
  async send(conv: string, inner: InnerMessage, media?: string): Promise<SentFrame> {
    await this.start();
    let last: unknown;
    for (let attempt = 0; attempt < SEND_ATTEMPTS; attempt++) {
      await this.ensureGroup(conv);
      if (Date.now() - (this.checked.get(conv) ?? 0) >= this.reconcileEveryMs) await this.reconcile(conv);
      const body = await this.inQueue(conv, async () => {
        const { mls, impl } = await this.load();
        const state = this.groups.get(conv);
        if (!state) return undefined;
        const r = await mls.createApplicationMessage(state, packr.pack(inner), impl);
        this.groups.set(conv, r.newState);
        const data = mls.encodeMlsMessage({ privateMessage: r.privateMessage, wireformat: 'mls_private_message', version: 'mls10' });
        return { mls: 'app' as const, epoch: Number(state.groupContext.epoch), data, ...(media ? { media } : {}) };
      });
      if (!body) continue;
      try {
        return await this.host.sendMls(conv, body);
      } catch (err) {
        last = err;
        if (codeOf(err) !== 'epoch_stale') throw err;
        // Behind the group (its commits are in the inbox), or the group owes a membership change: catch up.
        const at = this.epoch(conv);
        await this.waitForEpoch(conv, at, 500);
        if (this.epoch(conv) === at) await this.reconcile(conv);
      }
    }
    throw last;
  }

  /** Makes the conversation's group if this device has none: a commit from epoch 0 adding every device. */
  private async ensureGroup(conv: string): Promise<void> {
    if (this.groups.has(conv)) return;
    if (this.removed.has(conv)) throw Object.assign(new Error('this device was removed from the conversation\'s encrypted group'), { code: 'forbidden' });
    const users = (await this.host.members(conv)).sort();
    const made = await this.inQueue(conv, async () => {
      if (this.groups.has(conv)) return undefined;
      const { mls, impl } = await this.load();
      const packages = await this.keys.claim(users);
      const others = new Set(packages.map((kp) => userOf(kp.leafNode.credential)));
      const missing = users.filter((u) => u !== this.host.user && !others.has(u));
      if (missing.length) throw Object.assign(new Error(`no encryption keys for ${missing.join(', ')}`), { code: 'no_keys' });
      const own = await this.keys.newPackage(false);
      const state = await mls.createGroup(enc.encode(conv), own, this.keys.take(own), [], impl);
      // A big group is made in several commits: this one's adds, then the rest by reconciling.
      this.spare.set(conv, packages.slice(ADDS_PER_COMMIT));
      const r = await mls.createCommit({ state, cipherSuite: impl }, {
        extraProposals: packages.slice(0, ADDS_PER_COMMIT).map((keyPackage) => ({ proposalType: 'add' as const, add: { keyPackage } })), ratchetTreeExtension: true,
      });
      return { state: r.newState, body: this.commitBody(mls, 0, this.usersOf(r.newState), r.commit, r.welcome) };
    });
    if (!made) return;
    if (!(await this.sendCommit(conv, made.body, made.state))) {
      this.spare.delete(conv);
      return;
    }
    this.checked.set(conv, Date.now());
    if (this.spare.get(conv)?.length) await this.reconcile(conv);
  }

  /**
   * Brings the group to what the server says its members are and what the directory says their devices
   * are: adds the devices missing (a member added, a new device), removes the leaves of users no longer
   * members and of devices signed out. One commit; refused (another member committed first), it is worked
   * out again on the newer epoch.
   */
  async reconcile(conv: string): Promise<void> {
    this.checked.set(conv, Date.now());
    // Commit after commit (a change of more than ADDS_PER_COMMIT devices takes several) until nothing is
    // left to change; three commits refused because another member's came first, and it is left to them.
    for (let refused = 0; refused < 3;) {
      if (!this.groups.has(conv)) return;
      const users = (await this.host.members(conv)).sort();
      const listed = ((await this.host.request({ t: 'keys.list', users })) as { devices: DeviceKeyInfo[] }).devices;
      const made = await this.inQueue(conv, async () => {
        const state = this.groups.get(conv);
        if (!state) return undefined;
        const { mls, impl } = await this.load();
        const removesOfStale: number[] = [];
        // A device whose identity changed (it re-registered) is a device to remove and add again.
        const identities = new Map(listed.map((d) => [`${d.user}/${d.device}`, hex(d.identity)]));
        const want = new Set(identities.keys());
        want.add(`${this.host.user}/${this.host.device}`);
        const have = new Map<string, number>();
        state.ratchetTree.forEach((n, i) => {
          if (i % 2 !== 0 || n?.nodeType !== 'leaf') return;
          const id = idOf(n.leaf.credential);
          const listedKey = identities.get(id);
          if (listedKey === undefined || listedKey === hex(n.leaf.signaturePublicKey) || id === `${this.host.user}/${this.host.device}`) have.set(id, i / 2);
          else removesOfStale.push(i / 2);
        });
        const removes = [...[...have].filter(([id]) => !want.has(id)).map(([, leaf]) => leaf), ...removesOfStale]
          .map((leaf) => ({ proposalType: 'remove' as const, remove: { removed: leaf } }));
        const missing = listed.filter((d) => !have.has(`${d.user}/${d.device}`)).slice(0, ADDS_PER_COMMIT);
        const spare = this.spare.get(conv) ?? [];
        this.spare.delete(conv);
        const fromSpare = spare.filter((kp) => missing.some((d) => idOf(kp.leafNode.credential) === `${d.user}/${d.device}`));
        const toClaim = missing.filter((d) => !fromSpare.some((kp) => idOf(kp.leafNode.credential) === `${d.user}/${d.device}`));
        const claimed = toClaim.length ? await this.keys.claim([...new Set(toClaim.map((d) => d.user))], toClaim.map((d) => d.device)) : [];
        const unused = spare.filter((kp) => !fromSpare.includes(kp));
        if (unused.length) this.spare.set(conv, unused);
        const adds = [...fromSpare, ...claimed].map((keyPackage) => ({ proposalType: 'add' as const, add: { keyPackage } }));
        const after = new Set([...have.keys()].filter((id) => want.has(id)).map((id) => id.split('/')[0]!));
        for (const a of adds) after.add(userOf(a.add.keyPackage.leafNode.credential));
        const declared = [...(this.usersOf(state))].sort().join();
        if (!removes.length && !adds.length && declared === [...after].sort().join()) return undefined;
        const r = await mls.createCommit({ state, cipherSuite: impl }, { extraProposals: [...removes, ...adds], ratchetTreeExtension: true });
        return { state: r.newState, body: this.commitBody(mls, Number(state.groupContext.epoch), [...after].sort(), r.commit, r.welcome) };
      });
      if (!made) return;
      if (!(await this.sendCommit(conv, made.body, made.state))) refused++;
    }
  }

  /**
   * Rotates this device's keys in the conversation's group: an empty commit with a fresh path (new leaf
   * and path secrets, a new epoch), so a key that leaked opens nothing sent after it (post-compromise
   * security). Refused because another commit came first, it is done again on the newer epoch.
   */
  async rotate(conv: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const made = await this.inQueue(conv, async () => {
        const state = this.groups.get(conv);
        if (!state) return undefined;
        const { mls, impl } = await this.load();
        const r = await mls.createCommit({ state, cipherSuite: impl }, { ratchetTreeExtension: true });
        return { state: r.newState, body: this.commitBody(mls, Number(state.groupContext.epoch), this.usersOf(r.newState), r.commit, r.welcome) };
      });
      if (!made || await this.sendCommit(conv, made.body, made.state)) return;
    }
  }

  /** A new last-resort KeyPackage in the directory (the old one may have been handed out many times). */
  async rotateLastResort(): Promise<void> {
    await this.start();
    await this.keys.rotateLastResort();
  }

  /** Sends a commit; its new state is this device's once the server accepted it. False: another came first. */
  private async sendCommit(conv: string, body: MlsBody & { mls: 'commit' }, next: ClientState): Promise<boolean> {
    try {
      await this.host.sendMls(conv, body);
    } catch (err) {
      if (codeOf(err) !== 'epoch_conflict') throw err;
      // The winner's commit (or, for a new group, its Welcome) is on its way through the inbox.
      await this.waitForEpoch(conv, this.epoch(conv), WAIT_MS);
      return false;
    }
    await this.inQueue(conv, async () => {
      const cur = this.groups.get(conv);
      if (!cur || Number(cur.groupContext.epoch) === body.epoch) {
        this.groups.set(conv, next);
        this.wake(conv);
        this.host.changed(conv, Number(next.groupContext.epoch));
      }
    });
    return true;
  }

  private commitBody(mls: Mls, epoch: number, users: string[], commit: MLSMessage, welcome: Welcome | undefined): MlsBody & { mls: 'commit' } {
    return {
      mls: 'commit', epoch, users, data: mls.encodeMlsMessage(commit),
      ...(welcome && welcome.secrets.length ? { welcome: mls.encodeMlsMessage({ welcome, wireformat: 'mls_welcome', version: 'mls10' }) } : {}),
    };
  }

  // ---- receiving ----

  /** An `mls` message from the inbox, in the conversation's order. */
  receive(m: Message, ptr: number): Promise<void> {
    return this.inQueue(m.conv, () => this.handle(m, ptr).catch((err: unknown) => this.host.undecryptable(m, String((err as Error)?.message ?? err))));
  }

  private async handle(m: Message, ptr: number): Promise<void> {
    await this.start(); // its KeyPackages exist before any Welcome is tried
    const body = m.body as MlsBody;
    const { mls, impl } = await this.load();
    const state = this.groups.get(m.conv);
    const at = state ? Number(state.groupContext.epoch) : undefined;
    if (body.mls === 'commit') {
      if (state && at === body.epoch) {
        const msg = mls.decodeMlsMessage(body.data, 0)?.[0];
        if (!msg || (msg.wireformat !== 'mls_private_message' && msg.wireformat !== 'mls_public_message')) throw new Error('not an MLS handshake message');
        const r = await mls.processMessage(msg, state, mls.emptyPskIndex, mls.acceptAll, impl);
        if (r.newState.groupActiveState.kind === 'removedFromGroup') {
          this.groups.delete(m.conv);
          this.removed.set(m.conv, r.newState);
        } else {
          this.groups.set(m.conv, r.newState);
          // The server fences by the users a commit declares; a commit whose tree says otherwise (a member
          // kept in that the admin removed) is corrected by this device's own commit.
          if (this.usersOf(r.newState).join() !== [...body.users].sort().join()) {
            void this.reconcile(m.conv).catch(() => undefined);
          }
        }
        this.wake(m.conv);
        this.host.changed(m.conv, Number(r.newState.groupContext.epoch));
        return;
      }
      if (body.welcome && (at === undefined || at <= body.epoch)) await this.join(m.conv, body.welcome);
      return; // a commit of an epoch this device never had (it joined later): nothing to apply
    }
    if (body.mls !== 'app') return;
    if (!state) throw new Error('not a member of this conversation\'s encrypted group');
    const { inner, next } = await this.open(state, body);
    this.groups.set(m.conv, next);
    const out: DecryptedMessage = { ...m, kind: inner.kind, e2e: true };
    if (inner.body !== undefined) out.body = inner.body; else delete out.body;
    if (inner.reply !== undefined) out.reply = inner.reply;
    if (inner.target !== undefined) out.target = inner.target;
    this.host.deliver(out, ptr);
  }

  private async open(state: ClientState, body: MlsBody): Promise<{ inner: InnerMessage; next: ClientState }> {
    const { mls, impl } = await this.load();
    const msg = mls.decodeMlsMessage(body.data, 0)?.[0];
    if (!msg || msg.wireformat !== 'mls_private_message') throw new Error('not an MLS application message');
    const r = await mls.processMessage(msg, state, mls.emptyPskIndex, mls.acceptAll, impl);
    if (r.kind !== 'applicationMessage') throw new Error('not an application message');
    return { inner: packr.unpack(r.message) as InnerMessage, next: r.newState };
  }

  /**
   * Tries to open an encrypted message with the state this device holds for its conversation (its group's,
   * or the last one it had before it was removed), changing nothing: what a removed member could read.
   */
  async decrypt(m: Message): Promise<InnerMessage> {
    const state = this.groups.get(m.conv) ?? this.removed.get(m.conv);
    if (!state) throw new Error('no state for this conversation');
    return (await this.open(state, m.body as MlsBody)).inner;
  }

  /** Runs `fn` after the conversation's pending work (so plaintext messages keep their place among decrypted ones). */
  after(conv: string, fn: () => void): void {
    void this.inQueue(conv, async () => fn());
  }

  /** The conversations whose group this device is in. */
  conversations(): string[] {
    return [...this.groups.keys()];
  }

  /** A Welcome: this device joins if one of its KeyPackages is among those it was made for. */
  private async join(conv: string, welcomeBytes: Uint8Array): Promise<void> {
    const { mls, impl } = await this.load();
    const msg = mls.decodeMlsMessage(welcomeBytes, 0)?.[0];
    if (!msg || msg.wireformat !== 'mls_welcome') throw new Error('not an MLS Welcome');
    for (const [key, p] of this.keys.candidates()) {
      let state: ClientState;
      try {
        state = await mls.joinGroup(msg.welcome, p.pub, p.priv, mls.emptyPskIndex, impl);
      } catch {
        continue; // made for another device
      }
      this.keys.used(key);
      this.groups.set(conv, state);
      this.removed.delete(conv);
      this.wake(conv);
      this.host.changed(conv, Number(state.groupContext.epoch));
      void this.keys.replenish().catch(() => undefined);
      return;
    }
  }

  // ---- safety numbers ----

  /** The safety number of this user and `other`, over both users' device identity keys in the directory. */
  async safetyNumber(other: string): Promise<string> {
    const users = [this.host.user, other];
    const { devices } = (await this.host.request({ t: 'keys.list', users })) as { devices: DeviceKeyInfo[] };
    const keys = new Map<string, Uint8Array[]>(users.map((u) => [u, []]));
    for (const d of devices) keys.get(d.user)?.push(d.identity);
    return safetyNumber(keys);
  }

  // ---- plumbing ----

  private async load(): Promise<MlsLoaded> {
    return (this.lib ??= await loadMls());
  }

  private inQueue<T>(conv: string, run: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(conv) ?? Promise.resolve();
    const next = prev.then(run, run);
    const settled = next.then(() => undefined, () => undefined);
    this.queues.set(conv, settled);
    void settled.then(() => { if (this.queues.get(conv) === settled) this.queues.delete(conv); });
    return next;
  }

  private wake(conv: string): void {
    const ws = this.waiters.get(conv);
    this.waiters.delete(conv);
    for (const w of ws ?? []) w();
  }

  /** Resolves once the conversation's group is past `epoch` (or joined), or after `ms`. */
  private waitForEpoch(conv: string, epoch: number | undefined, ms: number): Promise<void> {
    if (this.epoch(conv) !== epoch) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() { clearTimeout(timer); resolve(); }
      let set = this.waiters.get(conv);
      if (!set) this.waiters.set(conv, (set = new Set()));
      set.add(done);
    });
  }

  private leafIds(s: ClientState): string[] {
    const out: string[] = [];
    s.ratchetTree.forEach((n, i) => { if (i % 2 === 0 && n?.nodeType === 'leaf') out.push(idOf(n.leaf.credential)); });
    return out;
  }

  private usersOf(s: ClientState): string[] {
    return [...new Set(this.leafIds(s).map((id) => id.split('/')[0]!))].sort();
  }
}

interface SavedState extends SavedKeys {
  v: number;
  groups: [string, Uint8Array][];
  removed: [string, Uint8Array][];
}

type Credential = KeyPackage['leafNode']['credential'];
const idOf = (c: Credential): string => (c.credentialType === 'basic' ? dec.decode(c.identity) : '');
const userOf = (c: Credential): string => idOf(c).split('/')[0]!;
