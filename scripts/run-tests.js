#!/usr/bin/env node
// The README's test command (after `npm run build`): brings up the services the tests need, runs every
// compiled test with tap, tears the services down, and ends with one line: `N passed, N failed`.
// PARLEY_CQL_CONTACT=host:port points the tests at an existing CQL cluster instead of starting one.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const { readdirSync, statSync } = require('node:fs');
const { join, resolve } = require('node:path');

const root = resolve(__dirname, '..');
const args = process.argv.slice(2);
const files = args.length ? args : findTests(join(root, 'dist', 'test'));

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const needsCql = files.some((f) => /scylla|cql/.test(f));
let startedCassandra = false;
if (needsCql && !process.env.PARLEY_CQL_CONTACT) {
  const r = spawnSync(join(root, 'scripts', 'cassandra'), ['start'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) console.error('scripts/cassandra start failed: the CQL tests will fail, not be skipped');
  else startedCassandra = true;
  process.env.PARLEY_CQL_CONTACT = process.env.PARLEY_CQL_CONTACT || `127.0.0.1:${process.env.PARLEY_CQL_PORT || 9042}`;
}

const tap = spawn(process.execPath, [join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs'), '--reporter=tap', '--jobs=2', ...files], {
  cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: process.env,
});
let summary;
let tail = '';
tap.stdout.on('data', (d) => {
  process.stdout.write(d);
  tail = (tail + d.toString()).slice(-4000);
});
tap.on('exit', (code) => {
  const m = /# \{ total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?(?:, todo: \d+)?(?:, skip: (\d+))?/.exec(tail);
  if (startedCassandra && !process.env.PARLEY_KEEP_CASSANDRA) spawnSync(join(root, 'scripts', 'cassandra'), ['stop'], { stdio: 'inherit' });
  const pass = m ? Number(m[2] || 0) : 0;
  const fail = m ? Number(m[3] || 0) : code === 0 ? 0 : 1;
  const skip = m && m[4] ? `, ${m[4]} skipped` : '';
  summary = `${pass} passed, ${fail} failed${skip}`;
  console.log(summary);
  process.exit(code === 0 && fail === 0 ? 0 : 1);
});
