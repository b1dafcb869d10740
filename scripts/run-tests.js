#!/usr/bin/env node
// The README's test command (after `npm run build`): runs every compiled test with tap and ends with one
// line: `N passed, N failed` (`, N skipped` when some were).
//
// Tests that need a CQL server (a path matching /scylla|cql/, or a file that reads PARLEY_CQL_CONTACT or uses the CQL or cluster test helpers)
// run after the others, one file at a time: one of them restarts the server on purpose. Unless
// PARLEY_CQL_CONTACT=host:port names an existing server, the runner uses the one scripts/cassandra
// manages: one already running is used and left running; otherwise it starts one and stops it at the end
// (PARLEY_KEEP_CASSANDRA=1 keeps it). A server that can't be started makes the CQL tests fail, never skip.
//
// The browser tests (test/web/) run in the normal phase, with Debian's chromium: scripts/chromium installs it
// first when missing (apt-get, a minute or two once), so no test file's timeout is spent on the install.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const { readdirSync, readFileSync, statSync } = require('node:fs');
const { join, resolve } = require('node:path');

const root = resolve(__dirname, '..');
const cassandra = join(root, 'scripts', 'cassandra');
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

function needsCql(file) {
  if (/scylla|cql/i.test(file)) return true;
  try {
    // Or it starts nodes on the Scylla store through the CQL helpers (the cluster tests).
    return /PARLEY_CQL_CONTACT|helpers\/(cql|cluster)\.js/.test(readFileSync(resolve(root, file), 'utf8'));
  } catch {
    return false;
  }
}

const cqlFiles = files.filter(needsCql);
const browserFiles = files.filter((f) => /[\\/]test[\\/]web[\\/]/.test(resolve(root, f)));
const otherFiles = files.filter((f) => !cqlFiles.includes(f));

let ownCassandra = false;
let tapChild;
let stopping = false;

/** Makes sure a CQL server answers; returns false when none could be started. */
function ensureCassandra() {
  if (process.env.PARLEY_CQL_CONTACT) return true;
  const status = spawnSync(cassandra, ['status'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const running = status.status === 0 && /^running:/.test(status.stdout);
  if (running) {
    process.stderr.write(`run-tests: using the Cassandra already running (${status.stdout.trim()})\n`);
  }
  // `start` also covers a server still starting (it waits for it) and a race with another runner (it
  // finds the winner's server): only a server this call brought up is ours to stop.
  const r = running
    ? { status: 0, stdout: '', stderr: '' }
    : spawnSync(cassandra, ['start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.stderr) process.stderr.write(r.stderr);
  if (r.status !== 0) {
    process.stderr.write('run-tests: scripts/cassandra start failed: the CQL tests will fail, not be skipped\n');
    process.env.PARLEY_CQL_CONTACT = `127.0.0.1:${process.env.PARLEY_CQL_PORT || 9042}`;
    return false;
  }
  if (!running && !/already running/.test(r.stderr)) ownCassandra = true;
  const contact = (r.stdout || '').trim().split('\n').pop();
  process.env.PARLEY_CQL_CONTACT = /^[\w.-]+:\d+$/.test(contact || '') ? contact : `127.0.0.1:${process.env.PARLEY_CQL_PORT || 9042}`;
  return true;
}

/** Installs chromium for the browser tests if it is missing; a failed install fails them (they say why). */
function ensureChromium() {
  const r = spawnSync(join(root, 'scripts', 'chromium'), ['install'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) process.stderr.write('run-tests: scripts/chromium install failed: the browser tests will fail\n');
}

function stopCassandra() {
  if (!ownCassandra || process.env.PARLEY_KEEP_CASSANDRA) return;
  ownCassandra = false;
  // Its messages go to stderr, before the summary line.
  spawnSync(cassandra, ['stop'], { stdio: ['ignore', process.stderr, 'inherit'] });
}

/** Runs tap on `list`; resolves with its counts (a run without a summary counts as one failure). */
function runTap(list, jobs) {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [join(root, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs'), '--reporter=tap', `--jobs=${jobs}`, ...list], {
      cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: process.env,
    });
    tapChild = child;
    let tail = '';
    child.stdout.on('data', (d) => {
      process.stdout.write(d);
      tail = (tail + d.toString()).slice(-4000);
    });
    child.on('exit', (code, signal) => {
      tapChild = undefined;
      const line = /^# \{ total: \d+[^}]*\}/m.exec(tail.split('\n').filter((l) => l.startsWith('# { total:')).pop() || '');
      const count = (k) => {
        const m = line && new RegExp(`\\b${k}: (\\d+)`).exec(line[0]);
        return m ? Number(m[1]) : 0;
      };
      const ok = code === 0 && !signal;
      resolveRun({ pass: count('pass'), fail: line ? count('fail') || (ok ? 0 : 1) : 1, skip: count('skip') });
    });
  });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    if (tapChild) tapChild.kill(sig);
    stopCassandra();
    process.exit(130);
  });
}

(async () => {
  const total = { pass: 0, fail: 0, skip: 0 };
  const add = (r) => { total.pass += r.pass; total.fail += r.fail; total.skip += r.skip; };
  if (browserFiles.length) ensureChromium();
  if (otherFiles.length) add(await runTap(otherFiles, 2));
  if (cqlFiles.length) {
    const up = ensureCassandra();
    const r = await runTap(cqlFiles, 1);
    // A server that never came up must show as a failure even if no test noticed.
    if (!up && r.fail === 0) r.fail = 1;
    add(r);
    stopCassandra();
  }
  const skip = total.skip ? `, ${total.skip} skipped` : '';
  console.log(`${total.pass} passed, ${total.fail} failed${skip}`);
  process.exit(total.fail === 0 ? 0 : 1);
})();
