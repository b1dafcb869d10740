import pino from 'pino';
import { traceFields } from './ops/trace.js';

/**
 * One-line JSON logs on stderr (pino): greppable by people, parseable by collectors. A line is
 * `{"level":"info","t":"<ISO time>","req":…,"conn":…,<fields>,"msg":…}`: `req`/`conn` name the frame or HTTP
 * request being handled when the line was written (src/ops/trace.ts).
 *
 * Nothing that identifies or authenticates a person is written: fields named below are censored wherever
 * they sit (top level or one level down), and phone numbers and session tokens are blanked inside any
 * other string (an error's message, a list), since an error can quote its input.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: ReadonlySet<string> = new Set<Level>(['debug', 'info', 'warn', 'error']);

/** Field names never logged as they are: phone numbers, one-time codes and SMS texts, tokens and keys, bodies. */
export const REDACTED_FIELDS = [
  'phone', 'phones', 'text', 'body', 'code', 'otp', 'token', 'tokens', 'secret', 'password',
  'authorization', 'key', 'apiKey', 'adminKey',
] as const;
export const CENSOR = '[redacted]';

const PHONE = /\+\d{6,15}/g;
const TOKEN = /\bv1\.[\w-]{8,}\.[\w-]{8,}/g;
const scrub = (s: string): string => s.replace(PHONE, CENSOR).replace(TOKEN, CENSOR);

/** The line's fields with phone numbers and tokens blanked in its strings (and arrays of strings); the caller's object is left as it was. */
function scrubStrings(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in o) {
    const v = o[k];
    out[k] = typeof v === 'string' ? scrub(v) : Array.isArray(v) ? v.map((x: unknown) => (typeof x === 'string' ? scrub(x) : x)) : v;
  }
  return out;
}

const logger = pino({
  level: 'info',
  base: undefined, // no pid and hostname: a collector adds where a line came from
  messageKey: 'msg',
  timestamp: () => `,"t":"${new Date().toISOString()}"`,
  formatters: {
    level: (label) => ({ level: label }),
    log: scrubStrings,
  },
  mixin: traceFields,
  redact: { paths: REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`]), censor: CENSOR },
}, pino.destination({ dest: 2, sync: true })); // sync: a line written before a crash is not lost

export const setLogLevel = (level: Level): void => { logger.level = LEVELS.has(level) ? level : 'info'; };

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  logger[level](fields, msg);
}
