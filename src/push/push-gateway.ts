import type { ConversationId, DeviceId, UserId } from '../protocol/ids.js';
import type { MessageKind, PushPlatform } from '../protocol/frames.js';

/**
 * The push seam: a user with no device online is woken by APNs/FCM/WNS. The payload carries the envelope
 * only (no body: bodies may be ciphertext); the app fetches the message by syncing. The provider
 * implementations (HTTP/2 to APNs, FCM v1) belong to the push issue; this node ships the outbox provider.
 */
export interface PushNotice {
  user: UserId;
  device: DeviceId;
  platform: PushPlatform;
  token: string;
  conv: ConversationId;
  seq: number;
  from: UserId;
  kind: MessageKind;
}

export interface PushGateway {
  notify(notice: PushNotice): void;
}

/** Keeps the last notices in memory (read by tests and operators through /v1/dev/push) and logs them. */
export class OutboxPushGateway implements PushGateway {
  private readonly notices: PushNotice[] = [];
  constructor(private readonly keep = 1000) {}
  notify(notice: PushNotice): void {
    this.notices.push(notice);
    if (this.notices.length > this.keep) this.notices.shift();
  }
  recent(user?: UserId): PushNotice[] {
    return user ? this.notices.filter((n) => n.user === user) : [...this.notices];
  }
}
