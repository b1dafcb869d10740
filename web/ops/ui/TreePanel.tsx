import type { ClusterStatus, EntityRow, RegionNode, SupervisionTree } from '../../../src/ops/admin-api.js';
import { count, duration } from '../format.js';

const KINDS: Record<string, string> = { user: 'Users', conv: 'Conversations', group: 'Groups' };

/** Entities crashing again and again now: a poison message or a broken state. Shown above everything. */
export function CrashLoops({ loops }: { loops: (EntityRow & { type: string })[] }) {
  if (!loops.length) return <p class="banner ok" role="status">No entity is crash-looping.</p>;
  return (
    <div class="banner alarm" role="alert" aria-label="Crash loops">
      <strong>{loops.length === 1 ? 'An entity is crash-looping' : `${loops.length} entities are crash-looping`}</strong>
      <ul>{loops.map((e) => <li key={`${e.type}/${e.id}`}><code>{e.type}/{e.id}</code>: {e.recentCrashes} crashes in 10 s, {e.mailbox} waiting</li>)}</ul>
    </div>
  );
}

function Events({ r }: { r: RegionNode }) {
  const rows = ['spawned', 'passivated', 'crashed', 'stopped'] as const;
  return (
    <table class="events">
      <caption class="hidden">Lifecycle events</caption>
      <thead><tr><th scope="col">event</th><th scope="col">last minute</th><th scope="col">last hour</th><th scope="col">since start</th></tr></thead>
      <tbody>{rows.map((e) => (
        <tr key={e} class={e === 'crashed' && r.last.minute.crashed ? 'bad' : ''}>
          <th scope="row">{e}</th><td>{count(r.last.minute[e])}</td><td>{count(r.last.hour[e])}</td>
          <td>{count(e === 'crashed' ? r.crashes : r[e])}</td>
        </tr>
      ))}</tbody>
    </table>
  );
}

function Entities({ title, rows }: { title: string; rows: EntityRow[] }) {
  if (!rows.length) return null;
  return (
    <table class="entities">
      <caption>{title}</caption>
      <thead><tr><th scope="col">entity</th><th scope="col">state</th><th scope="col">mailbox</th><th scope="col">up</th><th scope="col">idle</th><th scope="col">crashes (10 s)</th></tr></thead>
      <tbody>{rows.map((e) => (
        <tr key={e.id} class={e.state === 'crashing' ? 'bad' : ''}>
          <td><code>{e.id}</code></td><td><span class={`state ${e.state}`}>{e.state}</span></td><td>{count(e.mailbox)}</td>
          <td>{duration(e.ageMs)}</td><td>{duration(e.idleMs)}</td><td>{e.recentCrashes}</td>
        </tr>
      ))}</tbody>
    </table>
  );
}

function Region({ r, at }: { r: RegionNode; at: number }) {
  const name = KINDS[r.type] ?? r.type;
  return (
    <details class="region" open aria-label={name} data-kind={r.type}>
      <summary>
        <strong>{name}</strong>
        <span class="chip" data-testid={`active-${r.type}`}>{count(r.active)} active</span>
        {r.loading > 0 && <span class="chip">{count(r.loading)} loading</span>}
        <span class={`chip ${r.mailbox.max > 100 ? 'warn' : ''}`}>mailboxes {count(r.mailbox.total)} (max {count(r.mailbox.max)})</span>
        {r.shards && <span class="chip">{count(r.shards.held)} shards</span>}
        {r.crashLooping.length > 0 && <span class="chip bad">{r.crashLooping.length} crash-looping</span>}
      </summary>
      <div class="region-body">
        <Events r={r} />
        <Entities title="Crash-looping" rows={r.crashLooping} />
        <Entities title="Busiest mailboxes" rows={r.busiest} />
        {r.shards && r.shards.fullest.length > 0 && (
          <p class="small">Fullest shards: {r.shards.fullest.map((s) => `#${s.shard} (${count(s.entities)})`).join(', ')}</p>
        )}
        {r.lastCrashes.length > 0 && (
          <div>
            <h4>Last crashes</h4>
            <ol class="crashes">{r.lastCrashes.slice(0, 5).map((c) => (
              <li key={`${c.id}@${c.at}`}>
                <code>{c.id}</code> {duration(at - c.at)} ago{c.message ? <> on <code>{c.message}</code></> : null}: <span class="reason">{c.reason}</span>
                {c.stopped && <span class="chip bad">stopped</span>}
              </li>
            ))}</ol>
          </div>
        )}
      </div>
    </details>
  );
}

function Cluster({ c }: { c: ClusterStatus }) {
  return (
    <details class="region" open aria-label="Cluster">
      <summary><strong>Cluster</strong><span class="chip">{c.members.length} members</span>
        <span class="chip">{c.shards.owned} owned · {c.shards.serving} serving · {c.shards.unowned} unowned of {c.shards.total}</span></summary>
      <ul class="members">{c.members.map((m) => (
        <li key={m}><code>{m}</code>{m === c.node ? ' (this node)' : c.urls[m] ? <> · <a href={`${c.urls[m]}/ops`}>its console</a></> : null}: {c.shards.byNode[m] ?? 0} shards</li>
      ))}</ul>
    </details>
  );
}

/** The node's supervision tree: node → cluster and shards → one region per entity kind → its entities. */
export function TreePanel({ tree, cluster }: { tree?: SupervisionTree; cluster?: ClusterStatus }) {
  return (
    <section aria-labelledby="tree-h" class="panel-box">
      <h2 id="tree-h">Supervision tree {tree && <span class="small">node {tree.node}</span>}</h2>
      {!tree ? <p class="hint">Loading…</p> : (
        <div class="tree">
          {cluster && <Cluster c={cluster} />}
          {tree.regions.map((r) => <Region key={r.type} r={r} at={tree.at} />)}
        </div>
      )}
    </section>
  );
}
