import { decodeSeam, encodeSeam, type SeamMessage } from '../messages/codec.js';

/**
 * The local adapters' check mode (PARLEY_SEAM_CHECK=1, on in the test suite): every message goes through the
 * seam codec as the cluster would send it, and the entity gets the decoded copy. A message that holds
 * something a node can't send (a function, a class instance, a field its schema doesn't allow) fails here,
 * on one node, instead of on the first day of the cluster.
 */
export const throughCodec = <M extends SeamMessage>(m: M): M => decodeSeam(encodeSeam(m)) as M;
