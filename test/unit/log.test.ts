import t from 'tap';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * The node's log writer (pino) as its callers use it: `log(level, msg, fields)` writes one JSON line on
 * stderr with the level's name, an ISO time and the fields; below the level nothing; a phone number, a
 * one-time code, a token or a body never comes out, wherever it sits; and a line written while a frame or
 * an HTTP request is handled names it. Run in a child process: the writer owns file descriptor 2.
 */

const dist = resolve(__dirname, '../../src');

function run(script: string): Record<string, unknown>[] {
  const r = spawnSync(process.execPath, ['-e', `const { log, setLogLevel } = require(${JSON.stringify(`${dist}/log.js`)});
    const trace = require(${JSON.stringify(`${dist}/ops/trace.js`)});
    ${script}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return r.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

t.test('the line: level by name, time, fields, message; levels below the threshold are dropped', async (t) => {
  const lines = run(`
    log('info', 'plain', { node: 'n1', port: 3 });
    log('debug', 'hidden');
    setLogLevel('debug');
    log('debug', 'shown');
    setLogLevel('warn');
    log('info', 'hidden too');
    log('error', 'bad', { error: 'Error: x' });
    setLogLevel('nonsense');
    log('info', 'an unknown level means info');
  `);
  t.same(lines.map((l) => l.msg), ['plain', 'shown', 'bad', 'an unknown level means info']);
  t.match(lines[0], { level: 'info', node: 'n1', port: 3 });
  t.match(lines[0]!.t, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.notOk('pid' in lines[0]! || 'hostname' in lines[0]!, 'no pid or hostname');
  t.equal(lines[2]!.level, 'error');
});

t.test('phones, codes, texts, tokens and bodies are censored wherever they are', async (t) => {
  const phone = '+15551234567';
  const token = 'v1.eyJ1IjoidUFCQ0RFRkdISUoiLCJkIjoiZDEyMyJ9.Zm9vYmFyYmF6cXV4cXV1eA';
  const lines = run(`
    const phone = ${JSON.stringify(phone)}, token = ${JSON.stringify(token)};
    log('info', 'sms (dev outbox)', { phone, text: 'Your Parley code is 482913' });
    log('warn', 'nested', { req: { phone, token, code: '482913' }, body: { text: 'hello there' }, user: 'uKEEP' });
    log('warn', 'in strings', { error: 'Error: no account for ' + phone + ' with ' + token, list: ['call ' + phone, 7] });
    log('info', 'keys', { authorization: 'Bearer ' + token, adminKey: 'k', phones: [phone] });
  `);
  const all = JSON.stringify(lines);
  for (const secret of [phone, '5551234567', '482913', token, 'hello there', 'Bearer']) t.notOk(all.includes(secret), `no ${secret}`);
  t.match(lines[0], { msg: 'sms (dev outbox)', phone: '[redacted]', text: '[redacted]' }, 'the fields are there, censored');
  t.match(lines[1], { req: { phone: '[redacted]', token: '[redacted]', code: '[redacted]' }, body: '[redacted]', user: 'uKEEP' }, 'one level down too; ids stay');
  t.equal(lines[2]!.error, 'Error: no account for [redacted] with [redacted]', 'inside a message');
  t.same(lines[2]!.list, ['call [redacted]', 7], 'inside a list');
  t.match(lines[3], { authorization: '[redacted]', adminKey: '[redacted]', phones: '[redacted]' });
});

t.test('a line written while a frame or an HTTP request is handled names it', async (t) => {
  const lines = run(`
    trace.traceNode('nX');
    log('info', 'outside');
    trace.enterFrame(7, 3);
    log('info', 'before the frame is decoded');
    trace.frameId('rid-9');
    log('info', 'after');
    trace.leave();
    log('info', 'outside again');
    const id = trace.httpRequestId('');
    trace.withRequest(id, () => log('info', 'in a request'));
    trace.withRequest(trace.httpRequestId('given-1'), () => log('info', 'given'));
  `);
  t.same(lines.map((l) => [l.msg, l.req, l.conn]), [
    ['outside', undefined, undefined],
    ['before the frame is decoded', 'nX.w7.3', 7],
    ['after', 'rid-9', 7],
    ['outside again', undefined, undefined],
    ['in a request', 'nX.h1', undefined],
    ['given', 'given-1', undefined],
  ]);
});
