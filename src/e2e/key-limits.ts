/** The key directory's limits (docs/protocol.md, "End-to-end encryption"). */
export const KEY_LIMITS = {
  /** One-time KeyPackages in one upload, and the most a device may hold. */
  oneTimePerUpload: 100,
  oneTimeHeld: 500,
  /** An MLS KeyPackage of the default suite is about 330 bytes; room for extensions and credentials. */
  keyPackageBytes: 4096,
  identityBytes: 256,
  /** Users named in one claim or list. */
  usersPerRequest: 64,
  /** Devices of one user a claim hands packages out for. */
  devicesPerUser: 16,
};
