import type { ParleyClient } from '../../src/client/parley-client.js';

/**
 * Browser notifications through Web Push: the service worker (/sw.js) shows what the node pushes while this
 * device has no socket open (docs/protocol.md, "Push notifications and mutes"). The subscription is the
 * browser's, at its push service; the node learns it with `push.register` (platform `webpush`).
 */

export const pushSupported = (): boolean => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const b64 = base64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (base64url.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** Asks permission, subscribes, and registers the subscription with the node; throws a reason to show. */
export async function enablePush(client: ParleyClient, vapidPublicKey: string, previews: boolean): Promise<void> {
  if (!pushSupported()) throw new Error('This browser cannot show notifications.');
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new Error('Notifications are blocked for this site in the browser.');
  const reg = await navigator.serviceWorker.register('/sw.js');
  await navigator.serviceWorker.ready;
  let sub: PushSubscription;
  try {
    sub = (await reg.pushManager.getSubscription()) ?? await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(vapidPublicKey) });
  } catch (e) {
    throw new Error(`The browser's push service did not answer (${(e as Error).message}).`);
  }
  const json = sub.toJSON() as { endpoint?: string; keys?: { p256dh?: string; auth?: string } };
  if (!json.endpoint || !json.keys?.p256dh || !json.keys.auth) throw new Error('The browser gave an incomplete push subscription.');
  await client.registerPush('webpush', undefined, { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth }, previews });
}

export async function disablePush(client: ParleyClient): Promise<void> {
  const reg = await navigator.serviceWorker?.getRegistration('/');
  await (await reg?.pushManager.getSubscription())?.unsubscribe();
  await client.unregisterPush();
}
