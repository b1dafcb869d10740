import { useState } from 'preact/hooks';

export function KeyForm({ refused, onKey }: { refused?: string; onKey: (key: string) => void }) {
  const [key, setKey] = useState('');
  return (
    <div class="center">
      <form class="card" aria-label="Sign in to the ops console" onSubmit={(e) => { e.preventDefault(); if (key.trim()) onKey(key.trim()); }}>
        <h1>Parley ops</h1>
        <label>Admin key
          <input type="password" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} required />
        </label>
        <p class="hint">The node's <code>PARLEY_ADMIN_KEY</code>. It stays in this tab only.</p>
        {refused && <p class="error" role="alert">{refused}</p>}
        <button type="submit">Open the console</button>
      </form>
    </div>
  );
}
