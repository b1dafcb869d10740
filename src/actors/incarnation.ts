import { randomBytes } from 'node:crypto';

/** Incarnation names: unique per node process (the prefix) and per entity activation (the counter). */
const PREFIX = randomBytes(4).toString('hex');
let count = 0;

/**
 * A name for one activation of an entity. Store completions and timers it starts come back into its mailbox
 * tagged with it, and only that activation acts on them: one that crashed or was passivated meanwhile is
 * gone, and its successor ignores them.
 */
export const newIncarnation = (): string => `${PREFIX}.${(++count).toString(36)}`;
