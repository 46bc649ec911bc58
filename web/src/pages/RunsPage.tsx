import { useEffect, useState } from 'react';
import { activeRunIdFrom, api, isActive, isTransientError, type Run } from '../api';
import { HttpError } from '../logstream/http';
import { Banner, ExitCode, StatusBadge } from '../components';
import { formatBytes, formatRelative, formatTimestamp, runDuration, shortId } from '../format';
import { usePolling, useNow } from '../hooks';
import { Link, navigate } from '../router';

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

export function RunsPage() {
  const runs = usePolling('runs', (s) => api.listRuns(s), 2000);
  const anyActive = (runs.data ?? []).some((r) => isActive(r.status));
  const now = useNow(1000, anyActive);
  useEffect(() => {
    document.title = 'Runs · trainlog';
  }, []);

  return (
    <main className="page">
      <div className="page-head">
        <div>
          <h1>Runs</h1>
          <p className="muted subtitle">Training runs, newest first. Logs stream live and are stored losslessly.</p>
        </div>
        <NewRun onStarted={runs.reload} />
      </div>

      {runs.error && (
        <Banner kind={isTransientError(runs.error) ? 'warn' : 'error'}>
          Could not load runs: {runs.error.message}{' '}
          <button type="button" className="btn btn-small" onClick={runs.reload}>
            Retry
          </button>
        </Banner>
      )}

      {runs.loading && !runs.data && <div className="empty">Loading runs…</div>}

      {runs.data && runs.data.length === 0 && (
        <div className="empty">
          <div className="empty-title">No runs yet</div>
          <div className="muted">Pick a config and press “Start run” to launch one.</div>
        </div>
      )}

      {runs.data && runs.data.length > 0 && (
        <div className="table-wrap">
          <table className="runs" data-testid="runs-table">
            <thead>
              <tr>
                <th>Status</th>
                <th>Run</th>
                <th>Config</th>
                <th>Started</th>
                <th className="num">Duration</th>
                <th className="num">Log</th>
                <th className="num">Exit</th>
              </tr>
            </thead>
            <tbody>
              {runs.data.map((r: Run) => (
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
                  <td className="mono">
                    <Link href={`/runs/${r.id}`} className="run-link">
                      {shortId(r.id)}
                    </Link>
                  </td>
                  <td>{r.config ?? <span className="muted">—</span>}</td>
                  <td title={formatTimestamp(r.started_at ?? r.created_at)}>
                    {formatRelative(r.started_at ?? r.created_at, now)}
                  </td>
                  <td className="num">{runDuration(r.started_at, r.finished_at, now)}</td>
                  <td className="num muted">{formatBytes(r.log_size)}</td>
                  <td className="num">
                    <ExitCode code={r.exit_code} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </main>
  );
}
