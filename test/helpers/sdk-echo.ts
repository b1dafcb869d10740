/**
 * An app built on the SDK, run as its own process by the TLS test: `node sdk-echo.js URL PHONE`. It signs in
 * (dev outbox) with accounts-api, connects with ParleyClient, prints one JSON line `{"t":"ready","user":…}`,
 * then answers every text it receives with "echo: <text>" and prints `{"t":"message",…}`. It trusts a
 * private CA the way any Node app does, with NODE_EXTRA_CA_CERTS; the SDK itself has no TLS settings.
 * It exits when stdin closes.
 */
import { devSignIn } from '../../src/client/accounts-api.js';
import { ParleyClient } from '../../src/client/parley-client.js';
import { API_KEY } from './clients.js';

const say = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function main(): Promise<void> {
  const [url, phone] = process.argv.slice(2);
  if (!url || !phone) throw new Error('usage: sdk-echo URL PHONE');
  const session = await devSignIn(url, API_KEY, phone, { name: 'sdk-echo', platform: 'test' });
  const client = new ParleyClient({ url, token: session.token, reconnect: false });
  client.on('message', (m) => {
    const text = (m.body as { text?: string } | undefined)?.text;
    say({ t: 'message', from: m.from, conv: m.conv, text });
    if (m.from !== session.user && text !== undefined) void client.text({ conv: m.conv }, `echo: ${text}`);
  });
  await client.connect();
  say({ t: 'ready', user: session.user });
  process.stdin.resume();
  process.stdin.on('end', () => { client.close(); process.exit(0); });
}

main().catch((err) => {
  say({ t: 'failed', error: String((err as Error)?.cause ?? err), message: (err as Error)?.message });
  process.exit(1);
});
