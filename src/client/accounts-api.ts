import type { DeviceInfo, SignOutResult } from '../protocol/frames.js';

/** The HTTP half of the SDK: phone-number sign-in, devices and media. Works wherever `fetch` does. */
export interface SessionInfo { user: string; device: string; token: string; expiresAt?: number; created: boolean }

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) { super(message); }
}

async function call<T>(url: string, init: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const text = await res.text();
  const body = text ? (JSON.parse(text) as { error?: { code: string; message: string } }) : {};
  if (!res.ok) throw new HttpError(res.status, body.error?.code ?? 'http_error', body.error?.message ?? `HTTP ${res.status}`);
  return body as T;
}

export function requestCode(base: string, apiKey: string, phone: string): Promise<{ sent: boolean; ttlMs: number }> {
  return call(`${base}/v1/accounts/code`, { method: 'POST', headers: { 'x-api-key': apiKey, 'content-type': 'application/json' }, body: JSON.stringify({ phone }) });
}

export function verifyCode(base: string, apiKey: string, phone: string, code: string, device?: { name?: string; platform?: string }): Promise<SessionInfo> {
  return call(`${base}/v1/accounts/verify`, { method: 'POST', headers: { 'x-api-key': apiKey, 'content-type': 'application/json' }, body: JSON.stringify({ phone, code, device }) });
}

/** Reads the code from a node running the dev SMS outbox (PARLEY_SMS=dev). */
export async function devCode(base: string, phone: string): Promise<string> {
  const r = await call<{ code: string }>(`${base}/v1/dev/otp?phone=${encodeURIComponent(phone)}`, { method: 'GET' });
  return r.code;
}

/** Sign in against a dev node in one step: request a code, read it from the outbox, verify it. */
export async function devSignIn(base: string, apiKey: string, phone: string, device?: { name?: string; platform?: string }): Promise<SessionInfo> {
  await requestCode(base, apiKey, phone);
  return verifyCode(base, apiKey, phone, await devCode(base, phone), device);
}

export function me(base: string, token: string): Promise<{ valid: boolean; user: string; device: string; phone: string; name: string }> {
  return call(`${base}/v1/accounts/me`, { method: 'GET', headers: { authorization: `Bearer ${token}` } });
}

/** A fresh token for this device (the old one keeps working until it expires or the device is signed out). */
export function renewToken(base: string, token: string): Promise<{ token: string; expiresAt: number }> {
  return call(`${base}/v1/accounts/token`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
}

/** The user's signed-in devices, oldest first; the caller's is `current`. */
export async function listDevices(base: string, token: string): Promise<DeviceInfo[]> {
  return (await call<{ devices: DeviceInfo[] }>(`${base}/v1/devices`, { method: 'GET', headers: { authorization: `Bearer ${token}` } })).devices;
}

function signOutCall(base: string, token: string, body: { scope: 'this' | 'others' | 'all' } | { device: string }): Promise<SignOutResult> {
  return call(`${base}/v1/devices/signout`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
}
/** Signs this device out (`all`: every device of the user). */
export const signOut = (base: string, token: string, scope: 'this' | 'all' = 'this'): Promise<SignOutResult> => signOutCall(base, token, { scope });
export const signOutDevice = (base: string, token: string, device: string): Promise<SignOutResult> => signOutCall(base, token, { device });
export const signOutOthers = (base: string, token: string): Promise<SignOutResult> => signOutCall(base, token, { scope: 'others' });

export interface UploadedMedia { id: string; size: number; mime: string; url: string; urlExpiresAt: number }

/**
 * `url` is a signed URL for this media (relative to `base`), good until `urlExpiresAt`, for tags that can't send
 * headers. `onProgress` (bytes sent, of total) needs XMLHttpRequest (browsers): fetch reports no upload progress.
 */
export function uploadMedia(base: string, token: string, bytes: Uint8Array | Blob, mime: string, opts: { onProgress?: (sent: number, total: number) => void } = {}): Promise<UploadedMedia> {
  const XHR = (globalThis as { XMLHttpRequest?: typeof XMLHttpRequest }).XMLHttpRequest;
  if (!opts.onProgress || !XHR) {
    return call(`${base}/v1/media`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': mime }, body: bytes as unknown as BodyInit });
  }
  const onProgress = opts.onProgress;
  return new Promise((resolve, reject) => {
    const xhr = new XHR();
    xhr.open('POST', `${base}/v1/media`);
    xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.setRequestHeader('content-type', mime);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.onerror = () => reject(new HttpError(0, 'network', 'the upload failed: no answer from the node'));
    xhr.onload = () => {
      let body: { error?: { code: string; message: string } } = {};
      try { body = JSON.parse(xhr.responseText || '{}') as typeof body; } catch { /* not JSON: a proxy's page */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as UploadedMedia);
      else reject(new HttpError(xhr.status, body.error?.code ?? 'http_error', body.error?.message ?? `HTTP ${xhr.status}`));
    };
    xhr.send(bytes as unknown as XMLHttpRequestBodyInit);
  });
}

/**
 * A short-lived signed URL (relative to `base`) for media the user may see, for <img>/<video> tags and other
 * places that can't send an Authorization header. The session token itself never goes in a URL.
 */
export function mediaUrl(base: string, token: string, id: string): Promise<{ url: string; expiresAt: number }> {
  return call(`${base}/v1/media/${encodeURIComponent(id)}/url`, { method: 'GET', headers: { authorization: `Bearer ${token}` } });
}

/** The media's bytes, for a user who may see it (the uploader, or a member of a conversation that names it). */
export async function downloadMedia(base: string, token: string, id: string): Promise<Uint8Array> {
  const res = await fetch(`${base}/v1/media/${encodeURIComponent(id)}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
    throw new HttpError(res.status, body.error?.code ?? 'http_error', body.error?.message ?? `HTTP ${res.status}`);
  }
  return new Uint8Array(await res.arrayBuffer());
}
