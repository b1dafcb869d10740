import t from 'tap';
import { createHmac } from 'node:crypto';
import {
  benchPayload, connectCommand, connectToken, groupChannel, padFor, parseFrame, personalChannel, publishCommand, readPayload, signHs256, subscribeCommand,
} from '../../bench/load/centrifugo-protocol.js';
import { centrifugoConfig, HISTORY, isCentrifugo } from '../../bench/targets/centrifugo.js';

// The bench's Centrifugo target, its pure parts: the JWTs the load generator signs, the config file it
// writes, the frames it sends and parses (replies captured from a Centrifugo v6.9.1 run).

const part = (token: string, i: number): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[i]!, 'base64url').toString()) as Record<string, unknown>;

t.test('HS256 signing matches the well-known jwt.io example token', async (t) => {
  t.equal(
    signHs256({ sub: '1234567890', name: 'John Doe', iat: 1516239022 }, 'your-256-bit-secret'),
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
  );
});

t.test('a connection token names the user and expires after its ttl; another secret does not verify it', async (t) => {
  const tok = connectToken('42', 's3cret', 1_800_000_000, 3600);
  t.strictSame(part(tok, 0), { alg: 'HS256', typ: 'JWT' });
  t.strictSame(part(tok, 1), { sub: '42', iat: 1_800_000_000, exp: 1_800_003_600 });
  const [h, b, sig] = tok.split('.');
  t.equal(sig, createHmac('sha256', 's3cret').update(`${h}.${b}`).digest('base64url'));
  t.not(sig, createHmac('sha256', 'other').update(`${h}.${b}`).digest('base64url'));
  t.equal(part(connectToken('42', 's3cret', 1_800_000_000), 1).exp, 1_800_000_000 + 86_400, 'a day by default: no refresh during a bench');
});

t.test('the config: loopback only, JWT secret, user-limited personal channels with client publish, member-only groups', async (t) => {
  const c = centrifugoConfig({ port: 18123, secret: 'k', history: false }) as any;
  t.strictSame(c.http_server, { address: '127.0.0.1', port: 18123 });
  t.equal(c.client.token.hmac_secret_key, 'k');
  t.equal(c.usage_stats.disabled, true, 'no call home');
  t.equal(c.http_api.disabled, true);
  t.equal(c.admin.enabled, false);
  t.equal(c.engine.type, 'memory');
  t.equal(c.health.enabled, true, 'the bench waits on /health');
  const [user, group] = c.channel.namespaces;
  // Centrifugo refuses namespace names shorter than 2 characters (^[-a-zA-Z0-9_.]{2,}$).
  for (const ns of c.channel.namespaces) t.match(ns.name, /^[-a-zA-Z0-9_.]{2,}$/);
  t.equal(personalChannel('7'), `${user.name}:#7`, 'the personal channel is in the user namespace, limited to its user');
  t.equal(groupChannel(100_003), `${group.name}:100003`);
  t.strictSame(user, { name: 'user', allow_user_limited_channels: true, allow_publish_for_client: true });
  t.notOk(user.allow_subscribe_for_client, 'nobody but the user may subscribe to a personal channel');
  t.strictSame(group, { name: 'group', allow_subscribe_for_client: true, allow_publish_for_subscriber: true });
  t.notOk(group.allow_publish_for_client, 'only members publish into a group');
  for (const ns of [user, group]) t.notOk('history_size' in ns, 'no history in the relay configuration');
});

t.test('the history config: a bounded history stream and forced recovery on every namespace', async (t) => {
  const c = centrifugoConfig({ port: 1, secret: 'k', history: true }) as any;
  for (const ns of c.channel.namespaces) {
    t.equal(ns.history_size, HISTORY.size);
    t.equal(ns.history_ttl, HISTORY.ttl);
    t.equal(ns.force_recovery, true);
  }
  t.ok(isCentrifugo('centrifugo-history') && isCentrifugo('centrifugo-relay') && !isCentrifugo('uws'));
});

t.test('commands are JSON with the publication data embedded; the pad brings a publish to about the frame size', async (t) => {
  t.strictSame(JSON.parse(connectCommand(1, 'tok')), { id: 1, connect: { token: 'tok', name: 'parley-bench' } });
  t.strictSame(JSON.parse(subscribeCommand(2, 'user:#5')), { id: 2, subscribe: { channel: 'user:#5' } });
  const pad = 'x'.repeat(padFor(160, personalChannel('999')));
  const frame = publishCommand(100_000, personalChannel('999'), benchPayload(100_000, 100_000, 1e12, pad));
  t.strictSame(JSON.parse(frame), { id: 100_000, publish: { channel: 'user:#999', data: { s: 100_000, n: 100_000, t: 1e12, x: pad } } });
  t.equal(frame.length, 160);
  t.equal(padFor(10, 'user:#1'), 1, 'never below one character');
  t.equal(JSON.parse(benchPayload(1, 2, 3.6, 'x')).t, 4, 'µs rounded: the payload is integers only');
});

t.test('server frames: replies by id, errors, publications with their sender, pings, pushes, several per frame', async (t) => {
  const connect = parseFrame('{"id":1,"connect":{"client":"47a1","version":"6.9.1 OSS","expires":true,"ttl":100,"ping":25,"pong":true}}');
  t.match(connect, [{ type: 'reply', id: 1, method: 'connect', result: { pong: true, ping: 25 } }]);
  t.match(parseFrame('{"id":2,"subscribe":{"recoverable":true,"epoch":"CqLNZhdK","positioned":true}}'), [{ type: 'reply', id: 2, method: 'subscribe' }]);
  t.match(parseFrame('{"id":2,"error":{"code":103,"message":"permission denied"}}'), [{ type: 'reply', id: 2, method: undefined, error: { code: 103, message: 'permission denied' } }]);
  t.match(parseFrame('{"id":3,"publish":{}}'), [{ type: 'reply', id: 3, method: 'publish', result: {} }], 'an empty publish result is still the ack');
  const batch = parseFrame([
    '{"push":{"channel":"group:100000","pub":{"data":{"s":7,"n":1,"t":123456,"x":"x"},"info":{"user":"1","client":"47a1"},"offset":1,"epoch":"tLkj"}}}',
    '{"id":5,"publish":{}}',
    '',
  ].join('\n'));
  t.equal(batch.length, 2, 'newline-separated objects, a trailing newline ignored');
  const [pub, ack] = batch;
  t.match(pub, { type: 'publication', channel: 'group:100000', user: '1', offset: 1 });
  t.strictSame(readPayload(pub!.type === 'publication' ? pub.data : undefined), { s: 7, n: 1, t: 123456 });
  t.match(ack, { type: 'reply', id: 5, method: 'publish' });
  t.match(parseFrame('{"push":{"channel":"user:#2","pub":{"data":{"s":7,"n":2,"t":9,"x":"x"}}}}'), [{ type: 'publication', user: undefined, offset: undefined }], 'no history: no offset');
  t.strictSame(parseFrame('{}'), [{ type: 'ping' }]);
  t.match(parseFrame('{"push":{"disconnect":{"code":3001,"reason":"shutdown"}}}'), [{ type: 'disconnect', code: 3001, reason: 'shutdown' }]);
  t.match(parseFrame('{"push":{"channel":"user:#2","unsubscribe":{"code":2500,"reason":"insufficient state"}}}'), [{ type: 'unsubscribe', channel: 'user:#2', code: 2500 }]);
  t.equal(readPayload({ hello: 'world' }), undefined, 'data that is not ours');
  t.throws(() => parseFrame('not json'), 'a broken frame is an error, not silence');
});
