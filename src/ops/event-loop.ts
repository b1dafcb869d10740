import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * How long the event loop was blocked: the worst delay of each of the last `windows` seconds. A stalled
 * loop is every socket on the node waiting, so this is the number an attack or a slow handler shows up in
 * first. A ring of per-second maxima, not one histogram since start, so the figure recovers after a stall.
 */
export class EventLoopMonitor {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private readonly maxima: number[];
  private i = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(windows = 10) {
    this.maxima = new Array<number>(windows).fill(0);
    this.h.enable();
    this.timer = setInterval(() => this.rotate(), 1000);
    this.timer.unref();
  }

  /** The longest delay in the last `windows` seconds, ms (this second's so far included). */
  maxMs(): number {
    return Math.max(this.h.max / 1e6, ...this.maxima);
  }

  stop(): void {
    clearInterval(this.timer);
    this.h.disable();
  }

  private rotate(): void {
    this.maxima[this.i] = this.h.max / 1e6;
    this.i = (this.i + 1) % this.maxima.length;
    this.h.reset();
  }
}
