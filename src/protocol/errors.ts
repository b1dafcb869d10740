/**
 * Stable error codes. Clients switch on `code`; `message` is for people.
 * `retryable` tells a client whether sending the same request again (same client id) may succeed.
 */
export const ErrorCodes = {
  bad_frame: { retryable: false, status: 400 },
  unknown_type: { retryable: false, status: 400 },
  invalid: { retryable: false, status: 400 },
  unknown_kind: { retryable: false, status: 400 },
  too_large: { retryable: false, status: 413 },
  unauthorized: { retryable: false, status: 401 },
  /** The token is authentic but its device was signed out: sign in again (a new device). */
  signed_out: { retryable: false, status: 401 },
  /** A device signed in too recently to sign out older ones; `retryAfterMs` says when it may. */
  device_too_new: { retryable: false, status: 403 },
  forbidden: { retryable: false, status: 403 },
  not_found: { retryable: false, status: 404 },
  conflict: { retryable: false, status: 409 },
  rate_limited: { retryable: true, status: 429 },
  otp_invalid: { retryable: false, status: 401 },
  otp_expired: { retryable: false, status: 401 },
  otp_locked: { retryable: false, status: 429 },
  unsupported_media_type: { retryable: false, status: 415 },
  range_not_satisfiable: { retryable: false, status: 416 },
  /** An upload that fell behind the minimum rate: cut off, nothing kept. */
  request_timeout: { retryable: true, status: 408 },
  over_capacity: { retryable: true, status: 503 },
  store_unavailable: { retryable: true, status: 503 },
  /**
   * The entity that took the request is no longer its owner (another activation, on this node or another,
   * claimed it in the store): nothing was stored; sent again, the request reaches the new owner.
   */
  stale_owner: { retryable: true, status: 503 },
  timeout: { retryable: true, status: 504 },
  /** In a cluster: this node is cut off from the others and serves nothing: connect to another node. */
  unavailable: { retryable: true, status: 503 },
  /** In a cluster: the entity's shard is moving between nodes (a takeover or a handover); nothing was done. */
  moving: { retryable: true, status: 503 },
  internal: { retryable: true, status: 500 },
  /** A commit from an MLS epoch the conversation has left (another member's commit for it was accepted first). */
  epoch_conflict: { retryable: false, status: 409 },
  /**
   * An encrypted message from an epoch other than the conversation's, or while the group's MLS membership
   * is owed a change its admin made: process the commits waiting (or commit the change), then send again.
   */
  epoch_stale: { retryable: true, status: 409 },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** An error meant for the client: it crosses actors and the wire as plain data. */
export class ParleyError extends Error {
  /** `retryAfterMs`: for a refusal that will pass later (a rate limit), how long to wait before trying again. */
  constructor(readonly code: ErrorCode, message: string, readonly retryAfterMs?: number) {
    super(message);
    this.name = 'ParleyError';
  }
  get retryable(): boolean {
    return ErrorCodes[this.code].retryable;
  }
  get status(): number {
    return ErrorCodes[this.code].status;
  }
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  retryAfterMs?: number;
}

/** Anything thrown becomes a client-safe body; unknown errors never leak their text. */
export function toErrorBody(err: unknown): ErrorBody {
  if (err instanceof ParleyError) {
    const body: ErrorBody = { code: err.code, message: err.message, retryable: err.retryable };
    if (err.retryAfterMs !== undefined) body.retryAfterMs = err.retryAfterMs;
    return body;
  }
  if (err instanceof Error && /timeout/i.test(err.message)) {
    return { code: 'timeout', message: 'the request timed out; send it again', retryable: true };
  }
  return { code: 'internal', message: 'internal error; send it again', retryable: true };
}

/** A rate-limit refusal: retryable, with the wait the limiter computed. */
export const rateLimited = (message: string, retryAfterMs: number): ParleyError =>
  new ParleyError('rate_limited', `${message}; try again in ${Math.ceil(retryAfterMs / 1000)} s`, retryAfterMs);

export const isErrorBody = (x: unknown): x is ErrorBody =>
  typeof x === 'object' && x !== null && typeof (x as ErrorBody).code === 'string' && typeof (x as ErrorBody).message === 'string';

/** The error frame answering a client request, echoing its rid and/or cid. */
export function errorFrame(ref: { rid?: string; cid?: string }, err: unknown) {
  return { t: 'error' as const, ...toErrorBody(err), ...(ref.rid ? { rid: ref.rid } : {}), ...(ref.cid ? { cid: ref.cid } : {}) };
}
