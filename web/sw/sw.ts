/**
 * The service worker: shows the node's Web Push notifications (src/push/webpush.ts, `webPushPayload`) and
 * opens the chat when one is clicked. A push is never ignored (browsers require a visible notification for
 * each): a content-free wake-up shows a plain "New messages".
 */
const sw = self as unknown as ServiceWorkerGlobalScope;

interface Payload { conv?: string; seq?: number; count?: number; type?: string; title?: string; body?: string; tag?: string }

sw.addEventListener('install', () => { void sw.skipWaiting(); });
sw.addEventListener('activate', (e) => { e.waitUntil(sw.clients.claim()); });

sw.addEventListener('push', (e) => {
  let p: Payload = {};
  try { p = (e.data?.json() ?? {}) as Payload; } catch { /* not JSON: shown as a wake-up */ }
  const title = p.title ?? 'Parley';
  const body = p.body ?? (p.count && p.count > 1 ? `${p.count} new messages` : 'New messages');
  e.waitUntil(sw.registration.showNotification(title, { body, tag: p.tag ?? p.conv ?? 'parley', data: { conv: p.conv } }));
});

sw.addEventListener('notificationclick', (e) => {
  e.notification.close();
  e.waitUntil((async () => {
    const open = await sw.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const page = open.find((c) => new URL(c.url).origin === sw.location.origin);
    if (page) await (page as WindowClient).focus();
    else await sw.clients.openWindow('/');
  })());
});

export {};
