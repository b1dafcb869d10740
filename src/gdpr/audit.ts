import pino from 'pino';

/**
 * The audit log: who did what to whose data, when. A pino destination of its own (a file, `PARLEY_AUDIT_LOG`,
 * `<data>/audit.log` by default), not the operational log and not a store table: it must outlive the data it
 * describes (an erasure removes the user's rows, not the record that they were removed), it is append-only
 * and shipped to whatever keeps evidence, and it must not share the operational log's level (an operator at
 * `warn` still records every erasure). A line carries the acting user's id, or `admin`, and nothing else
 * personal: no phone, name, token, address or message.
 *
 *   {"log":"audit","t":"<ISO time>","node":"n…","actor":"<user id>","subject":"<user id>","detail":{…},"audit":"erasure.done"}
 */
export type AuditAction =
  | 'export.requested' | 'export.fetched'
  | 'erasure.requested' | 'erasure.refused' | 'erasure.resumed' | 'erasure.done'
  | 'admin.faults' | 'admin.view';

export interface AuditEntry {
  action: AuditAction;
  /** The user id that acted, or `admin` (the operator's key), or `node` (a restart resuming an erasure). */
  actor: string;
  /** The user whose data it is. */
  subject?: string;
  /** Small facts about the action: counts, a job id, an error code. Never personal data. */
  detail?: Record<string, string | number | boolean>;
}

export interface Audit {
  write(e: AuditEntry): void;
  close(): void;
}

/** `path` `-` writes to stdout (containers); anything else is a file, appended to, created 0600. */
export function openAudit(path: string, node: string): Audit {
  const dest = pino.destination({ dest: path === '-' ? 1 : path, sync: true, mkdir: true, append: true });
  // No level (every line is a record): its place names the log instead, so a line shipped elsewhere says what it is.
  const logger = pino({ base: undefined, messageKey: 'audit', timestamp: false, formatters: { level: () => ({ log: 'audit' }) }, mixin: () => ({ t: new Date().toISOString(), node }) }, dest);
  return {
    write: (e) => logger.info({ actor: e.actor, ...(e.subject ? { subject: e.subject } : {}), ...(e.detail ? { detail: e.detail } : {}) }, e.action),
    close: () => { if (path !== '-') dest.destroy(); },
  };
}
