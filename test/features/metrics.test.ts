import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Fixture, http } from '../helpers/fixture.js';
import { newId } from '../../src/protocol/ids.js';

/**
 * Issue #16 §2: /metrics, scraped from a real node after a chat, shows the histograms users feel (send →
 * tick, sync, store operations, HTTP requests) with counts, Node's process metrics, frames by type and
 * errors by code, and no label that carries a user, conversation, device, phone or raw path.
 */

let f: Fixture;
t.before(async () => { f = await Fixture.start(); });
t.teardown(() => f.destroy());

interface Sample { name: string; labels: Record<string, string>; value: number }

/** The Prometheus text format, as a scraper reads it: `name{a="x",b="y"} value` lines, comments skipped. */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of m[2] ? m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g) : []) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const scrape = async (): Promise<Sample[]> => {
  const r = await http(f.url, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return parse(r.bytes.toString());
};
const value = (s: Sample[], name: string, labels: Record<string, string> = {}): number =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);
const has = (s: Sample[], name: string) => s.some((x) => x.name === name);

t.test('after a chat: the histograms have counts, and every label is bounded', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const carol = await f.device(t);
  const N = 20;
  let last = { conv: '', seq: 0 };
  for (let i = 0; i < N; i++) last = await alice.client.text({ to: bob.user }, `hello ${i}`);
  // Bob's acks reached his entity (which times the deliveries) once Alice hears they were delivered.
  await alice.waitFrame((x) => x.t === 'receipt' && x.conv === last.conv && x.status === 'delivered' && x.upTo >= last.seq, 'delivered');
  const group = await alice.client.createGroup('metrics', [bob.user, carol.user]);
  await alice.client.text({ conv: group.conv }, 'to the group');
  await bob.waitFor(() => (bob.messages.length >= N + 1 ? true : undefined), 10_000, 'bob has every message');
  // One send refused on the socket (a 1:1 chat with oneself) and one HTTP route that doesn't exist.
  const raw = await f.raw(t, carol.session.token);
  raw.send({ t: 'send', cid: 'self-1', kind: 'text', to: carol.user, body: { text: 'me' } });
  await raw.next((x) => x.t === 'error' && x.cid === 'self-1', 'the refusal');
  const mediaId = newId();
  t.equal((await http(f.url, `/v1/media/${mediaId}`, { headers: { authorization: `Bearer ${alice.session.token}` } })).status, 404);
  t.equal((await http(f.url, `/nowhere/${mediaId}`)).status, 404);

  const s = await scrape();
  t.ok(value(s, 'parley_send_seconds_count', { outcome: 'sent' }) >= N + 1, 'send → sent: one per message');
  t.ok(value(s, 'parley_send_seconds_count', { outcome: 'error' }) >= 1, 'send → error: the refused one');
  t.ok(value(s, 'parley_send_seconds_sum', { outcome: 'sent' }) > 0, 'with time in it');
  t.ok(value(s, 'parley_delivery_seconds_count') >= 1, 'send → a device\'s ack: timed');
  t.ok(value(s, 'parley_sync_seconds_count') >= 3, 'a sync per device, each to its last synced');
  t.ok(value(s, 'parley_store_seconds_count', { op: 'appendMessage' }) >= N + 1, 'store: an append per message');
  t.ok(value(s, 'parley_store_seconds_count', { op: 'getDevice' }) >= 3, 'store: device reads at the upgrades');
  t.ok(value(s, 'parley_http_request_seconds_count', { route: '/v1/accounts/verify', method: 'post', status: '2xx' }) >= 3, 'HTTP: the sign-ins, by route pattern');
  t.ok(value(s, 'parley_http_request_seconds_count', { route: '/v1/media/:id', status: '4xx' }) >= 1, 'a media id is not a label: the pattern is');
  t.ok(value(s, 'parley_http_request_seconds_count', { route: '/*', method: 'any', status: '4xx' }) >= 1, 'and an unknown path is the catch-all');

  t.ok(value(s, 'parley_frames_in_total', { type: 'send' }) >= N + 2, 'frames in by type');
  t.ok(value(s, 'parley_frames_out_total', { type: 'sent' }) >= N + 1, 'frames out by type: ticks');
  t.ok(value(s, 'parley_frames_out_total', { type: 'msg' }) >= N + 1, 'and deliveries');
  t.ok(value(s, 'parley_errors_total', { via: 'ws', code: 'invalid' }) >= 1, 'errors by code, on sockets');
  t.ok(value(s, 'parley_errors_total', { via: 'http', code: 'not_found' }) >= 2, 'and over HTTP');
  t.ok(value(s, 'parley_connections') >= 3, 'connections'); // carol's raw socket replaced her client's
  t.ok(value(s, 'parley_entities', { kind: 'user' }) >= 3, 'live entities by kind');
  t.ok(value(s, 'parley_entity_events_total', { kind: 'conv', event: 'spawned' }) >= 2, 'entity events by kind');
  for (const name of ['process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes', 'parley_event_loop_delay_max_10s_ms']) {
    t.ok(has(s, name), `process metric ${name}`);
  }

  // Each histogram series is whole: buckets never go down, and +Inf is the count.
  const series = new Map<string, Sample[]>();
  for (const x of s.filter((x) => x.name.endsWith('_bucket'))) {
    const { le: _le, ...rest } = x.labels;
    const key = `${x.name}${JSON.stringify(rest)}`;
    series.set(key, [...(series.get(key) ?? []), x]);
  }
  for (const [key, buckets] of series) {
    const counts = buckets.map((b) => b.value);
    if (counts.some((c, i) => i > 0 && c < counts[i - 1]!)) t.fail(`${key}: buckets go down`);
    const { le: _le, ...labels } = buckets[0]!.labels;
    const count = value(s, buckets[0]!.name.replace(/_bucket$/, '_count'), labels);
    if (buckets.at(-1)!.labels.le !== '+Inf' || buckets.at(-1)!.value !== count) t.fail(`${key}: +Inf is not the count`);
  }

  // No label value names anyone or anything of this chat, and the ones that vary come from small fixed sets.
  const secrets = [alice, bob, carol].flatMap((d) => [d.user, d.session.device, d.phone]).concat([group.id, group.conv, mediaId]);
  const leaked = s.filter((x) => Object.values(x.labels).some((v) => secrets.some((id) => v.includes(id))));
  t.same(leaked.map((x) => x.name), [], 'no label carries a user, device, phone, group, conversation or media id');
  const values = (label: string) => new Set(s.filter((x) => label in x.labels).map((x) => x.labels[label]!));
  t.ok([...values('route')].every((r) => r === '/*' || /^\/[\w/:]*$/.test(r)), `routes are patterns: ${[...values('route')].join(' ')}`);
  t.ok(values('op').size <= 60 && [...values('op')].every((o) => /^[a-zA-Z]+$/.test(o)), 'ops are method names');
  t.ok([...values('status')].every((x) => /^([1-5]xx|aborted|other)$/.test(x)), 'statuses are classes');
  t.ok(values('type').size <= 40, 'frame types are the protocol\'s');
});

t.test('a send timed at the gateway: a duplicate tick is its own outcome', async (t) => {
  const alice = await f.device(t);
  const bob = await f.device(t);
  const before = value(await scrape(), 'parley_send_seconds_count', { outcome: 'duplicate' });
  const first = await alice.client.send({ to: bob.user }, 'text', { text: 'once' }, { cid: 'dup-cid-1' });
  const again = await alice.client.send({ to: bob.user }, 'text', { text: 'once' }, { cid: 'dup-cid-1' });
  t.equal(again.seq, first.seq, 'the resend got the first seq');
  t.equal(again.dup, true, 'as a duplicate');
  t.equal(value(await scrape(), 'parley_send_seconds_count', { outcome: 'duplicate' }), before + 1, 'timed as a duplicate');
});

t.test('an HTTP answer carries its request id: the client\'s when it gave a plain one, else a new one', async (t) => {
  const given = await http(f.url, '/v1/accounts/me', { headers: { 'x-request-id': 'trace-abc.1' } });
  t.equal(given.status, 401);
  t.equal(given.headers.get('x-request-id'), 'trace-abc.1');
  const made = await http(f.url, '/v1/accounts/me', { headers: { 'x-request-id': 'not a token\u00e9' } });
  t.match(made.headers.get('x-request-id'), /^n\w+\.h[0-9a-z]+$/, 'a made one names the node');
  const other = await http(f.url, '/v1/accounts/me');
  t.not(other.headers.get('x-request-id'), made.headers.get('x-request-id'), 'one per request');
});

t.test('the Grafana dashboard in docs/ops reads only metrics the node serves', async (t) => {
  const dash = JSON.parse(readFileSync(resolve(__dirname, '../../../docs/ops/grafana-dashboard.json'), 'utf8')) as {
    uid: string; schemaVersion: number; panels: { id: number; type: string; title: string; gridPos: { w: number; h: number; x: number; y: number }; targets?: { expr: string; refId: string }[] }[];
  };
  t.ok(dash.uid && dash.schemaVersion >= 30, 'a dashboard');
  t.equal(new Set(dash.panels.map((p) => p.id)).size, dash.panels.length, 'panel ids are unique');
  t.ok(dash.panels.every((p) => p.gridPos.x + p.gridPos.w <= 24), 'panels fit the grid');
  const graphs = dash.panels.filter((p) => p.type === 'timeseries');
  t.ok(graphs.length >= 15 && graphs.every((p) => p.targets!.length > 0), `${graphs.length} graphs, each with a query`);
  const served = await http(f.url, '/metrics');
  const families = new Set([...served.bytes.toString().matchAll(/^# TYPE (\S+) (\w+)$/gm)].map((m) => m[1]!));
  const histograms = new Set([...served.bytes.toString().matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1]!));
  for (const p of graphs) {
    for (const { expr } of p.targets!) {
      const names = [...expr.matchAll(/\b((?:parley|nodejs|process)_\w+)/g)].map((m) => m[1]!);
      for (const name of names) {
        const family = name.replace(/_(bucket|sum|count)$/, '');
        if (!families.has(name) && !(histograms.has(family) && name !== family)) t.fail(`${p.title}: ${name} is not served`);
      }
      const depth = [...expr].reduce((d, c) => (d < 0 ? d : d + (c === '(' ? 1 : c === ')' ? -1 : 0)), 0);
      if (depth !== 0) t.fail(`${p.title}: unbalanced parentheses in ${expr}`);
      if (/histogram_quantile/.test(expr) && !/_bucket\{/.test(expr)) t.fail(`${p.title}: a quantile not over buckets`);
    }
  }
  const latency = graphs.filter((p) => p.targets!.some((x) => x.expr.includes('histogram_quantile')));
  t.ok(latency.length >= 4, `latency percentiles from histograms: ${latency.map((p) => p.title).join('; ')}`);
});
