/**
 * The V8 flags a node runs with (package.json's `start` and `node`, scripts/cluster, the bench, the tests'
 * nodes; test/unit/node-flags.test.ts holds the scripts to this list). They can't be set from inside the
 * process: V8 sizes its heap before any code runs.
 *
 * `--max-semi-space-size=64` (MiB; V8's default lets the young generation grow to 16): every message
 * allocates short-lived frames, promises and envelopes, and with a larger nursery fewer of them survive a
 * scavenge into the old generation. Measured (`npm run bench -- relay --targets parley --rates 10000
 * --parley-env NODE_OPTIONS=--max-semi-space-size=N`, two rounds): saturation 16,226–16,819 → 18,954–19,035
 * msgs/s, server CPU per message there 61–62 → 53–54 µs; 32 gave half of that and 128 no more than 64.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
