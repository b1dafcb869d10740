import type { Limits } from './frames.js';

/** Defaults of every limit a client can hit; docs/protocol.md lists them, the welcome frame repeats them. */
export const DEFAULT_LIMITS: Limits = {
  /** Largest WebSocket frame the node reads; a larger one closes the socket with 1009 (uWebSockets). */
  maxFrameBytes: 64 * 1024,
  /** Largest encoded message body (plaintext map or ciphertext bytes). */
  maxBodyBytes: 32 * 1024,
  /** Longest text of a plaintext text message or caption. */
  maxTextChars: 8192,
  /** Most messages one history request returns. */
  historyPageMax: 500,
  maxGroupMembers: 1024,
  /** Largest media upload. */
  maxMediaBytes: 64 * 1024 * 1024,
};

/** Users one presence.sub / presence.unsub frame may name. */
export const PRESENCE_USERS_PER_FRAME = 256;
