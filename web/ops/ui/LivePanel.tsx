import { useMemo } from 'preact/hooks';
import type { LivePoint } from '../../../src/ops/admin-api.js';
import { count, millis, rate } from '../format.js';
import { Chart, type Line } from './Chart.js';

type Field = { [K in keyof LivePoint]: LivePoint[K] extends number | null ? K : never }[keyof LivePoint];

interface Tile { label: string; field: Field; show: (v: number | null) => string; warn?: (v: number) => boolean }

/** What matters at a glance, now and at its worst over the window. */
const TILES: Tile[] = [
  { label: 'Connections', field: 'connections', show: (v) => count(v ?? 0) },
  { label: 'Messages in / s', field: 'sendsPerSec', show: (v) => rate(v ?? 0) },
  { label: 'Deliveries / s', field: 'deliveriesPerSec', show: (v) => rate(v ?? 0) },
  { label: 'Sent tick p99', field: 'sentP99Ms', show: millis, warn: (v) => v > 100 },
  { label: 'Delivery p99', field: 'deliveredP99Ms', show: millis, warn: (v) => v > 250 },
  { label: 'Errors / s', field: 'errorsPerSec', show: (v) => rate(v ?? 0), warn: (v) => v > 0 },
  { label: 'Event loop max', field: 'loopMaxMs', show: millis, warn: (v) => v > 100 },
  { label: 'Entities', field: 'entities', show: (v) => count(v ?? 0) },
];

const peak = (points: LivePoint[], f: Field): number | null => {
  let m: number | null = null;
  for (const p of points) { const v = p[f]; if (v !== null && (m === null || v > m)) m = v; }
  return m;
};

export function LivePanel({ points, intervalMs }: { points: LivePoint[]; intervalMs: number }) {
  const now = points.at(-1);
  const xs = useMemo(() => points.map((p) => p.at / 1000), [points]);
  const charts = useMemo(() => {
    const col = (f: Field) => points.map((p) => p[f]);
    const lines = (...l: Line[]) => l;
    return [
      { title: 'Messages per second', unit: '', lines: lines({ label: 'in', color: '#00a884', values: col('sendsPerSec') }, { label: 'delivered', color: '#1e88e5', values: col('deliveriesPerSec') }) },
      { title: 'Latency (ms)', unit: '', lines: lines(
        { label: 'sent p50', color: '#80cbc4', values: col('sentP50Ms') }, { label: 'sent p99', color: '#00897b', values: col('sentP99Ms') },
        { label: 'delivery p50', color: '#90caf9', values: col('deliveredP50Ms') }, { label: 'delivery p99', color: '#1565c0', values: col('deliveredP99Ms') }) },
      { title: 'Connections', unit: '', lines: lines({ label: 'open', color: '#6a1b9a', values: col('connections') }) },
      { title: 'Errors and stalls', unit: '', lines: lines({ label: 'errors / s', color: '#c62828', values: col('errorsPerSec') }, { label: 'event loop max ms', color: '#ef6c00', values: col('loopMaxMs') }) },
    ];
  }, [points]);
  return (
    <section aria-labelledby="live-h" class="panel-box">
      <h2 id="live-h">Live <span class="small">last {Math.round((points.length * intervalMs) / 60_000) || '<1'} min, every {intervalMs / 1000} s</span></h2>
      <ul class="tiles">
        {TILES.map((t) => {
          const v = now ? now[t.field] : null;
          const worst = peak(points, t.field);
          return (
            <li key={t.field} class={`tile ${v !== null && t.warn?.(v) ? 'warn' : ''}`} aria-label={t.label} data-field={t.field}>
              <span class="label">{t.label}</span>
              <strong class="value" data-testid={`now-${t.field}`}>{now ? t.show(v) : '…'}</strong>
              <span class="small">peak <span data-testid={`peak-${t.field}`}>{worst === null ? '–' : t.show(worst)}</span></span>
            </li>
          );
        })}
      </ul>
      {points.length === 0
        ? <p class="hint">The charts start with the node's first sample, 2 s after it started.</p>
        : (
          <div class="charts">
            {charts.map((c) => (
              <figure key={c.title} aria-label={c.title}>
                <figcaption>{c.title}</figcaption>
                <Chart xs={xs} lines={c.lines} unit={c.unit} span={120} />
              </figure>
            ))}
          </div>
        )}
    </section>
  );
}
