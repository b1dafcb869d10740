import { connect, type Socket } from 'node:net';

/** An HTTP request spoken by hand: the head at once, the body only as the test writes it (uploads that misbehave on purpose). */
export interface RawRequest { socket: Socket; response: Promise<string>; closed: Promise<void>; answeredAt(): number | undefined }

export function rawRequest(port: number, method: string, path: string, head: Record<string, string>, body = ''): RawRequest {
  const socket = connect(port, '127.0.0.1');
  let text = '';
  let at: number | undefined;
  socket.on('error', () => undefined); // a reset after the answer is fine
  const response = new Promise<string>((resolve) => {
    socket.on('data', (d) => {
      text += d.toString();
      at ??= Date.now();
      const split = text.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(text)?.[1] ?? 0);
      if (split >= 0 && Buffer.byteLength(text.slice(split + 4)) >= length) resolve(text);
    });
    socket.on('close', () => resolve(text));
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const lines = Object.entries({ host: '127.0.0.1', ...head }).map(([k, v]) => `${k}: ${v}`);
  socket.write(`${method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n${body}`);
  return { socket, response, closed, answeredAt: () => at };
}

/** The promise's value, or a rejection if it takes longer than `ms` (an upper bound, so a hang fails rather than stalls). */
export function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

export const statusOf = (response: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
export const jsonOf = (response: string): { error: { code: string; message: string } } =>
  JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
