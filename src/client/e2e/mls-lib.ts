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

export type ClientConfig = MlsLib.ClientConfig;
/** The library, the suite, and the client configuration a restored group state runs with (ts-mls's default). */
export interface MlsLoaded { mls: Mls; impl: CiphersuiteImpl; config: ClientConfig }
let loaded: Promise<MlsLoaded> | undefined;

export function loadMls(): Promise<MlsLoaded> {
  return (loaded ??= import('ts-mls').then(async (mls) => ({
    mls, impl: await mls.getCiphersuiteImpl(mls.getCiphersuiteFromName(SUITE)), config: defaultConfig(mls),
  })));
}

/**
 * ts-mls's `defaultClientConfig`, from the parts its index exports: its own module is reachable only through
 * a subpath export, which a CI run once failed to resolve (ERR_PACKAGE_PATH_NOT_EXPORTED) under the test runner.
 */
function defaultConfig(mls: Mls): ClientConfig {
  return {
    keyRetentionConfig: mls.defaultKeyRetentionConfig,
    lifetimeConfig: mls.defaultLifetimeConfig,
    keyPackageEqualityConfig: mls.defaultKeyPackageEqualityConfig,
    paddingConfig: mls.defaultPaddingConfig,
    authService: mls.defaultAuthenticationService,
  };
}
