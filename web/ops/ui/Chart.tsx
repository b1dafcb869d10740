import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface Line { label: string; color: string; values: (number | null)[] }

interface ChartProps {
  /** x values: seconds since the epoch (uPlot's time scale). */
  xs: number[];
  lines: Line[];
  unit: string;
  bars?: boolean;
  height?: number;
  /** The x axis spans at least this many seconds back from the newest point (a steady window, not a zoom on 3 points). */
  span?: number;
}

/**
 * A uPlot chart (canvas; hover shows each series' value) sized to its box. Why uPlot: a time-series chart with
 * axes, legend and cursor in 50 KB, fast enough to redraw every two seconds, and no inline styles or scripts
 * for the CSP to refuse (it styles through the CSSOM).
 */
/** The x range: the data's, widened back to `span` seconds before the newest point (uPlot widens a lone point by years). */
function xRange(xs: number[], min: number, max: number, span: number): [number, number] {
  const newest = xs.at(-1);
  if (!span || newest === undefined) return [min, max];
  const oldest = xs[0]!;
  return newest - oldest >= span ? [oldest, newest] : [newest - span, newest];
}

export function Chart({ xs, lines, unit, bars, height = 160, span = 0 }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  // The range function is made once per chart; it reads the newest data through this.
  const latest = useRef(xs);
  latest.current = xs;
  const shape = lines.map((l) => l.label).join('|') + (bars ? '|bars' : '');

  useEffect(() => {
    const el = box.current!;
    const bar = bars ? uPlot.paths.bars!({ size: [0.6, 40] }) : undefined;
    const u = new uPlot({
      width: Math.max(200, el.clientWidth), height,
      scales: { x: { time: true, range: (_u, min, max) => xRange(latest.current, min, max, span) }, y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      axes: [{ stroke: '#54656f', grid: { stroke: '#eee' } }, { stroke: '#54656f', grid: { stroke: '#eee' }, size: 56, values: (_u, vals) => vals.map((v) => `${v}${unit}`) }],
      series: [{}, ...lines.map((l) => ({
        label: l.label, stroke: l.color, width: 2, spanGaps: false,
        ...(bar ? { paths: bar, fill: `${l.color}cc` } : { fill: `${l.color}14` }),
        value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '–' : `${v}${unit}`),
      }))],
      legend: { live: true },
    }, [xs, ...lines.map((l) => l.values)], el);
    plot.current = u;
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }));
    resize.observe(el);
    return () => { resize.disconnect(); u.destroy(); plot.current = undefined; };
  }, [shape, unit, height, span]);

  useEffect(() => {
    plot.current?.setData([xs, ...lines.map((l) => l.values)]);
  }, [xs, lines]);

  return <div class="chart" ref={box} />;
}
