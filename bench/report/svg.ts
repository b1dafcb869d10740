/** Hand-written SVG charts: grouped bars, one panel per figure, laid out in a grid. No chart library. */

export interface Series { name: string; color: string; values: (number | null)[] }
export interface Panel {
  title: string;
  subtitle?: string;
  categories: string[];
  series: Series[];
  unit: string;
  log?: boolean;
  /** A dashed horizontal line (a target), with its label. */
  line?: { value: number; label: string };
  /** Decimals in the value labels. */
  digits?: number;
}

export const COLORS: Record<string, string> = { parley: '#2563eb', uws: '#16a34a', 'uws-acked': '#0d9488', socketio: '#f59e0b', 'centrifugo-relay': '#7c3aed', 'centrifugo-history': '#db2777' };

const W = 560, H = 330;
const M = { top: 58, right: 16, bottom: 48, left: 62 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The smallest of 1, 2, 2.5, 5 × 10^k at or above v: a tick step people read easily. */
function niceStep(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function fmtValue(v: number, digits = 0): string {
  const trim = (s: string) => s.replace(/\.0$/, '');
  if (Math.abs(v) >= 1e6) return `${trim((v / 1e6).toFixed(v >= 1e7 ? 0 : 1))}M`;
  if (Math.abs(v) >= 1e4) return `${trim((v / 1e3).toFixed(v >= 1e5 ? 0 : 1))}k`;
  return v.toFixed(digits);
}

function panel(p: Panel, x0: number, y0: number): string {
  const out: string[] = [];
  const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
  const vals = p.series.flatMap((s) => s.values).filter((v): v is number => v != null && Number.isFinite(v) && v > 0);
  const lineV = p.line?.value;
  const rawMax = Math.max(...vals, lineV ?? 0, 0);
  let y: (v: number) => number;
  let ticks: number[];
  if (p.log) {
    const lo = 10 ** Math.floor(Math.log10(Math.min(...vals, lineV ?? Infinity, 1)));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(rawMax, lo * 10)));
    y = (v) => M.top + ph - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * ph;
    ticks = [];
    for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  } else {
    const step = niceStep((rawMax * 1.08) / 4);
    const max = step * Math.max(1, Math.ceil((rawMax * 1.08) / step));
    y = (v) => M.top + ph - (v / max) * ph;
    ticks = Array.from({ length: Math.round(max / step) + 1 }, (_, i) => step * i);
  }
  out.push(`<g transform="translate(${x0},${y0})">`);
  out.push(`<rect x="0.5" y="0.5" width="${W - 1}" height="${H - 1}" rx="8" fill="#fff" stroke="#e5e7eb"/>`);
  out.push(`<text x="16" y="24" font-size="15" font-weight="600" fill="#111827">${esc(p.title)}</text>`);
  if (p.subtitle) out.push(`<text x="16" y="42" font-size="11.5" fill="#6b7280">${esc(p.subtitle)}</text>`);
  for (const t of ticks) {
    const yy = y(t);
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${yy}" y2="${yy}" stroke="#f3f4f6"/>`);
    out.push(`<text x="${M.left - 6}" y="${yy + 4}" font-size="10.5" text-anchor="end" fill="#6b7280">${fmtValue(t, t % 1 ? 1 : 0)}</text>`);
  }
  out.push(`<text transform="translate(14,${M.top + ph / 2}) rotate(-90)" font-size="10.5" text-anchor="middle" fill="#6b7280">${esc(p.unit)}${p.log ? ' (log)' : ''}</text>`);
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#9ca3af"/>`);
  const groupW = pw / Math.max(1, p.categories.length);
  const barW = Math.min(44, (groupW * 0.78) / Math.max(1, p.series.length));
  p.categories.forEach((cat, ci) => {
    const gx = M.left + ci * groupW + (groupW - barW * p.series.length) / 2;
    out.push(`<text x="${M.left + ci * groupW + groupW / 2}" y="${M.top + ph + 16}" font-size="11" text-anchor="middle" fill="#374151">${esc(cat)}</text>`);
    p.series.forEach((s, si) => {
      const v = s.values[ci];
      const bx = gx + si * barW;
      if (v == null || !Number.isFinite(v)) {
        out.push(`<text x="${bx + barW / 2}" y="${M.top + ph - 4}" font-size="9.5" text-anchor="middle" fill="#9ca3af">n/a</text>`);
        return;
      }
      const top = y(Math.max(v, p.log ? 1e-9 : 0));
      out.push(`<rect x="${bx + 1}" y="${top}" width="${barW - 2}" height="${Math.max(0, M.top + ph - top)}" fill="${s.color}" rx="2"><title>${esc(s.name)} — ${esc(cat)}: ${v}</title></rect>`);
      out.push(`<text x="${bx + barW / 2}" y="${top - 3}" font-size="9.5" text-anchor="middle" fill="#111827">${fmtValue(v, p.digits ?? (v < 10 ? 1 : 0))}</text>`);
    });
  });
  if (lineV != null && Number.isFinite(lineV)) {
    const yy = y(lineV);
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${yy}" y2="${yy}" stroke="#dc2626" stroke-dasharray="5 4"/>`);
    out.push(`<text x="${W - M.right - 2}" y="${yy - 4}" font-size="10" text-anchor="end" fill="#dc2626">${esc(p.line!.label)}</text>`);
  }
  // legend
  let lx = M.left;
  for (const s of p.series) {
    out.push(`<rect x="${lx}" y="${H - 20}" width="10" height="10" fill="${s.color}" rx="2"/><text x="${lx + 14}" y="${H - 11}" font-size="11" fill="#374151">${esc(s.name)}</text>`);
    lx += 22 + s.name.length * 6.4;
  }
  out.push('</g>');
  return out.join('\n');
}

/** A chart of several panels, two per row, with a heading. */
export function chart(title: string, subtitle: string, panels: Panel[]): string {
  const cols = panels.length > 1 ? 2 : 1;
  const rows = Math.ceil(panels.length / cols);
  const gap = 14, head = 58;
  const width = cols * W + (cols + 1) * gap;
  const height = head + rows * H + (rows + 1) * gap;
  const body = panels.map((p, i) => panel(p, gap + (i % cols) * (W + gap), head + gap + Math.floor(i / cols) * (H + gap))).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#f9fafb"/>
<text x="${gap + 2}" y="30" font-size="19" font-weight="700" fill="#111827">${esc(title)}</text>
<text x="${gap + 2}" y="50" font-size="12" fill="#4b5563">${esc(subtitle)}</text>
${body}
</svg>
`;
}
