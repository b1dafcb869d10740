import type { ConversationId, DeviceId, UserId } from '../protocol/ids.js';
import type { MessageKind, PushPlatform } from '../protocol/frames.js';
import type { PushRegistration, Store } from '../store/store.js';
import { pack, unpack } from '../protocol/codec.js';
import type { Notification } from './policy.js';
import { log } from '../log.js';

/**
 * The push seam. A user entity hands each message for a device with no open socket to the gateway
 * (`notify`, fire-and-forget, in its turn); the dispatcher (dispatcher.ts) coalesces, renders, sends through
 * the device's provider (apns.ts, fcm.ts, webpush.ts, wns.ts, or the outbox below), retries, and tells the
 * user entity by a message when a registration is dead. The body stays out of it unless the device allowed
 * previews and the body is plaintext (`preview`, cut short).
 */
export interface PushNotice {
  user: UserId;
  device: DeviceId;
  push: PushRegistration;
  /** The inbox ptr the message got for this device: a device that acked it needs no push. */
  ptr: number;
  conv: ConversationId;
  seq: number;
  from: UserId;
  kind: MessageKind;
  preview?: string;
}

export interface PushGateway {
  notify(notice: PushNotice): void;
  /** Refuses (ParleyError `invalid`) a registration this node would not send to: an endpoint outside the allowed origins. */
  check(push: PushRegistration): void;
  /**
   * Nothing more goes to the device (it signed out, left pushes, or its account is being erased): what waits
   * for it is dropped with its mark; resolves once a send already in flight for it has ended, so a caller that
   * then deletes what a send writes (the dev outbox) deletes the last of it.
   */
  withdraw(user: UserId, device: DeviceId): Promise<void>;
  /**
   * These users' entities now live on another node (their shard moved): what waits for them here is dropped
   * and their marks stay, for the next owner to send from (so each push goes once, from the owner's node).
   */
  release(users: (user: UserId) => boolean): void;
}

/** How a provider's answer is handled (each provider maps its service's documented answers to these). */
export type SendResult =
  | { kind: 'sent' }
  /** The token or subscription is gone for good: the registration is removed. */
  | { kind: 'dead'; reason: string }
  /**
   * Throttled or unavailable: try again after `retryAfterMs` (the service's Retry-After), else backoff.
   * `outage`: the service itself failed (5xx, network), which counts towards its circuit breaker; a 429 doesn't.
   */
  | { kind: 'retry'; reason: string; retryAfterMs?: number; outage?: boolean }
  /** Refused for a reason a retry won't change (payload too large, a malformed request, credentials refused): logged. */
  | { kind: 'failed'; reason: string };

/** One push service. `send` never throws: a network error is a `retry`. */
export interface PushProvider {
  readonly name: string;
  send(push: PushRegistration, n: Notification, to: { user: UserId; device: DeviceId }): Promise<SendResult>;
  close?(): void;
}

/** What the outbox holds of one notification: the device, its address, and what would have been sent. */
export interface OutboxEntry {
  user: UserId; device: DeviceId; platform: PushPlatform; token: string;
  conv: ConversationId; seq: number; count: number; type: Notification['type']; title?: string; body?: string; collapseId: string;
}

/**
 * The development provider, for platforms with no credentials configured: keeps the last notifications in
 * memory (`recent`, this node's) and, given a store, in its dev outbox (box `push`, by user), where
 * /v1/dev/push reads them (`list`) on whichever node is asked. Logs what it would have sent.
 */
export class OutboxProvider implements PushProvider {
  readonly name = 'outbox';
  private readonly entries: OutboxEntry[] = [];
  constructor(private readonly keep = 1000, private readonly store?: Pick<Store, 'devOutboxAdd' | 'devOutboxList'>) {}

  async send(push: PushRegistration, n: Notification, to: { user: UserId; device: DeviceId }): Promise<SendResult> {
    const e: OutboxEntry = {
      user: to.user, device: to.device, platform: push.platform, token: push.token,
      conv: n.conv, seq: n.seq, count: n.count, type: n.type, collapseId: n.collapseId,
      ...(n.title !== undefined ? { title: n.title } : {}), ...(n.body !== undefined ? { body: n.body } : {}),
    };
    if (this.store) {
      try {
        await this.store.devOutboxAdd('push', e.user, pack(e));
      } catch (err) {
        return { kind: 'retry', reason: `the dev outbox is unavailable: ${String(err)}`, outage: true };
      }
    }
    this.entries.push(e);
    if (this.entries.length > this.keep) this.entries.shift();
    log('info', 'push (no provider configured for this platform; kept in the dev outbox)', { user: e.user, device: e.device, platform: e.platform, count: e.count });
    return { kind: 'sent' };
  }

  /** What this node sent (to `user`), oldest first. */
  recent(user?: UserId): OutboxEntry[] {
    return user ? this.entries.filter((n) => n.user === user) : [...this.entries];
  }

  /** What any node sent to `user` (the store's outbox; without a store, this node's), oldest first. */
  async list(user: UserId): Promise<OutboxEntry[]> {
    if (!this.store) return this.recent(user);
    return (await this.store.devOutboxList('push', user)).map((x) => unpack(x.data) as OutboxEntry);
  }
}
