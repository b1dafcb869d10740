/** Close codes the node uses on client sockets (docs/protocol.md, "Close codes"). */
export const CloseCodes = { replaced: 4001, restart: 1012, unacked: 4009, signedOut: 4401 } as const;
