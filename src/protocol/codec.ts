import { Packr } from 'msgpackr';
import type { ClientFrame, Message, ServerFrame } from './frames.js';
import { ParleyError } from './errors.js';
import { checkMsgpackFrame } from './msgpack-guard.js';

/**
 * Frames are msgpack maps on binary WebSocket frames, or JSON objects on text frames.
 * Records/extensions are off so any msgpack library can read what we write. Decoded bytes are copies
 * (`copyBuffers`): a frame's memory belongs to uWebSockets only for the duration of the callback, and a
 * body is kept far longer (the conversation packs it after the handler returned).
 */
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number', mapsAsObjects: true, copyBuffers: true });

export type WireFormat = 'msgpack' | 'json';

export const pack = (value: unknown): Uint8Array => packr.pack(value);
export const unpack = (bytes: Uint8Array): unknown => packr.unpack(bytes);

/**
 * Parses one frame from a client into a plain value; structure is checked by validate.ts. A msgpack frame
 * is scanned first (msgpack-guard.ts): no extensions, bounded depth, so decoding it costs what its bytes do.
 */
export function decodeFrame(data: ArrayBuffer | Uint8Array, isBinary: boolean): unknown {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  if (isBinary) checkMsgpackFrame(bytes);
  try {
    return isBinary ? packr.unpack(bytes) : JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), jsonReviver);
  } catch {
    throw new ParleyError('bad_frame', isBinary ? 'frame is not valid msgpack' : 'frame is not valid JSON');
  }
}

export function encodeFrame(frame: ServerFrame | ClientFrame, format: WireFormat): Uint8Array | string {
  return format === 'msgpack' ? packr.pack(frame) : JSON.stringify(frame, jsonReplacer);
}

/**
 * A delivery frame built around a message packed once per fan-out: the msgpack map header and the
 * pointer are written here and the packed message is spliced in, so N devices cost N small copies.
 */
export function encodeDelivery(ptr: number, packedMessage: Uint8Array, format: WireFormat): Uint8Array | string {
  if (format === 'json') {
    return `{"t":"msg","ptr":${ptr},"m":${JSON.stringify(packr.unpack(packedMessage) as Message, jsonReplacer)}}`;
  }
  const ptrBytes = ptr < 0x80 ? 1 : ptr < 0x100 ? 2 : ptr < 0x10000 ? 3 : ptr <= 0xffffffff ? 5 : 9;
  const out = Buffer.allocUnsafe(DELIVERY_PREFIX.length + ptrBytes + DELIVERY_M.length + packedMessage.length);
  out.set(DELIVERY_PREFIX, 0);
  let o = DELIVERY_PREFIX.length;
  // A non-negative integer as the packer writes it (the smallest uint, a float64 past 32 bits).
  if (ptrBytes === 1) out[o] = ptr;
  else if (ptrBytes === 2) { out[o] = 0xcc; out[o + 1] = ptr; }
  else if (ptrBytes === 3) { out[o] = 0xcd; out.writeUInt16BE(ptr, o + 1); }
  else if (ptrBytes === 5) { out[o] = 0xce; out.writeUInt32BE(ptr, o + 1); }
  else { out[o] = 0xcb; out.writeDoubleBE(ptr, o + 1); }
  o += ptrBytes;
  out.set(DELIVERY_M, o);
  out.set(packedMessage, o + DELIVERY_M.length);
  return out;
}
// fixmap(3) "t" "msg" "ptr" … "m" …
const DELIVERY_PREFIX = Uint8Array.from([0x83, 0xa1, 0x74, 0xa3, 0x6d, 0x73, 0x67, 0xa3, 0x70, 0x74, 0x72]);
const DELIVERY_M = Uint8Array.from([0xa1, 0x6d]);

/** JSON has no bytes: binary bodies travel as {"$bin": base64}. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bin: Buffer.from(value).toString('base64') };
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return { $bin: Buffer.from((value as { data: number[] }).data).toString('base64') };
  }
  return value;
}
function jsonReviver(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && typeof (value as { $bin?: unknown }).$bin === 'string' && Object.keys(value).length === 1) {
    return new Uint8Array(Buffer.from((value as { $bin: string }).$bin, 'base64'));
  }
  return value;
}
