import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { NODE_FLAGS } from '../../src/node-flags.js';

const ROOT = resolve(__dirname, '../../..');

// The flags can't be set from inside the process, so every way of starting a node must pass them.
t.test('every script that starts a node passes the node flags', async (t) => {
  const scripts = (JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const launches: [string, string][] = [
    ['npm start', scripts.start!],
    ['npm run node', scripts.node!],
    ['scripts/cluster', readFileSync(resolve(ROOT, 'scripts/cluster'), 'utf8').split('\n').find((l) => l.includes('dist/src/main.js') && l.includes('setsid'))!],
  ];
  for (const [name, line] of launches) {
    t.ok(line, `${name} starts a node`);
    for (const flag of NODE_FLAGS) t.ok(line.includes(` ${flag} `), `${name}: ${flag}`);
  }
});
