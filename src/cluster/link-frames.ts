import { Packr } from 'msgpackr';

/**
 * The frames of the node-to-node link (src/cluster/link-protocol.ts) and their msgpack codec. A frame is a
 * flat array `[LINK_VERSION, kind, from, finc, …]`, not a map: it is encoded per batch, and field names would
 * cost bytes and time on every one. `from` is the sending node, `finc` its incarnation; `tinc` is the
 * incarnation of the addressee the frame is meant for (data) or the incarnation being answered (ack, refuse).
 *
 *   data   [1, 0, from, finc, tinc, seq, items, ack, next, resend]
 *                                                       items[i] has seq `seq + i`; `ack` ≥ 0 piggybacks an
 *                                                       ack of the addressee's own stream (to incarnation
 *                                                       `finc` from `tinc`), -1 when none; `next` as in ack;
 *                                                       `resend` 1 when the items went before (ack at once)
 *   ack    [1, 1, from, finc, tinc, upTo, next]         "I have every item up to `upTo` of your stream `tinc`,
 *                                                       and (`next` > 0) items from `next` on, not between"
 *   hello  [1, 2, from, finc]                          "which incarnation are you?" (answered by an ack)
 *   refuse [1, 3, from, finc, tinc, why]               0 stale: that frame was for an earlier incarnation of
 *                                                       me (mine is `finc`); 1 gone: your incarnation `tinc`
 *                                                       was declared gone here, I won't hear it again
 */
export const LINK_VERSION = 1;

/** A node's name is one NATS subject token (its frames go to `parley.link.<name>`). */
export const NODE_NAME = /^[A-Za-z0-9_-]{1,128}$/;

/** Incarnations are positive safe integers that grow with each start (see `newIncarnation` in links.ts). */
export type Incarnation = number;

export type LinkFrame =
  | { k: 'data'; from: string; finc: Incarnation; tinc: Incarnation; seq: number; items: Uint8Array[]; ack: number; next: number; resend: boolean }
  | { k: 'ack'; from: string; finc: Incarnation; tinc: Incarnation; upTo: number; next: number }
  | { k: 'hello'; from: string; finc: Incarnation }
  | { k: 'refuse'; from: string; finc: Incarnation; tinc: Incarnation; why: RefuseReason };

export type RefuseReason = 'stale' | 'gone';

/** Thrown by `decodeLinkFrame`: the bytes are not a link frame this build reads. */
export class LinkDecodeError extends Error {
  override name = 'LinkDecodeError';
}

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number', mapsAsObjects: true });
const KINDS = ['data', 'ack', 'hello', 'refuse'] as const;
const WHY: readonly RefuseReason[] = ['stale', 'gone'];

export function encodeLinkFrame(f: LinkFrame): Uint8Array {
  switch (f.k) {
    case 'data': return packr.pack([LINK_VERSION, 0, f.from, f.finc, f.tinc, f.seq, f.items, f.ack, f.next, f.resend ? 1 : 0]);
    case 'ack': return packr.pack([LINK_VERSION, 1, f.from, f.finc, f.tinc, f.upTo, f.next]);
    case 'hello': return packr.pack([LINK_VERSION, 2, f.from, f.finc]);
    case 'refuse': return packr.pack([LINK_VERSION, 3, f.from, f.finc, f.tinc, WHY.indexOf(f.why)]);
  }
}

/**
 * Decodes and checks one frame. Items come back as views into `bytes` (no copy per item): a receiver that
 * keeps one past its delivery should copy it.
 */
export function decodeLinkFrame(bytes: Uint8Array): LinkFrame {
  let v: unknown;
  try {
    v = packr.unpack(bytes);
  } catch {
    throw new LinkDecodeError('not msgpack');
  }
  if (!Array.isArray(v) || v.length < 4) throw new LinkDecodeError('not a link frame');
  if (v[0] !== LINK_VERSION) throw new LinkDecodeError(`link version ${String(v[0])}; this node reads ${LINK_VERSION}`);
  const kind = KINDS[v[1] as number];
  const from = v[2] as unknown;
  const finc = v[3] as unknown;
  if (kind === undefined) throw new LinkDecodeError(`unknown link frame kind ${String(v[1])}`);
  if (typeof from !== 'string' || !NODE_NAME.test(from)) throw new LinkDecodeError(`${kind}: no sender`);
  if (!isInc(finc)) throw new LinkDecodeError(`${kind}: bad sender incarnation`);
  switch (kind) {
    case 'hello':
      return { k: 'hello', from, finc };
    case 'ack': {
      const [, , , , tinc, upTo, next] = v as unknown[];
      if (v.length !== 7 || !isInc(tinc) || !isCount(upTo) || !isCount(next)) throw new LinkDecodeError('ack: bad fields');
      return { k: 'ack', from, finc, tinc, upTo, next };
    }
    case 'refuse': {
      const [, , , , tinc, why] = v as unknown[];
      const reason = WHY[why as number];
      if (v.length !== 6 || !isInc(tinc) || reason === undefined) throw new LinkDecodeError('refuse: bad fields');
      return { k: 'refuse', from, finc, tinc, why: reason };
    }
    case 'data': {
      const [, , , , tinc, seq, items, ack, next, resend] = v as unknown[];
      if (v.length !== 10 || !isCount(next) || (resend !== 0 && resend !== 1) || !isInc(tinc) || !isCount(seq) || seq < 1 || !Array.isArray(items) || items.length === 0) {
        throw new LinkDecodeError('data: bad fields');
      }
      if (ack !== -1 && !isCount(ack)) throw new LinkDecodeError('data: bad ack');
      for (const it of items) if (!(it instanceof Uint8Array)) throw new LinkDecodeError('data: an item is not bytes');
      return { k: 'data', from, finc, tinc, seq, items: items as Uint8Array[], ack: ack as number, next, resend: resend === 1 };
    }
  }
}

const isInc = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
