import type * as MlsLib from 'ts-mls' with { 'resolution-mode': 'import' };

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

let loaded: Promise<{ mls: Mls; impl: CiphersuiteImpl }> | undefined;

export function loadMls(): Promise<{ mls: Mls; impl: CiphersuiteImpl }> {
  return (loaded ??= import('ts-mls').then(async (mls) => ({ mls, impl: await mls.getCiphersuiteImpl(mls.getCiphersuiteFromName(SUITE)) })));
}
