import { useState } from 'preact/hooks';

/** A form's submit: busy while it runs, and its error to show. */
export function useAction() {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const run = (f: () => Promise<void>) => async (ev: Event) => {
    ev.preventDefault();
    setBusy(true);
    setError(undefined);
    try { await f(); } catch (e) { setError((e as Error).message); } finally { setBusy(false); }
  };
  return { error, busy, run };
}
