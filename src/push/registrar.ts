import { unpack } from '../protocol/codec.js';
import { deviceKey, type DeviceId, type UserId } from '../protocol/ids.js';
import type { Message } from '../protocol/frames.js';
import type { PushRegistration, Store } from '../store/store.js';
import type { ActorDeps } from '../actors/deps.js';
import type { UserDeliver } from '../messages/entity-messages.js';
import { log } from '../log.js';
import type { PushGateway, PushNotice } from './push-gateway.js';
import { previewOf } from './policy.js';
import { sameAddress, tokenKey } from './registration.js';

/**
 * The store side of a device's push registration, run by its user entity inside its turn (the entity then
 * sets the registration in memory). The token index keeps one device per token: a token registered by
 * another device (an app reinstalled, a phone handed to someone else) leaves its old device, whose user
 * entity is told by a message (`push.drop`, why `moved`) and removes it in its own turn.
 */
export async function storeRegistration(deps: ActorDeps, user: UserId, device: DeviceId, old: PushRegistration | undefined, push: PushRegistration): Promise<void> {
  deps.push.check(push);
  const { store, sharding } = deps;
  const me = deviceKey(user, device);
  const prev = await store.claimPushToken(tokenKey(push), me);
  await store.setDevicePush(user, device, push);
  if (old && !sameAddress(old, push)) await releaseToken(deps, user, device, old);
  if (prev && prev !== me) {
    const dot = prev.indexOf('.');
    sharding.tell('user', prev.slice(0, dot), { t: 'push.drop', device: prev.slice(dot + 1), platform: push.platform, token: push.token, why: 'moved' });
  }
}

/** The device no longer takes pushes (it asked, or the service said the token is dead). */
export async function removeRegistration(deps: ActorDeps, user: UserId, device: DeviceId, old: PushRegistration | undefined, why: 'asked' | 'invalid' | 'moved'): Promise<void> {
  void deps.push.withdraw(user, device);
  await deps.store.setDevicePush(user, device, undefined);
  // A token that moved is the other device's in the index now.
  if (old && why !== 'moved') await releaseToken(deps, user, device, old);
}

/** After a sign-out: the device's record (and so its registration) is gone; its token leaves the index. */
export function releaseToken(deps: ActorDeps, user: UserId, device: DeviceId, push: PushRegistration): Promise<void> {
  return deps.store.releasePushToken(tokenKey(push), deviceKey(user, device))
    .catch((err: unknown) => log('warn', 'push token not released from the index', { user, device, error: String(err) }));
}

/** What the dispatcher gets of a message: the envelope, and text only where the device allowed previews. */
export function pushNotice(user: UserId, device: DeviceId, push: PushRegistration, m: UserDeliver, ptr: number): PushNotice {
  const preview = push.previews ? previewOf(m.kind, (unpack(m.packed) as Message).body) : undefined;
  return { user, device, push, ptr, conv: m.conv, seq: m.seq, from: m.from, kind: m.kind, ...(preview !== undefined ? { preview } : {}) };
}

/**
 * At start: the notifications a node still owed when it stopped (its push marks) are sent, unless the device
 * has since acked the message, signed out or lost its registration. The message itself was in the inbox all
 * along; this only wakes the device to fetch it. In a cluster, a node sends those of the users whose shards
 * it just acquired (`keep`).
 */
export async function recoverPushes(store: Store, push: PushGateway, keep: (user: UserId) => boolean = () => true): Promise<number> {
  let sent = 0;
  for (const m of await store.listPushMarks()) {
    if (!keep(m.user)) continue; // in a cluster: another node's shard
    const dev = await store.getDevice(m.user, m.device);
    if (!dev?.push || dev.acked >= m.ptr) {
      await store.deletePushMark(deviceKey(m.user, m.device));
      continue;
    }
    push.notify({ ...m, push: dev.push });
    sent++;
  }
  return sent;
}
