import t from 'tap';
import { loadConfig } from '../../src/config.js';

t.test('Scylla settings: defaults', async (t) => {
  const c = loadConfig({});
  t.equal(c.store, 'lmdb');
  t.strictSame(c.scylla, {
    contactPoints: ['127.0.0.1:9042'], localDataCenter: 'datacenter1', keyspace: 'parley',
    replication: "{'class': 'SimpleStrategy', 'replication_factor': 1}", consistency: 'LOCAL_QUORUM', serialConsistency: 'LOCAL_SERIAL',
    requestTimeoutMs: 12_000, connectTimeoutMs: 5_000, reconnectMaxDelayMs: 10_000,
  });
});

t.test('Scylla settings: from the environment', async (t) => {
  const c = loadConfig({
    PARLEY_STORE: 'scylla', PARLEY_SCYLLA_CONTACT_POINTS: 'a:9042, b:9043', PARLEY_SCYLLA_DC: 'dc1', PARLEY_SCYLLA_KEYSPACE: 'chat',
    PARLEY_SCYLLA_CONSISTENCY: 'QUORUM', PARLEY_SCYLLA_SERIAL_CONSISTENCY: 'SERIAL', PARLEY_SCYLLA_USERNAME: 'parley',
    PARLEY_SCYLLA_PASSWORD: 's3cret', PARLEY_SCYLLA_REQUEST_TIMEOUT_MS: '4000', PARLEY_SCYLLA_CONNECT_TIMEOUT_MS: '2000',
    PARLEY_SCYLLA_RECONNECT_MAX_MS: '1000',
  });
  t.equal(c.store, 'scylla');
  t.match(c.scylla, {
    contactPoints: ['a:9042', 'b:9043'], localDataCenter: 'dc1', keyspace: 'chat', consistency: 'QUORUM', serialConsistency: 'SERIAL',
    credentials: { username: 'parley', password: 's3cret' }, requestTimeoutMs: 4000, connectTimeoutMs: 2000, reconnectMaxDelayMs: 1000,
  });
  t.notOk('credentials' in loadConfig({ PARLEY_SCYLLA_USERNAME: '' }).scylla, 'no username, no credentials');
  t.throws(() => loadConfig({ PARLEY_SCYLLA_PASSWORD: 'x' }), /needs PARLEY_SCYLLA_USERNAME/);
  t.throws(() => loadConfig({ PARLEY_SCYLLA_REQUEST_TIMEOUT_MS: '0' }), /must be positive/);
  t.throws(() => loadConfig({ PARLEY_SCYLLA_RECONNECT_MAX_MS: 'soon' }), /non-negative number/);
});

t.test('media settings: defaults and from the environment', async (t) => {
  t.strictSame(loadConfig({}).media, {
    urlTtlMs: 300_000, uploadsPerUser: 4, uploadsInFlight: 128, uploadDiskBytes: 2 * 1024 ** 3, uploadGraceMs: 10_000, uploadMinBytesPerSec: 16_384,
  });
  t.strictSame(loadConfig({
    PARLEY_MEDIA_URL_TTL_MS: '1000', PARLEY_MEDIA_UPLOADS_PER_USER: '1', PARLEY_MEDIA_UPLOADS_MAX: '2', PARLEY_MEDIA_UPLOAD_DISK_BYTES: '3',
    PARLEY_MEDIA_UPLOAD_GRACE_MS: '0', PARLEY_MEDIA_UPLOAD_MIN_BPS: '5',
  }).media, { urlTtlMs: 1000, uploadsPerUser: 1, uploadsInFlight: 2, uploadDiskBytes: 3, uploadGraceMs: 0, uploadMinBytesPerSec: 5 });
  t.throws(() => loadConfig({ PARLEY_MEDIA_UPLOADS_MAX: '0' }), /must be positive/);
  t.throws(() => loadConfig({ PARLEY_MEDIA_UPLOAD_MIN_BPS: 'fast' }), /non-negative number/);
});

t.test('the fan-out retry window: default and from the environment', async (t) => {
  t.strictSame(loadConfig({}).fanout, { retryMs: 5000 });
  t.strictSame(loadConfig({ PARLEY_FANOUT_RETRY_MS: '1000' }).fanout, { retryMs: 1000 });
  t.throws(() => loadConfig({ PARLEY_FANOUT_RETRY_MS: '0' }), /must be positive/);
});

t.test('cluster settings: none without PARLEY_NATS_URLS; defaults and refusals with it', async (t) => {
  t.equal(loadConfig({}).cluster, undefined, 'no NATS configured: one node, as before');
  const c = loadConfig({ PARLEY_NATS_URLS: 'nats://10.0.0.1:4222, nats://10.0.0.2:4222,' }).cluster!;
  t.strictSame(c.natsUrls, ['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222']);
  t.equal(c.shards, 256);
  t.equal(c.replicas, 3);
  t.strictSame(c.membership, { heartbeatMs: 500, downAfterMs: 2_500 });
  t.strictSame(c.leases, { renewMs: 1_000, leaseMs: 4_000, marginMs: 500, releaseTimeoutMs: 5_000 });
  t.equal(loadConfig({ PARLEY_NATS_URLS: 'nats://x:4222', PARLEY_SHARDS: '1024', PARLEY_CLUSTER_LEASE_MS: '12000' }).cluster!.leases.leaseMs, 12_000);
  t.throws(() => loadConfig({ PARLEY_NATS_URLS: 'nats://x:4222', PARLEY_SHARDS: '0' }), /PARLEY_SHARDS/);
  t.throws(() => loadConfig({ PARLEY_NATS_URLS: 'nats://x:4222', PARLEY_NATS_REPLICAS: '2' }), /PARLEY_NATS_REPLICAS/);
  t.throws(() => loadConfig({ PARLEY_NATS_URLS: 'nats://x:4222', PARLEY_CLUSTER_LEASE_MS: '2000' }), /two renewals/);
  t.throws(() => loadConfig({ PARLEY_NATS_URLS: 'nats://x:4222', PARLEY_CLUSTER_DOWN_AFTER_MS: '600' }), /twice/);
});

t.test('web client: its bundle and the API key its page reads (published only when set, in production)', async (t) => {
  const dev = loadConfig({});
  t.match(dev.web.dir, /dist[\\/]web$/);
  t.equal(dev.web.apiKey, 'parley-dev-key', 'a development node signs its page in with the dev key');
  t.equal(loadConfig({ PARLEY_API_KEYS: 'key-one-0123456789,key-two-0123456789' }).web.apiKey, 'key-one-0123456789');
  const prod = {
    PARLEY_ENV: 'production', PARLEY_SMS: 'http', PARLEY_SMS_URL: 'http://sms.example', PARLEY_API_KEYS: 'app-key-0123456789,web-key-0123456789',
    PARLEY_SECRET: 'x'.repeat(32),
  };
  t.equal(loadConfig(prod).web.apiKey, '', 'production publishes no app key by default');
  t.equal(loadConfig({ ...prod, PARLEY_WEB_API_KEY: 'web-key-0123456789' }).web.apiKey, 'web-key-0123456789');
  t.throws(() => loadConfig({ ...prod, PARLEY_WEB_API_KEY: 'unknown-key-0123456' }), /PARLEY_WEB_API_KEY is not one of PARLEY_API_KEYS/);
  t.equal(loadConfig({ PARLEY_WEB_DIR: '/srv/parley-web' }).web.dir, '/srv/parley-web');
});

t.test("web client's map: OpenStreetMap by default, another XYZ server, or off", async (t) => {
  t.strictSame(loadConfig({}).web.map, {
    tiles: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png', origin: 'https://tile.openstreetmap.org',
    attribution: '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
  });
  t.strictSame(loadConfig({ PARLEY_MAP_TILES: 'http://127.0.0.1:8080/tiles/{z}/{x}/{y}.png?key=k', PARLEY_MAP_ATTRIBUTION: '© Us' }).web.map, {
    tiles: 'http://127.0.0.1:8080/tiles/{z}/{x}/{y}.png?key=k', origin: 'http://127.0.0.1:8080', attribution: '© Us',
  });
  t.equal(loadConfig({ PARLEY_MAP_TILES: 'off' }).web.map, undefined, 'off: no map, the link only');
  t.equal(loadConfig({ PARLEY_MAP_TILES: 'https://tiles.example:8443/{z}/{x}/{y}.png' }).web.map?.origin, 'https://tiles.example:8443');
  for (const bad of ['tiles.example/{z}/{x}/{y}.png', 'ftp://tiles.example/{z}/{x}/{y}.png', 'https://tiles.example/{z}/{x}.png']) {
    t.throws(() => loadConfig({ PARLEY_MAP_TILES: bad }), /PARLEY_MAP_TILES must be off or an http\(s\) URL template/, bad);
  }
  t.throws(() => loadConfig({ PARLEY_MAP_TILES: 'https://{s}.tile.example/{z}/{x}/{y}.png' }), /\{s\} subdomains are not supported/);
});
