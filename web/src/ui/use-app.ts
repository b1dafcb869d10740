import { useEffect, useReducer } from 'preact/hooks';
import type { ChatApp } from '../chat-app.js';

/** Re-renders the component whenever the app's state changes (batched to one render per frame). */
export function useApp(app: ChatApp): void {
  const [, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    let queued = false;
    return app.subscribe(() => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => { queued = false; bump(0); });
    });
  }, [app]);
}
