/** Counters and gauges, exposed as Prometheus text on GET /metrics. */
export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<string, () => number>();

  count(name: string, by = 1): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + by);
  }

  gauge(name: string, read: () => number): void {
    this.gauges.set(name, read);
  }

  prometheus(): string {
    const lines: string[] = [];
    for (const [k, v] of this.counters) lines.push(`# TYPE parley_${k}_total counter`, `parley_${k}_total ${v}`);
    for (const [k, read] of this.gauges) lines.push(`# TYPE parley_${k} gauge`, `parley_${k} ${read()}`);
    return lines.join('\n') + '\n';
  }
}
