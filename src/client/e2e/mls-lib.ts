import type * as MlsLib from 'ts-mls' with { 'resolution-mode': 'import' };
import type * as MlsConfig from 'ts-mls/clientConfig.js' with { 'resolution-mode': 'import' };

/** ts-mls is ESM only and this package is CommonJS: it is loaded once, by a dynamic import (bundlers follow it). */
export type Mls = typeof MlsLib;
export type ClientState = MlsLib.ClientState;
export type CiphersuiteImpl = MlsLib.CiphersuiteImpl;
export type KeyPackage = MlsLib.KeyPackage;
export type PrivateKeyPackage = MlsLib.PrivateKeyPackage;
export type Welcome = MlsLib.Welcome;
export type MLSMessage = MlsLib.MLSMessage;

/** The one cipher suite Parley clients use (docs/architecture.md, "End-to-end encryption"). */
export const SUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519' as const;

export type ClientConfig = MlsConfig.ClientConfig;
/** The library, the suite, and the client configuration a restored group state runs with (ts-mls's default). */
export interface MlsLoaded { mls: Mls; impl: CiphersuiteImpl; config: ClientConfig }
let loaded: Promise<MlsLoaded> | undefined;

export function loadMls(): Promise<MlsLoaded> {
  return (loaded ??= Promise.all([import('ts-mls'), import('ts-mls/clientConfig.js')]).then(async ([mls, cfg]) => ({
    mls, impl: await mls.getCiphersuiteImpl(mls.getCiphersuiteFromName(SUITE)), config: cfg.defaultClientConfig,
  })));
}
