import { loadConfig } from './config.js';
import { startNode } from './node.js';
import { log } from './log.js';

/** `node dist/src/main.js`: one node, configured from the environment (see README). */
async function main(): Promise<void> {
  // Everything the node writes (LMDB files, media, the secret) is for its own user alone.
  process.umask(0o077);
  const cfg = loadConfig();
  const node = await startNode(cfg);
  // One machine-readable line on stdout: tests and the bench harness wait for it.
  process.stdout.write(`parley listening on ${node.scheme}://127.0.0.1:${node.port} node=${node.id} store=${node.store.kind} env=${cfg.env}\n`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log('info', 'shutting down', { signal });
    node.close().then(() => process.exit(0), () => process.exit(1));
  };
  // An escaped rejection is a bug to see in the logs, not a reason to drop every socket on this node.
  process.on('unhandledRejection', (err) => log('error', 'unhandled rejection', { error: (err as Error)?.stack ?? String(err) }));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // A new certificate and key without a restart (logged either way; a bad pair keeps the old one).
  // Without TLS, SIGHUP keeps its default: the node stops.
  if (node.scheme === 'https') process.on('SIGHUP', () => { if (!stopping) node.reloadTls(); });
}

main().catch((err) => {
  log('error', 'node failed to start', { error: (err as Error)?.stack ?? String(err) });
  process.exit(1);
});
