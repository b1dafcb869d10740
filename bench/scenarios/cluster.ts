import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Scenario } from './common.js';

/**
 * The relay over a local 3-node cluster. There is no cluster yet (it is its own issue): until a launcher
 * exists this scenario says so and measures nothing. When it lands, start it here (3 nodes on 127.0.0.1
 * with the Scylla store and NATS), spread the relay's users over the nodes' URLs so that most pairs cross
 * nodes, and reuse relayTarget's flow (scenarios/relay.ts) with one Parley session per node.
 */
export const CLUSTER_LAUNCHERS = ['dist/src/cluster/local-cluster.js', 'dist/src/cluster.js', 'scripts/cluster'];

export function clusterAvailable(root: string): boolean {
  return CLUSTER_LAUNCHERS.some((f) => existsSync(join(root, f)));
}

export const cluster: Scenario = {
  name: 'cluster',
  title: 'relay over a 3-node cluster',
  async run(ctx) {
    if (!clusterAvailable(ctx.root)) throw new Error('not available yet: needs the cluster issue');
    throw new Error(`a cluster launcher exists (${CLUSTER_LAUNCHERS.find((f) => existsSync(join(ctx.root, f)))}) but this harness does not drive it yet: wire it in bench/scenarios/cluster.ts`);
  },
};
