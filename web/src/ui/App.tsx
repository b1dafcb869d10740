import { useEffect, useMemo, useState } from 'preact/hooks';
import { ChatApp } from '../chat-app.js';
import { forget, loadSession, saveSession, type SavedSession } from '../saved.js';
import { SignIn } from './SignIn.js';
import { Shell } from './Shell.js';
import { MapContext, type MapTiles } from './LocationMap.js';

export interface WebConfig { apiKey: string; devOutbox: boolean; vapidPublicKey?: string; map?: MapTiles }

/** The page and its node are one origin: the node serves it (src/http/web-routes.ts). */
const BASE = location.origin;

export function App() {
  const [config, setConfig] = useState<WebConfig>();
  const [failed, setFailed] = useState<string>();
  const [session, setSession] = useState<SavedSession | undefined>(loadSession);

  useEffect(() => {
    fetch(`${BASE}/v1/web/config`).then((r) => r.json() as Promise<WebConfig>).then(setConfig, (e: Error) => setFailed(e.message));
  }, []);

  const signedIn = (s: SavedSession | undefined) => {
    if (s) saveSession(s);
    else forget();
    setSession(s);
  };

  if (failed) return <main class="center"><p role="alert">The node did not answer: {failed}</p></main>;
  if (!config) return <main class="center"><p>Loading…</p></main>;
  if (!session) return <SignIn base={BASE} config={config} onSignedIn={signedIn} />;
  return <Chat key={session.device} config={config} session={session} onSession={signedIn} />;
}

function Chat({ config, session, onSession }: { config: WebConfig; session: SavedSession; onSession: (s: SavedSession | undefined) => void }) {
  // A renewed token is saved without a new app: the client already uses it.
  const app = useMemo(() => new ChatApp(BASE, session, (s) => (s ? saveSession(s) : onSession(undefined))), [session.device]);
  useEffect(() => { app.start(); return () => app.stop(); }, [app]);
  return (
    <MapContext.Provider value={config.map}>
      <Shell app={app} vapidPublicKey={config.vapidPublicKey} onSignOut={() => onSession(undefined)} />
    </MapContext.Provider>
  );
}
