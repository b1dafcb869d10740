import type { Message } from '../protocol/frames.js';
import type { UserId } from '../protocol/ids.js';

/**
 * One conversation's messages as a chat shows them: edits, deletes and reactions folded into the message
 * they target, in seq order, whatever order history pages and live deliveries arrive in (a page loaded on
 * scroll comes after newer live messages; an edit may come before its target's page is loaded).
 */

export interface TimelineItem {
  /** The message as sent (text, image, video, location, system). */
  m: Message;
  /** Its body now: the latest edit's, or none once deleted for everyone. */
  body?: Message['body'];
  edited: boolean;
  deleted: boolean;
  /** emoji → the users who reacted with it (a user's newest reaction replaces its earlier one). */
  reactions: Record<string, UserId[]>;
}

interface Mark { kind: 'edit' | 'delete' | 'reaction'; m: Message }

export class Timeline {
  private readonly items = new Map<number, TimelineItem>();
  /** Seqs of content messages, ascending. */
  private seqs: number[] = [];
  /** Per target seq, what acts on it, so a target loaded later still shows them. */
  private readonly marks = new Map<number, Mark[]>();
  private readonly applied = new Set<number>();

  get size(): number { return this.seqs.length; }
  get first(): number | undefined { return this.seqs[0]; }
  get last(): number | undefined { return this.seqs[this.seqs.length - 1]; }

  /** Items `from` (an index) to `to` (exclusive), in seq order. */
  slice(from = 0, to = this.seqs.length): TimelineItem[] {
    return this.seqs.slice(from, to).map((s) => this.items.get(s)!);
  }

  get(seq: number): TimelineItem | undefined { return this.items.get(seq); }

  /** The index of the first item at or above `seq` (`size` if none is). */
  indexOf(seq: number): number {
    let lo = 0;
    let hi = this.seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.seqs[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The seq at index `i`. */
  seqAt(i: number): number | undefined { return this.seqs[i]; }

  /** Adds messages (any order, repeats ignored); true if anything changed. */
  add(...ms: Message[]): boolean {
    let changed = false;
    const fresh: number[] = [];
    for (const m of ms) {
      if (this.applied.has(m.seq)) continue;
      this.applied.add(m.seq);
      changed = true;
      if ((m.kind === 'edit' || m.kind === 'delete' || m.kind === 'reaction') && m.target !== undefined) {
        const list = this.marks.get(m.target) ?? [];
        list.push({ kind: m.kind, m });
        this.marks.set(m.target, list);
        if (this.items.has(m.target)) this.fold(m.target);
        continue;
      }
      // History holds a message deleted for everyone without its body.
      this.items.set(m.seq, { m, body: m.body, edited: false, deleted: m.body === undefined && m.kind !== 'system', reactions: {} });
      fresh.push(m.seq);
      if (this.marks.has(m.seq)) this.fold(m.seq);
    }
    if (fresh.length) this.seqs = insertSorted(this.seqs, fresh);
    return changed;
  }

  /** Recomputes an item from its marks, in seq order (the log's order). */
  private fold(seq: number): void {
    const it = this.items.get(seq)!;
    const marks = [...(this.marks.get(seq) ?? [])].sort((a, b) => a.m.seq - b.m.seq);
    let body = it.m.body;
    let edited = false;
    let deleted = it.m.body === undefined && it.m.kind !== 'system';
    const byUser = new Map<UserId, string>();
    for (const k of marks) {
      if (k.kind === 'delete') { deleted = true; body = undefined; }
      else if (k.kind === 'edit' && !deleted && k.m.from === it.m.from) {
        body = { ...(body as Record<string, unknown> | undefined), text: (k.m.body as { text?: unknown } | undefined)?.text };
        edited = true;
      } else if (k.kind === 'reaction') {
        const emoji = (k.m.body as { emoji?: unknown } | undefined)?.emoji;
        if (typeof emoji === 'string' && emoji) byUser.set(k.m.from, emoji);
        else byUser.delete(k.m.from);
      }
    }
    const reactions: Record<string, UserId[]> = {};
    for (const [user, emoji] of byUser) (reactions[emoji] ??= []).push(user);
    this.items.set(seq, { m: it.m, body, edited, deleted, reactions });
  }
}

function insertSorted(into: number[], add: number[]): number[] {
  add.sort((a, b) => a - b);
  // The common cases: a newer live message (append), an older page (prepend).
  if (!into.length || add[0]! > into[into.length - 1]!) return into.concat(add);
  if (add[add.length - 1]! < into[0]!) return add.concat(into);
  return [...into, ...add].sort((a, b) => a - b);
}
