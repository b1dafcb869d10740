import type { Message } from '../../src/protocol/frames.js';
import type { TestDevice } from './clients.js';

/**
 * The checker of issue #11's ownership scenarios: it records every send and what answered it (a tick with
 * its seq, or an error), resends what a real client would resend (retryable errors, same cid), and then
 * checks what a user can see: no two ticked messages share a seq, and every ticked message is in the
 * conversation's history at its seq with its own body.
 */
export interface SendRecord { from: TestDevice; dest: { to: string } | { conv: string }; cid: string; text: string; seq?: number; dup?: boolean; error?: string; retryable?: boolean }

/** Sends `n` texts from `d` without waiting for each tick; resolves once every one was answered. */
export function sendBurst(d: TestDevice, dest: { to: string } | { conv: string }, label: string, n: number): Promise<SendRecord>[] {
  return Array.from({ length: n }, (_, i) => attempt({ from: d, dest, cid: `${label}-${i}`, text: `${label} #${i}` }));
}

async function attempt(r: SendRecord): Promise<SendRecord> {
  try {
    const sent = await r.from.client.send(r.dest, 'text', { text: r.text }, { cid: r.cid });
    return { ...r, seq: sent.seq, dup: sent.dup === true, error: undefined, retryable: undefined };
  } catch (err) {
    const e = err as { code?: string; retryable?: boolean };
    return { ...r, seq: undefined, error: e.code ?? String(err), retryable: e.retryable === true };
  }
}

/** Resends every retryable failure (same cid), up to `rounds` times, as the SDK's user would. */
export async function resendFailed(records: SendRecord[], rounds = 4): Promise<SendRecord[]> {
  let out = records;
  for (let i = 0; i < rounds && out.some((r) => r.retryable); i++) {
    out = await Promise.all(out.map((r) => (r.retryable ? attempt(r) : r)));
  }
  return out;
}

/** Every message of the conversation, paged ascending by seq (seqs may have gaps). */
export async function fullHistory(d: TestDevice, conv: string): Promise<Message[]> {
  const all: Message[] = [];
  for (let after = 0; ;) {
    const page = await d.client.history(conv, { after, limit: 200 });
    if (page.length === 0) return all;
    all.push(...page);
    after = page[page.length - 1]!.seq;
  }
}

export interface Verdict { ticked: number; failed: string[]; sharedSeqs: string[]; missing: string[] }

/** What the checker found; the test asserts its lists are empty. */
export async function judge(records: SendRecord[], reader: TestDevice, conv: string): Promise<Verdict> {
  const history = new Map((await fullHistory(reader, conv)).map((m) => [m.seq, m]));
  const bySeq = new Map<number, SendRecord>();
  const sharedSeqs: string[] = [];
  const missing: string[] = [];
  let ticked = 0;
  for (const r of records) {
    if (r.seq === undefined) continue;
    ticked++;
    const other = bySeq.get(r.seq);
    if (other && other.cid !== r.cid) sharedSeqs.push(`seq ${r.seq}: ${other.cid} and ${r.cid}`);
    bySeq.set(r.seq, r);
    const m = history.get(r.seq);
    const text = (m?.body as { text?: string } | undefined)?.text;
    if (!m || m.cid !== r.cid || text !== r.text) {
      missing.push(`${r.cid} ticked seq ${r.seq}${r.dup ? ' (dup)' : ''}, history has ${m ? `${m.cid} "${text}"` : 'nothing'}`);
    }
  }
  return { ticked, failed: records.filter((r) => r.seq === undefined).map((r) => `${r.cid}: ${r.error}`), sharedSeqs, missing };
}
