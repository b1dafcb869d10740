/** node:crypto for the browser bundle: the one function the SDK's imports touch (ids.ts's newId). */
export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}
