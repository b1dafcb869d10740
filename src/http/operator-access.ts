import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';
import { ParleyError } from '../protocol/errors.js';
import { bearer } from './http-io.js';

/**
 * Who may use the operator routes. Admin routes (the supervisor tree, faults) need the admin key. The
 * development conveniences (the dev SMS and push outboxes) and /metrics are also open to anyone on a
 * development node bound to loopback, where "anyone" is this machine; elsewhere they need the key too.
 */
export class OperatorAccess {
  private readonly key?: Buffer;
  constructor(adminKey: string | undefined, readonly openLocally: boolean) {
    this.key = adminKey ? digest(adminKey) : undefined;
  }

  /** The key a request carries: `x-admin-key`, or `Authorization: Bearer` (what Prometheus sends). Read it before any await. */
  static keyOf(req: HttpRequest): string {
    return req.getHeader('x-admin-key') || (bearer(req.getHeader('authorization')) ?? '');
  }

  admin(given: string): void {
    if (!this.key) throw new ParleyError('unauthorized', 'this node has no admin key: set PARLEY_ADMIN_KEY (16+ characters) to use the operator routes');
    if (!this.matches(given)) throw new ParleyError('unauthorized', 'missing or wrong admin key (x-admin-key)');
  }

  /** Dev outboxes and metrics. */
  local(given: string): void {
    if (!this.openLocally) this.admin(given);
  }

  private matches(given: string): boolean {
    // Compared as digests: equal lengths, and no early exit to time.
    return this.key !== undefined && given !== '' && timingSafeEqual(this.key, digest(given));
  }
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
