import { useEffect, useMemo, useRef, useState } from 'react';
import {
  activeRunIdFrom,
  api,
  isActive,
  isTransientError,
  parseRunQuery,
  RUN_STATUSES,
  runQueryString,
  type Run,
  type RunPage,
  type RunQuery,
  type RunStatus,
} from '../api';
import { HttpError } from '../logstream/http';
import { Banner, ExitCode, StatusBadge } from '../components';
import { formatBytes, formatRelative, formatTimestamp, runDuration, shortId } from '../format';
import { usePolling, useNow } from '../hooks';
import { Link, navigate, useSearch } from '../router';
import {
  appendOlder,
  formatMetric,
  latestValues,
  mergeNewest,
  metricColumn,
  runsAddress,
  shortCommit,
  type LatestPoint,
} from '../runList';

// The run page's code, fetched once the list is on screen and the browser is idle, so opening
// a run needs no download (the runs page itself never waits for it).
const prefetchRunPage = () => void import('./RunPage');

function NewRun({ onStarted }: { onStarted: () => void }) {
  const configs = usePolling('configs', (s) => api.listConfigs(s), null);
  const [config, setConfig] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ message: string; activeId: string | null } | null>(null);

  const list = configs.data ?? [];
  // The user's pick, else the first config (derived, so it can never overwrite a pick).
  const selected = config && list.includes(config) ? config : (list[0] ?? '');

  const start = async () => {
    if (!selected) return;
    setBusy(true);
    setError(null);
    try {
      const run = await api.startRun(selected);
      onStarted();
      navigate(`/runs/${run.id}`);
    } catch (e) {
      if (e instanceof HttpError && e.status === 409) {
        const activeId = activeRunIdFrom(e.message);
        setError({
          message: activeId
            ? `Run ${shortId(activeId)} is still active: only one run at a time. Wait for it to finish or cancel it.`
            : `A run is already active: ${e.message}`,
          activeId,
        });
      } else {
        setError({ message: `Could not start the run: ${e instanceof Error ? e.message : String(e)}`, activeId: null });
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="newrun">
      <div className="newrun-controls">
        <label className="newrun-label" htmlFor="newrun-config">
          New run
        </label>
        <select
          id="newrun-config"
          aria-label="Config"
          value={selected}
          onChange={(e) => setConfig(e.target.value)}
          disabled={busy || list.length === 0}
        >
          {list.length === 0 && <option value="">{configs.loading ? 'Loading configs…' : 'No configs'}</option>}
          {list.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
        <button type="button" className="btn btn-primary" onClick={() => void start()} disabled={busy || !selected}>
          {busy ? 'Starting…' : 'Start run'}
        </button>
      </div>
      {configs.error && <Banner kind="error">Could not list configs: {configs.error.message}</Banner>}
      {!configs.loading && !configs.error && list.length === 0 && (
        <Banner kind="info">No configs to run: put config files in the server's config directory.</Banner>
      )}
      {error && (
        <Banner kind={error.activeId ? 'warn' : 'error'}>
          <span data-testid="newrun-error">{error.message}</span>
          {error.activeId && (
            <>
              {' '}
              <Link href={`/runs/${error.activeId}`}>Open the active run →</Link>
            </>
          )}
        </Banner>
      )}
    </div>
  );
}

/** The newest page for `query`, polled every 2 s with If-None-Match (304: nothing to redraw). */
function useNewestRuns(query: RunQuery, key: string) {
  const last = useRef<{ key: string; etag: string | null; page: RunPage } | null>(null);
  return usePolling(
    `runs${key}`,
    async (signal) => {
      const known = last.current?.key === key ? last.current : null;
      const answer = await api.listRunsIfChanged(query, null, known?.etag ?? null, signal);
      if (answer === null && known) return known.page;
      if (answer === null) throw new Error('unexpected 304');
      last.current = { key, etag: answer.etag, page: answer.page };
      return answer.page;
    },
    2000,
  );
}

interface Shown {
  key: string;
  runs: Run[];
  /** Where older runs continue (null: none left); once one is loaded, the first page no longer sets it. */
  cursor: string | null;
  loadedOlder: boolean;
}

function RunFilters({ query, metric }: { query: RunQuery; metric: string | null }) {
  const [text, setText] = useState(query.q);
  const [tag, setTag] = useState('');
  const go = (next: RunQuery) => navigate(runsAddress(next, metric), { replace: true });
  useEffect(() => setText(query.q), [query.q]);
  useEffect(() => {
    if (text === query.q) return undefined;
    // Typing settles before the address (and the list) follows.
    const t = setTimeout(() => go({ ...query, q: text }), 300);
    return () => clearTimeout(t);
  });
  const toggle = (s: RunStatus) =>
    go({ ...query, statuses: query.statuses.includes(s) ? query.statuses.filter((x) => x !== s) : [...query.statuses, s] });
  const addTag = () => {
    const t = tag.trim().replace('=', ':');
    if (!t.includes(':') || query.tags.includes(t)) return;
    setTag('');
    go({ ...query, tags: [...query.tags, t] });
  };
  return (
    <div className="filters" data-testid="run-filters">
      <div className="filter-statuses" role="group" aria-label="Status">
        {RUN_STATUSES.map((s) => (
          <button
            key={s}
            type="button"
            className={`btn btn-small filter-status${query.statuses.includes(s) ? ' on' : ''}`}
            aria-pressed={query.statuses.includes(s)}
            onClick={() => toggle(s)}
          >
            {s}
          </button>
        ))}
      </div>
      <input
        className="filter-text"
        type="search"
        aria-label="Search runs"
        placeholder="Search name, config, command"
        value={text}
        onChange={(e) => setText(e.target.value)}
      />
      <input
        className="filter-tag"
        aria-label="Add tag filter"
        placeholder="tag key:value ⏎"
        value={tag}
        onChange={(e) => setTag(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') addTag();
        }}
      />
      {query.tags.map((t) => (
        <button
          key={t}
          type="button"
          className="chip chip-tag"
          title="Remove this filter"
          onClick={() => go({ ...query, tags: query.tags.filter((x) => x !== t) })}
        >
          {t} ×
        </button>
      ))}
      <MetricPicker query={query} metric={metric} />
    </div>
  );
}

/** Names offered for the metric column; any series name may be typed. */
const SUGGESTED_METRICS = ['loss', 'val_loss', 'accuracy', 'val_acc', 'lr', 'grad_norm'];

/** Which metric's latest value the list shows as a column, kept in the address (`?metric=`). */
function MetricPicker({ query, metric }: { query: RunQuery; metric: string | null }) {
  const [name, setName] = useState(metric ?? '');
  useEffect(() => setName(metric ?? ''), [metric]);
  const choose = (next: string) => {
    const picked = next.trim() || null;
    if (picked !== metric) navigate(runsAddress(query, picked), { replace: true });
  };
  return (
    <>
      <input
        className="filter-tag filter-metric"
        aria-label="Metric column"
        placeholder="metric column ⏎"
        list="metric-names"
        maxLength={64}
        value={name}
        onChange={(e) => setName(e.target.value)}
        onBlur={() => choose(name)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') choose(name);
        }}
      />
      <datalist id="metric-names">
        {SUGGESTED_METRICS.map((m) => (
          <option key={m} value={m} />
        ))}
      </datalist>
    </>
  );
}

/**
 * Each shown run's latest value of series `name`: asked again whenever the list changes, every
 * 2 s while a run is live, every 10 s otherwise (an ended run's last lines are extracted just
 * after it ends). The last answer stays on screen while the next loads.
 */
function useLatestMetric(name: string | null, runs: Run[] | null): Record<string, LatestPoint> | null {
  const ids = (runs ?? []).map((r) => r.id);
  const live = (runs ?? []).some((r) => isActive(r.status));
  const polled = usePolling(
    `metric:${name ?? ''}:${ids.join(',')}`,
    async (signal) => (name && ids.length > 0 ? latestValues(name, ids, signal) : {}),
    () => (name ? (live ? 2000 : 10_000) : null),
  );
  const last = useRef<{ name: string | null; values: Record<string, LatestPoint> } | null>(null);
  if (polled.data) last.current = { name, values: polled.data };
  return last.current?.name === name ? last.current.values : null;
}

function Tags({ tags }: { tags: Run['tags'] }) {
  const entries = Object.entries(tags ?? {});
  if (entries.length === 0) return <span className="muted">—</span>;
  return (
    <span className="tags">
      {entries.map(([k, v]) => (
        <span key={k} className="chip chip-tag mono">
          {k}:{v}
        </span>
      ))}
    </span>
  );
}

function MetricCell({ point, loading }: { point: LatestPoint | undefined; loading: boolean }) {
  if (!point) return <td className="num muted metric-value">{loading ? '…' : '—'}</td>;
  return (
    <td className="num mono metric-value" title={`step ${point.step}, line ${point.line}`}>
      {formatMetric(point.value)}
    </td>
  );
}

export function RunsPage() {
  const search = useSearch();
  const query = useMemo(() => parseRunQuery(search), [search]);
  const metric = metricColumn(search);
  const key = runQueryString(query);
  const newest = useNewestRuns(query, key);
  const [shown, setShown] = useState<Shown | null>(null);
  const [older, setOlder] = useState<{ loading: boolean; error: string | null }>({ loading: false, error: null });
  const page = newest.data;
  useEffect(() => {
    if (!page) return;
    setShown((prev) =>
      prev && prev.key === key
        ? {
            ...prev,
            runs: mergeNewest(prev.runs, page.runs, !prev.loadedOlder && page.next_cursor === null),
            cursor: prev.loadedOlder ? prev.cursor : page.next_cursor,
          }
        : { key, runs: page.runs, cursor: page.next_cursor, loadedOlder: false },
    );
  }, [page, key]);
  const current = shown?.key === key ? shown : null;
  const list = current?.runs ?? null;
  const anyActive = (list ?? []).some((r) => isActive(r.status));
  const now = useNow(1000, anyActive);
  const latest = useLatestMetric(metric, list);
  useEffect(() => {
    document.title = 'Runs · trainlog';
  }, []);
  const painted = list !== null;
  useEffect(() => {
    if (!painted) return;
    const idle = window.requestIdleCallback ?? ((f: () => void) => window.setTimeout(f, 200));
    idle(prefetchRunPage);
  }, [painted]);

  const loadOlder = async () => {
    if (!current?.cursor) return;
    setOlder({ loading: true, error: null });
    try {
      const answer = await api.listRunsIfChanged(query, current.cursor, null);
      if (answer) {
        setShown((prev) =>
          prev && prev.key === key
            ? { ...prev, runs: appendOlder(prev.runs, answer.page.runs), cursor: answer.page.next_cursor, loadedOlder: true }
            : prev,
        );
      }
      setOlder({ loading: false, error: null });
    } catch (e) {
      setOlder({ loading: false, error: e instanceof Error ? e.message : String(e) });
    }
  };
  const filtered = key !== '';

  return (
    <main className="page">
      <div className="page-head">
        <div>
          <h1>Runs</h1>
          <p className="muted subtitle">Training runs, newest first. Logs stream live and are stored losslessly.</p>
        </div>
        <NewRun onStarted={newest.reload} />
      </div>

      <RunFilters query={query} metric={metric} />

      {newest.error && (
        <Banner kind={isTransientError(newest.error) ? 'warn' : 'error'}>
          Could not load runs: {newest.error.message}{' '}
          <button type="button" className="btn btn-small" onClick={newest.reload}>
            Retry
          </button>
        </Banner>
      )}

      {newest.loading && !list && <div className="empty">Loading runs…</div>}

      {list && list.length === 0 && (
        <div className="empty">
          <div className="empty-title">{filtered ? 'No runs match these filters' : 'No runs yet'}</div>
          <div className="muted">
            {filtered ? 'Change or clear the filters above.' : 'Pick a config and press “Start run” to launch one.'}
          </div>
        </div>
      )}

      {list && list.length > 0 && (
        <div className="table-wrap">
          <table className="runs" data-testid="runs-table">
            <thead>
              <tr>
                <th>Status</th>
                <th>Run</th>
                <th>Config</th>
                <th>Tags</th>
                <th>Host</th>
                <th>Commit</th>
                <th>Started</th>
                <th className="num">Duration</th>
                <th className="num">Log</th>
                <th className="num">Exit</th>
                {metric && (
                  <th className="num metric-col" data-testid="metric-column">
                    {metric}
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {list.map((r: Run) => (
                <tr
                  key={r.id}
                  className="run-row"
                  data-run-id={r.id}
                  onClick={(e) => {
                    if ((e.target as HTMLElement).closest('a')) return;
                    navigate(`/runs/${r.id}`);
                  }}
                >
                  <td title={r.error ?? undefined}>
                    <StatusBadge status={r.status} />
                  </td>
                  <td>
                    <Link href={`/runs/${r.id}`} className="run-link mono">
                      {shortId(r.id)}
                    </Link>
                    {r.name && <span className="run-name"> {r.name}</span>}
                  </td>
                  <td>{r.config ?? <span className="muted">—</span>}</td>
                  <td>
                    <Tags tags={r.tags} />
                  </td>
                  <td className="muted">{r.host ?? '—'}</td>
                  <td className="mono muted" title={r.git?.branch ?? undefined}>
                    {shortCommit(r.git) ?? '—'}
                  </td>
                  <td title={formatTimestamp(r.started_at ?? r.created_at)}>
                    {formatRelative(r.started_at ?? r.created_at, now)}
                  </td>
                  <td className="num">{runDuration(r.started_at, r.finished_at, now)}</td>
                  <td className="num muted">{formatBytes(r.log_size)}</td>
                  <td className="num">
                    <ExitCode code={r.exit_code} />
                  </td>
                  {metric && <MetricCell point={latest?.[r.id]} loading={latest === null} />}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {current?.cursor && (
        <div className="more">
          <button type="button" className="btn" onClick={() => void loadOlder()} disabled={older.loading}>
            {older.loading ? 'Loading…' : 'Older runs'}
          </button>
        </div>
      )}
      {older.error && <Banner kind="error">Could not load older runs: {older.error}</Banner>}
    </main>
  );
}
