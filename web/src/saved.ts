import type { SessionInfo } from '../../src/client/accounts-api.js';
import type { ConversationsSnapshot } from '../../src/client/conversations.js';

/** What this browser keeps between visits, in localStorage: the session, the inbox pointer, the chat list. */
export interface SavedSession extends SessionInfo { phone: string }
/** `names`: users' profile names and groups' names as last seen, so the list reads well before the node answers. */
export interface SavedState { ptr: number; convs?: ConversationsSnapshot; contacts: string[]; phones: Record<string, string>; names: Record<string, string> }

const SESSION = 'parley.session';
const STATE = 'parley.state';

function read<T>(key: string): T | undefined {
  try {
    const s = localStorage.getItem(key);
    return s ? (JSON.parse(s) as T) : undefined;
  } catch {
    return undefined; // storage off (private mode) or damaged: start afresh
  }
}

function write(key: string, value: unknown): void {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* storage full or off: kept in memory only */ }
}

export const loadSession = (): SavedSession | undefined => read<SavedSession>(SESSION);
export const saveSession = (s: SavedSession): void => write(SESSION, s);

/** The state belongs to one device: a different sign-in starts from nothing. */
export function loadState(device: string): SavedState {
  const s = read<SavedState & { device: string }>(STATE);
  return s && s.device === device ? { ...s, names: s.names ?? {} } : { ptr: 0, contacts: [], phones: {}, names: {} };
}
export const saveState = (device: string, s: SavedState): void => write(STATE, { ...s, device });

export function forget(): void {
  try { localStorage.removeItem(SESSION); localStorage.removeItem(STATE); } catch { /* nothing kept */ }
}
