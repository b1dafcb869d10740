/**
 * A one-line progress bar on stderr: redrawn in place on a terminal, a plain line every few seconds otherwise
 * (so logs of CI runs stay short). Nothing goes to stdout, which stays free for results.
 */
export class Progress {
  private readonly tty = Boolean(process.stderr.isTTY) && !process.env.BENCH_NO_TTY;
  private label = '';
  private startedAt = 0;
  private totalMs = 0;
  private lastPlain = 0;
  private lastLen = 0;
  constructor(private readonly quiet = false) {}

  start(label: string, totalMs: number): void {
    this.label = label;
    this.totalMs = totalMs;
    this.startedAt = Date.now();
    this.lastPlain = 0;
    this.update('');
  }

  update(detail: string, fraction?: number): void {
    if (this.quiet) return;
    const elapsed = Date.now() - this.startedAt;
    const f = Math.max(0, Math.min(1, fraction ?? (this.totalMs > 0 ? elapsed / this.totalMs : 0)));
    const width = 24;
    const filled = Math.round(f * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const line = `${this.label.padEnd(30).slice(0, 30)} ${bar} ${String(Math.round(f * 100)).padStart(3)}% ${(elapsed / 1000).toFixed(1).padStart(5)}s ${detail}`;
    if (this.tty) {
      const cols = process.stderr.columns || 120;
      const shown = line.slice(0, cols - 1);
      process.stderr.write(`\r${shown}${' '.repeat(Math.max(0, this.lastLen - shown.length))}`);
      this.lastLen = shown.length;
    } else if (Date.now() - this.lastPlain >= 5000) {
      this.lastPlain = Date.now();
      process.stderr.write(`${line}\n`);
    }
  }

  /** Ends the bar with a final line. */
  done(detail: string): void {
    if (this.quiet) return;
    const line = `${this.label.padEnd(30).slice(0, 30)} ✓ ${detail}`;
    if (this.tty) process.stderr.write(`\r${line}${' '.repeat(Math.max(0, this.lastLen - line.length))}\n`);
    else process.stderr.write(`${line}\n`);
    this.lastLen = 0;
  }

  log(text: string): void {
    if (this.quiet) return;
    if (this.tty && this.lastLen) process.stderr.write(`\r${' '.repeat(this.lastLen)}\r`);
    this.lastLen = 0;
    process.stderr.write(`${text}\n`);
  }
}
