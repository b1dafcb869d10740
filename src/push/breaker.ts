/**
 * A circuit breaker per push provider (pure over the times it is given): `failures` failed sends in a row
 * open it for `openMs`; then one send is let through (half-open), and its outcome closes or reopens it.
 * While open, the provider's queue waits rather than spending retries against a service that is down.
 */
export class Breaker {
  private failed = 0;
  private openUntil = 0;
  private probing = false;
  /** Times it opened (a metric). */
  trips = 0;

  constructor(private readonly failures: number, private readonly openMs: number) {}

  /** May a send start at `now`? In half-open, only one at a time. */
  allows(now: number): boolean {
    if (this.failed < this.failures) return true;
    if (now < this.openUntil || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** When it next lets a send through (for a timer), or 0 when it is closed. */
  reopensAt(): number {
    return this.failed >= this.failures ? this.openUntil : 0;
  }

  isOpen(now: number): boolean {
    return this.failed >= this.failures && (now < this.openUntil || this.probing);
  }

  success(): void {
    this.failed = 0;
    this.probing = false;
  }

  failure(now: number): void {
    const probe = this.probing;
    this.probing = false;
    this.failed++;
    if (this.failed >= this.failures) {
      if (this.failed === this.failures || probe) this.trips++;
      this.openUntil = now + this.openMs;
    }
  }
}
