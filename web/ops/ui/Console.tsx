import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { AnalyticsReport, ClusterStatus, LivePoint, LiveReport, SupervisionTree } from '../../../src/ops/admin-api.js';
import { AdminApi, AdminError } from '../api.js';
import { duration } from '../format.js';
import { KeyForm } from './KeyForm.js';
import { LivePanel } from './LivePanel.js';
import { TreePanel, CrashLoops } from './TreePanel.js';
import { AnalyticsPanel } from './AnalyticsPanel.js';

const KEY = 'parley.ops.key';
/** The node keeps 300 points (10 minutes at 2 s); so does the page. */
const KEEP = 300;

interface Snapshot { live?: LiveReport; points: LivePoint[]; tree?: SupervisionTree; cluster?: ClusterStatus; analytics?: AnalyticsReport; analyticsError?: string }

/** Polls `f` every `ms` while mounted, at once first; a failure goes to `fail`. */
function usePoll(ms: number, f: () => Promise<void>, fail: (e: unknown) => void, deps: unknown[]): void {
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = () => f().catch(fail).finally(() => { if (!stopped) timer = setTimeout(tick, ms); });
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  }, deps);
}

export function Console() {
  const [key, setKey] = useState(() => sessionStorage.getItem(KEY) ?? '');
  const [refused, setRefused] = useState<string>();
  const signOut = (why?: string) => { sessionStorage.removeItem(KEY); setKey(''); setRefused(why); };
  if (!key) {
    return <KeyForm refused={refused} onKey={(k) => { sessionStorage.setItem(KEY, k); setRefused(undefined); setKey(k); }} />;
  }
  return <Signed key={key} api={new AdminApi(key)} onRefused={signOut} />;
}

function Signed({ api, onRefused }: { api: AdminApi; onRefused: (why?: string) => void }) {
  const [s, setS] = useState<Snapshot>({ points: [] });
  const [days, setDays] = useState(7);
  const [down, setDown] = useState<string>();
  const fail = (e: unknown) => {
    if (e instanceof AdminError && e.status === 401) onRefused(e.message);
    else setDown(e instanceof Error ? e.message : String(e));
  };

  // The newest point held, and whose: a restarted node (a new id) starts a new series.
  const latest = useRef({ node: '', at: 0 });
  usePoll(2000, async () => {
    const live = await api.live(latest.current.node ? latest.current.at : 0);
    const fresh = live.node !== latest.current.node;
    latest.current = { node: live.node, at: live.points.at(-1)?.at ?? latest.current.at };
    setDown(undefined);
    setS((p) => ({ ...p, live, points: [...(fresh ? [] : p.points), ...live.points].slice(-KEEP) }));
  }, fail, []);
  usePoll(3000, async () => {
    const tree = await api.tree(10);
    setS((p) => ({ ...p, tree }));
  }, fail, []);
  usePoll(5000, async () => {
    if (!s.live?.cluster) return;
    const cluster = await api.cluster();
    setS((p) => ({ ...p, cluster }));
  }, fail, [s.live?.cluster]);
  usePoll(60_000, async () => {
    try {
      const analytics = await api.analytics(days);
      setS((p) => ({ ...p, analytics, analyticsError: undefined }));
    } catch (e) {
      if (e instanceof AdminError && e.status !== 401) setS((p) => ({ ...p, analyticsError: e.message }));
      else throw e;
    }
  }, fail, [days]);

  const { live, tree, cluster } = s;
  const loops = useMemo(() => tree?.regions.flatMap((r) => r.crashLooping.map((e) => ({ ...e, type: r.type }))) ?? [], [tree]);
  return (
    <div class="ops">
      <header class="top">
        <h1>Parley ops</h1>
        {live && (
          <dl class="facts" aria-label="This node">
            <div><dt>node</dt><dd data-testid="node-id">{live.node}</dd></div>
            <div><dt>store</dt><dd>{live.store}</dd></div>
            <div><dt>up</dt><dd>{duration(live.at - live.startedAt)}</dd></div>
            <div><dt>cluster</dt><dd>{cluster ? `${cluster.members.length} nodes · ${cluster.shards.owned}/${cluster.shards.total} shards here` : live.cluster ? '…' : 'alone'}</dd></div>
          </dl>
        )}
        <button type="button" class="small" onClick={() => onRefused()}>Sign out</button>
      </header>
      {down && <p class="banner down" role="alert">Not updating: {down}</p>}
      <CrashLoops loops={loops} />
      <main>
        <LivePanel points={s.points} intervalMs={live?.intervalMs ?? 2000} />
        <TreePanel tree={tree} cluster={cluster} />
        <AnalyticsPanel report={s.analytics} error={s.analyticsError} days={days} onDays={setDays} />
      </main>
    </div>
  );
}
