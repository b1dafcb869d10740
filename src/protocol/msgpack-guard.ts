import { ParleyError } from './errors.js';

/**
 * Deepest nesting of maps and lists a client frame may have: the frame, its body and the body's own
 * nesting (MAX_BODY_DEPTH) with room to spare.
 */
export const MAX_FRAME_DEPTH = 40;

/**
 * Checks a client's msgpack frame before it is decoded, in one pass over its bytes. msgpackr decodes
 * extensions whatever the decoder's options: structured-clone references (ext 0x70/0x69), record
 * definitions (fixext 0x72), Sets, typed arrays, dates. A reference lets a 300-byte frame stand for a graph
 * whose tree is exponentially large, so any walk or re-encode of it freezes the node. Parley's frames use
 * none of them, so every extension is refused; without them each decoded value costs at least one byte of
 * the frame, and the work of everything after decoding is bounded by the frame's size.
 *
 * Also refused: map keys that aren't strings, nesting deeper than MAX_FRAME_DEPTH (the decoder recurses), the reserved byte 0xc1,
 * trailing bytes, and lengths that run past the end. Pure: the bytes in, a throw or nothing out.
 */
export function checkMsgpackFrame(b: Uint8Array): void {
  const end = b.length;
  let pos = 0;
  // Values still to read at each open level (a map's keys and values both count), and whether it is a map;
  // the first level is the frame itself, so the stack holds one more than the containers open.
  const left: number[] = [1];
  const isMap: boolean[] = [false];
  while (left.length) {
    const top = left.length - 1;
    if (left[top] === 0) { left.pop(); isMap.pop(); continue; }
    const key = isMap[top] && left[top]! % 2 === 0;
    left[top]!--;
    if (pos >= end) refuse('frame ends inside a value');
    const t = b[pos++]!;
    // Keys are strings: a key of another type decodes to a longer string (false → "false").
    if (key && !((t >= 0xa0 && t <= 0xbf) || t === 0xd9 || t === 0xda || t === 0xdb)) refuse('map keys must be strings');
    let skip = 0;
    let items = -1; // elements of a container that opens here
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) { /* fixint, nil, bool */ }
    else if (t <= 0x8f) items = (t & 0x0f) * 2;
    else if (t <= 0x9f) items = t & 0x0f;
    else if (t <= 0xbf) skip = t & 0x1f;
    else switch (t) {
      case 0xc4: case 0xd9: skip = u(b, pos, 1); pos += 1; break; // bin8, str8
      case 0xc5: case 0xda: skip = u(b, pos, 2); pos += 2; break;
      case 0xc6: case 0xdb: skip = u(b, pos, 4); pos += 4; break;
      case 0xca: skip = 4; break; // float32
      case 0xcb: skip = 8; break;
      case 0xcc: case 0xd0: skip = 1; break; // (u)int8
      case 0xcd: case 0xd1: skip = 2; break;
      case 0xce: case 0xd2: skip = 4; break;
      case 0xcf: case 0xd3: skip = 8; break;
      case 0xdc: items = u(b, pos, 2); pos += 2; break; // array16
      case 0xdd: items = u(b, pos, 4); pos += 4; break;
      case 0xde: items = u(b, pos, 2) * 2; pos += 2; break; // map16
      case 0xdf: items = u(b, pos, 4) * 2; pos += 4; break;
      case 0xc1: refuse('frame uses the reserved byte 0xc1');
      // 0xc7–0xc9 and 0xd4–0xd8: extensions (references, records, sets, dates, …).
      default: refuse('frame uses a msgpack extension; Parley frames are plain maps, lists, strings, numbers and bytes');
    }
    if (pos > end) refuse('frame ends inside a value');
    if (skip) {
      pos += skip;
      if (pos > end) refuse('frame ends inside a value');
    }
    if (items > 0) {
      // Each element takes at least a byte: a length past the end is a lie, caught before any work.
      if (items > end - pos) refuse('a list or map is longer than the frame');
      if (left.length > MAX_FRAME_DEPTH) refuse(`frame nests deeper than ${MAX_FRAME_DEPTH} levels`);
      left.push(items);
      isMap.push(t <= 0x8f || t === 0xde || t === 0xdf);
    }
  }
  if (pos !== end) refuse('frame has bytes after its value');
}

const u = (b: Uint8Array, at: number, n: 1 | 2 | 4): number => {
  if (at + n > b.length) return Infinity; // caught by the caller's bounds check
  return n === 1 ? b[at]! : n === 2 ? (b[at]! << 8) | b[at + 1]! : b[at]! * 0x1000000 + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
};

function refuse(message: string): never {
  throw new ParleyError('bad_frame', message);
}
