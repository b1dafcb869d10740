import type { DeviceKeyInfo } from '../../protocol/frames.js';
import type { KeyPackage, MlsLoaded, PrivateKeyPackage } from './mls-lib.js';

/** One-time KeyPackages a device uploads at once, and the count under which it uploads more. */
const ONE_TIME_BATCH = 20;
const REPLENISH_BELOW = 5;

export interface KeyHost {
  readonly user: string;
  readonly device: string;
  request(frame: Record<string, unknown>): Promise<unknown>;
}
interface Held { pub: KeyPackage; priv: PrivateKeyPackage; lastResort: boolean }
/** The keys part of a saved device state. */
export interface SavedKeys { identity: { signKey: Uint8Array; publicKey: Uint8Array }; next: number; packages: { pub: Uint8Array; priv: PrivateKeyPackage; lastResort: boolean }[] }

const enc = new TextEncoder();
const dec = new TextDecoder();
export const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/**
 * A device's own keys and its side of the key directory: its identity (the MLS signature key pair, for
 * every KeyPackage and leaf it makes), the private parts of the KeyPackages it published and has not used,
 * the uploads, and claims of other devices' packages, each checked against what the directory lists.
 */
export class DeviceKeys {
  private identity?: { signKey: Uint8Array; publicKey: Uint8Array };
  /** By the hex of their init key. */
  private readonly held = new Map<string, Held>();
  private ids = 0;

  constructor(private readonly host: KeyHost, private readonly lib: () => Promise<MlsLoaded>) {}

  /** Makes the identity, a last resort and one-time packages, and publishes them. */
  async publish(): Promise<void> {
    const { impl } = await this.lib();
    this.identity = await impl.signature.keygen();
    const lastResort = await this.newPackage(true);
    const oneTime = await this.batch();
    await this.host.request({ t: 'keys.publish', identity: this.identity.publicKey, lastResort: await this.encode(lastResort), oneTime });
  }

  /** A KeyPackage of this device, its private part kept (a group this device makes is started with one). */
  async newPackage(lastResort: boolean): Promise<KeyPackage> {
    const { mls, impl } = await this.lib();
    const cred = { credentialType: 'basic' as const, identity: enc.encode(`${this.host.user}/${this.host.device}`) };
    const kp = await mls.generateKeyPackageWithKey(cred, mls.defaultCapabilities(), mls.defaultLifetime, [], this.identity!, impl);
    this.held.set(hex(kp.publicPackage.initKey), { pub: kp.publicPackage, priv: kp.privatePackage, lastResort });
    return kp.publicPackage;
  }

  /** Takes a package out of those held (used to start a group), with its private part. */
  take(kp: KeyPackage): PrivateKeyPackage {
    const key = hex(kp.initKey);
    const h = this.held.get(key)!;
    this.held.delete(key);
    return h.priv;
  }

  /** The packages a Welcome may have been made for; `used` forgets a one-time one once it joined a group. */
  candidates(): [string, Held][] {
    return [...this.held];
  }

  used(key: string): void {
    if (!this.held.get(key)?.lastResort) this.held.delete(key);
  }

  /** Uploads more one-time packages when few are left (after a Welcome used one). */
  async replenish(): Promise<void> {
    const { count } = (await this.host.request({ t: 'keys.count' })) as { count: number };
    if (count >= REPLENISH_BELOW) return;
    await this.host.request({ t: 'keys.publish', oneTime: await this.batch() });
  }

  /** A new last resort in the directory; the old one's private keys stay, for Welcomes made from a copy claimed before. */
  async rotateLastResort(): Promise<void> {
    await this.host.request({ t: 'keys.publish', lastResort: await this.encode(await this.newPackage(true)) });
  }

  /**
   * KeyPackages claimed from the directory, each checked against what the directory says it is: its
   * credential names that user and device, and it is signed by the identity key the directory lists.
   */
  async claim(users: string[], devices?: string[]): Promise<KeyPackage[]> {
    if (devices && devices.length === 0) return [];
    const { mls } = await this.lib();
    const { devices: claimed } = (await this.host.request({ t: 'keys.claim', users, ...(devices ? { devices } : {}) })) as { devices: DeviceKeyInfo[] };
    const out: KeyPackage[] = [];
    for (const d of claimed) {
      const decoded = mls.decodeMlsMessage(d.keyPackage!, 0)?.[0];
      if (!decoded || decoded.wireformat !== 'mls_key_package') continue;
      const leaf = decoded.keyPackage.leafNode;
      const named = leaf.credential.credentialType === 'basic' ? dec.decode(leaf.credential.identity) : '';
      if (named !== `${d.user}/${d.device}` || hex(leaf.signaturePublicKey) !== hex(d.identity)) continue; // not the device it claims to be
      out.push(decoded.keyPackage);
    }
    return out;
  }

  async save(): Promise<SavedKeys> {
    const packages = await Promise.all([...this.held.values()].map(async (p) => ({ pub: await this.encode(p.pub), priv: p.priv, lastResort: p.lastResort })));
    return { identity: this.identity!, next: this.ids, packages };
  }

  async restore(saved: SavedKeys): Promise<void> {
    const { mls } = await this.lib();
    this.identity = saved.identity;
    this.ids = saved.next;
    for (const p of saved.packages) {
      const d = mls.decodeMlsMessage(p.pub, 0)?.[0];
      if (d?.wireformat !== 'mls_key_package') throw new Error('a saved KeyPackage does not decode');
      this.held.set(hex(d.keyPackage.initKey), { pub: d.keyPackage, priv: p.priv, lastResort: p.lastResort });
    }
  }

  private async batch(): Promise<{ id: string; keyPackage: Uint8Array }[]> {
    const made = await Promise.all(Array.from({ length: ONE_TIME_BATCH }, () => this.newPackage(false)));
    return Promise.all(made.map(async (kp) => ({ id: `p${this.ids++}${Date.now().toString(36)}`, keyPackage: await this.encode(kp) })));
  }

  private async encode(kp: KeyPackage): Promise<Uint8Array> {
    const { mls } = await this.lib();
    return mls.encodeMlsMessage({ keyPackage: kp, wireformat: 'mls_key_package', version: 'mls10' });
  }
}
