import { useState } from 'preact/hooks';
import { devCode, requestCode, verifyCode } from '../../../src/client/accounts-api.js';
import type { SavedSession } from '../saved.js';
import type { WebConfig } from './App.js';

/** Phone number, then the one-time code (on a dev node, shown here from the node's dev SMS outbox). */
export function SignIn({ base, config, onSignedIn }: { base: string; config: WebConfig; onSignedIn: (s: SavedSession) => void }) {
  const [phone, setPhone] = useState('');
  const [code, setCode] = useState('');
  const [step, setStep] = useState<'phone' | 'code'>('phone');
  const [shown, setShown] = useState<string>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try { await f(); } catch (e) { setError((e as Error).message); } finally { setBusy(false); }
  };

  const askCode = (ev: Event) => {
    ev.preventDefault();
    void run(async () => {
      const p = phone.replace(/[\s()-]/g, '');
      await requestCode(base, config.apiKey, p);
      setPhone(p);
      setStep('code');
      if (config.devOutbox) setShown(await devCode(base, p).catch(() => undefined));
    });
  };

  const verify = (ev: Event) => {
    ev.preventDefault();
    void run(async () => {
      const s = await verifyCode(base, config.apiKey, phone, code.trim(), { name: browserName(), platform: 'web' });
      onSignedIn({ ...s, phone });
    });
  };

  return (
    <main class="center">
      <section class="card signin" aria-labelledby="signin-title">
        <h1 id="signin-title">Parley</h1>
        {!config.apiKey ? (
          <p role="alert">This node has no API key for its web client: its operator sets <code>PARLEY_WEB_API_KEY</code>.</p>
        ) : step === 'phone' ? (
          <form onSubmit={askCode}>
            <label for="phone">Phone number</label>
            <input id="phone" type="tel" autocomplete="tel" placeholder="+14155550101" value={phone} required
              onInput={(e) => setPhone(e.currentTarget.value)} />
            <button type="submit" disabled={busy}>Send code</button>
          </form>
        ) : (
          <form onSubmit={verify}>
            <p>A code was sent to {phone}.</p>
            {shown && <p class="devcode" role="status">Development node: your code is <strong data-testid="dev-code">{shown}</strong></p>}
            <label for="code">One-time code</label>
            <input id="code" inputMode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxLength={6} value={code} required
              onInput={(e) => setCode(e.currentTarget.value)} />
            <button type="submit" disabled={busy}>Sign in</button>
            <button type="button" class="link" onClick={() => { setStep('phone'); setCode(''); setShown(undefined); }}>Use another number</button>
          </form>
        )}
        {error && <p class="error" role="alert">{error}</p>}
      </section>
    </main>
  );
}

function browserName(): string {
  const ua = navigator.userAgent;
  const b = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  return `Web (${b})`;
}
