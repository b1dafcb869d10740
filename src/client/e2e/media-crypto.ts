/**
 * Media encrypted on the client (WebCrypto AES-256-GCM, a random key and IV per file): the server stores
 * only ciphertext (application/octet-stream); the key, IV and the ciphertext's SHA-256 travel inside the
 * encrypted message, so only its recipients can fetch and open the file, and a swapped file is detected.
 */
/** WebCrypto's types want bytes over a plain ArrayBuffer: a copy guarantees one. */
const own = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(b);

export interface MediaKey { key: Uint8Array; iv: Uint8Array; sha256: Uint8Array }

export async function encryptMedia(plain: Uint8Array): Promise<{ ciphertext: Uint8Array<ArrayBuffer>; media: MediaKey }> {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const k = await crypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt']);
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, k, own(plain)));
  const sha256 = new Uint8Array(await crypto.subtle.digest('SHA-256', ciphertext));
  return { ciphertext, media: { key, iv, sha256 } };
}

/** Throws if the bytes are not the file the message named (hash) or were altered (the GCM tag). */
export async function decryptMedia(ciphertext: Uint8Array, m: MediaKey): Promise<Uint8Array> {
  const sha = new Uint8Array(await crypto.subtle.digest('SHA-256', own(ciphertext)));
  if (sha.length !== m.sha256.length || sha.some((b, i) => b !== m.sha256[i])) throw new Error('the media is not the one the message named');
  const k = await crypto.subtle.importKey('raw', own(m.key), 'AES-GCM', false, ['decrypt']);
  return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: own(m.iv) }, k, own(ciphertext)));
}
