/** How the console writes numbers and times (pure). */

export const count = (n: number): string => n.toLocaleString('en-US');

export function rate(n: number): string {
  return n >= 100 ? count(Math.round(n)) : n.toLocaleString('en-US', { maximumFractionDigits: 1 });
}

export const millis = (ms: number | null): string => (ms === null ? '–' : ms < 10 ? `${ms.toFixed(1)} ms` : `${count(Math.round(ms))} ms`);

export function duration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

export const megabytes = (bytes: number): string => `${(bytes / 1e6).toLocaleString('en-US', { maximumFractionDigits: 1 })} MB`;
