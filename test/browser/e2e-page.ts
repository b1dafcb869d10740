import { ParleyClient } from '../../src/client/parley-client.js';
import type { Message } from '../../src/protocol/frames.js';

/**
 * The page's side of the browser test: the SDK as a browser runs it (the browser's WebSocket and WebCrypto,
 * ts-mls bundled by esbuild), driven from the test through `window.parley`.
 */
const received: Message[] = [];
let client: ParleyClient | undefined;

const api = {
  async connect(url: string, token: string): Promise<{ user: string; device: string }> {
    client = new ParleyClient({ url, token, e2e: true, reconnect: false });
    client.on('message', (m) => received.push(m));
    const w = await client.connect();
    await client.e2e!.start();
    return { user: w.user, device: w.device };
  },
  async text(to: string, text: string): Promise<number> {
    return (await client!.text({ to }, text)).seq;
  },
  received(): { kind: string; text?: string; e2e?: boolean }[] {
    return received.map((m) => ({ kind: m.kind, text: (m.body as { text?: string } | undefined)?.text, e2e: (m as { e2e?: boolean }).e2e }));
  },
  safetyNumber(other: string): Promise<string> {
    return client!.safetyNumber(other);
  },
};

(globalThis as unknown as { parley: typeof api }).parley = api;
