import { useMemo } from 'preact/hooks';
import type { AnalyticsReport } from '../../../src/ops/admin-api.js';
import { count, megabytes, millis } from '../format.js';
import { Chart } from './Chart.js';

const noon = (day: string) => Date.parse(`${day}T12:00:00Z`) / 1000;

/** The product numbers per UTC day (every node's, merged by the node answering): GET /v1/admin/analytics. */
export function AnalyticsPanel({ report, error, days, onDays }: { report?: AnalyticsReport; error?: string; days: number; onDays: (d: number) => void }) {
  const view = useMemo(() => {
    if (!report) return undefined;
    const d = report.days;
    const today = d.at(-1);
    return {
      xs: d.map((x) => noon(x.day)),
      dau: [{ label: 'active users', color: '#00a884', values: d.map((x) => x.dau) }],
      messages: (['text', 'image', 'video', 'location'] as const).map((k, i) => ({
        label: k, color: ['#00a884', '#1e88e5', '#8e24aa', '#f4511e'][i]!, values: d.map((x) => x.messages.byKind[k] ?? 0),
      })),
      latency: (['p50', 'p90', 'p99'] as const).map((p, i) => ({ label: p, color: ['#90caf9', '#42a5f5', '#1565c0'][i]!, values: d.map((x) => x.latency[p]) })),
      totals: {
        messages: d.reduce((a, x) => a + x.messages.direct + x.messages.group, 0),
        group: d.reduce((a, x) => a + x.messages.group, 0),
        signups: d.reduce((a, x) => a + x.signups, 0),
        push: d.reduce((a, x) => a + x.pushSent, 0),
        media: d.reduce((a, x) => a + x.mediaBytes, 0),
      },
      today,
    };
  }, [report]);
  return (
    <section aria-labelledby="analytics-h" class="panel-box">
      <h2 id="analytics-h">Analytics <span class="small">per UTC day, every node</span></h2>
      <label class="row small">Range
        <select value={String(days)} onChange={(e) => onDays(Number(e.currentTarget.value))}>
          <option value="7">last 7 days</option><option value="30">last 30 days</option><option value="90">last 90 days</option>
        </select>
      </label>
      {error && <p class="error" role="alert">{error}</p>}
      {!view ? (!error && <p class="hint">Loading…</p>) : (
        <>
          <dl class="tiles" aria-label="Totals">
            <div class="tile"><dt class="label">Active today</dt><dd class="value" data-testid="dau-today">{count(view.today?.dau ?? 0)}</dd></div>
            <div class="tile"><dt class="label">Active this month</dt><dd class="value">{count(report!.months.at(-1)?.mau ?? 0)}</dd></div>
            <div class="tile"><dt class="label">Messages</dt><dd class="value" data-testid="messages-total">{count(view.totals.messages)}</dd></div>
            <div class="tile"><dt class="label">of them in groups</dt><dd class="value">{count(view.totals.group)}</dd></div>
            <div class="tile"><dt class="label">Sign-ups</dt><dd class="value" data-testid="signups-total">{count(view.totals.signups)}</dd></div>
            <div class="tile"><dt class="label">Pushes sent</dt><dd class="value">{count(view.totals.push)}</dd></div>
            <div class="tile"><dt class="label">Media</dt><dd class="value">{megabytes(view.totals.media)}</dd></div>
            <div class="tile"><dt class="label">Delivery p99 today</dt><dd class="value">{millis(view.today?.latency.p99 ?? null)}</dd></div>
          </dl>
          <div class="charts">
            <figure aria-label="Daily active users"><figcaption>Daily active users</figcaption><Chart xs={view.xs} lines={view.dau} unit="" bars /></figure>
            <figure aria-label="Messages per day"><figcaption>Messages per day, by kind</figcaption><Chart xs={view.xs} lines={view.messages} unit="" /></figure>
            <figure aria-label="Delivery latency per day"><figcaption>Delivery latency per day (ms)</figcaption><Chart xs={view.xs} lines={view.latency} unit="" /></figure>
          </div>
          <p class="small">Active users are HyperLogLog estimates (standard error {(report!.distinctError * 100).toFixed(2)}%); latency is a message's send to a device's ack.</p>
        </>
      )}
    </section>
  );
}
