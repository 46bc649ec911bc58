import { type ReactNode, useEffect, useState } from 'react';
import { api, isActive, isTransientError, type Run } from '../api';
import { HttpError } from '../logstream/http';
import { reportUnauthorized } from '../auth';
import { runNotices } from '../runNotices';
import { DownloadMenu } from '../viewer/DownloadMenu';
import { MetricsPanel } from '../metrics/MetricsPanel';
import { Banner, ExitCode, StatusBadge } from '../components';
import { formatBytes, formatTimestamp, runDuration, shortId } from '../format';
import { usePolling, useNow } from '../hooks';
import { Link, navigate } from '../router';
import { shortCommit } from '../runList';
import { TrainingLogViewer } from '../viewer/TrainingLogViewer';

/** The log viewer's height: the window's below the run's header (about 300 px at 1280 px wide; see .page-run). */
const RUN_LOG_HEIGHT = 'max(320px, calc(100vh - 320px))';

/** A run that is over: its status will not change again, so there is nothing left to poll. */
const isFinished = (r: Run | null) => r != null && !isActive(r.status);

export function RunPage({ id }: { id: string }) {
  // A finished run is still looked at now and then: someone may delete it meanwhile.
  const run = usePolling(`run:${id}`, (s) => api.getRun(id, s), (r) => (isFinished(r) ? 5000 : 1000));
  const finished = isFinished(run.data);
  const active = run.data ? isActive(run.data.status) : false;
  const now = useNow(1000, active);
  const [cancelling, setCancelling] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);

  useEffect(() => {
    document.title = `Run ${shortId(id)} · trainlog`;
  }, [id]);

  const cancel = async () => {
    setCancelling(true);
    setActionError(null);
    try {
      await api.cancelRun(id);
      run.reload();
    } catch (e) {
      setActionError(`Could not cancel: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      setCancelling(false);
    }
  };

  const remove = async () => {
    if (!window.confirm(`Delete run ${shortId(id)} and its whole log? This cannot be undone.`)) return;
    setDeleting(true);
    setActionError(null);
    try {
      await api.deleteRun(id);
      navigate('/');
    } catch (e) {
      setActionError(`Could not delete: ${e instanceof Error ? e.message : String(e)}`);
      setDeleting(false);
    }
  };

  const notFound = run.error instanceof HttpError && (run.error.status === 404 || run.error.status === 422);
  if (notFound && run.data) {
    // It was here a moment ago: deleted (here or elsewhere) while the page was open.
    return (
      <RunPageFrame className="page">
        <div className="empty" data-testid="run-deleted">
          <div className="empty-title">Run deleted</div>
          <div className="muted">
            Run <span className="mono">{shortId(id)}</span> and its log were deleted.
          </div>
        </div>
      </RunPageFrame>
    );
  }
  if (notFound) {
    return (
      <RunPageFrame className="page">
        <div className="empty">
          <div className="empty-title">Run not found</div>
          <div className="muted">
            No run has the id <span className="mono">{id}</span>.
          </div>
        </div>
      </RunPageFrame>
    );
  }

  const r = run.data;
  return (
    <RunPageFrame className="page page-run">
      <div className="run-head">
        <div className="run-title">
          <h1>
            Run <span className="mono">{shortId(id)}</span>
          </h1>
          {r && <StatusBadge status={r.status} />}
          {r?.config && <span className="chip mono">{r.config}</span>}
          {r?.name && <span className="run-name">{r.name}</span>}
        </div>
        <div className="run-actions">
          {r && active && (
            <button type="button" className="btn btn-danger" onClick={() => void cancel()} disabled={cancelling}>
              {cancelling ? 'Cancelling…' : 'Cancel run'}
            </button>
          )}
          <DownloadMenu runId={id} buttonClassName="btn" label="Download log" />
          {r && !active && (
            <button type="button" className="btn btn-danger" onClick={() => void remove()} disabled={deleting}>
              {deleting ? 'Deleting…' : 'Delete run'}
            </button>
          )}
        </div>
      </div>
      {r && (
        <dl className="facts">
          <div>
            <dt>Started</dt>
            <dd title={r.started_at ?? ''}>{formatTimestamp(r.started_at ?? r.created_at)}</dd>
          </div>
          <div>
            <dt>Duration</dt>
            <dd data-testid="run-duration">{runDuration(r.started_at, r.finished_at, now)}</dd>
          </div>
          <div>
            <dt>Log size</dt>
            <dd>{formatBytes(r.log_size)}</dd>
          </div>
          <div>
            <dt>Exit code</dt>
            <dd data-testid="run-exit-code">
              <ExitCode code={r.exit_code} />
            </dd>
          </div>
          {r.tags && Object.keys(r.tags).length > 0 && (
            <div>
              <dt>Tags</dt>
              <dd data-testid="run-tags">
                {Object.entries(r.tags).map(([k, v]) => (
                  <span key={k} className="chip chip-tag mono">
                    {k}:{v}
                  </span>
                ))}
              </dd>
            </div>
          )}
          {r.host && (
            <div>
              <dt>Host</dt>
              <dd title={r.cwd ?? undefined}>{r.user ? `${r.user}@${r.host}` : r.host}</dd>
            </div>
          )}
          {r.git && (
            <div>
              <dt>Git</dt>
              <dd className="mono" title={r.git.commit ?? undefined} data-testid="run-git">
                {shortCommit(r.git) ?? 'no commit'}
                {r.git.branch && ` (${r.git.branch})`}
              </dd>
            </div>
          )}
          <div className="facts-wide">
            <dt>Command</dt>
            <dd className="mono command" title={r.command.join(' ')}>
              {r.command.join(' ') || '—'}
            </dd>
          </div>
        </dl>
      )}
      {run.error && !notFound && (
        <Banner kind={isTransientError(run.error) ? 'warn' : 'error'}>
          Could not load the run: {run.error.message}
          {isTransientError(run.error) && !finished && ' (retrying)'}
        </Banner>
      )}
      {actionError && <Banner kind="error">{actionError}</Banner>}
      {r &&
        runNotices(r).map((n) => (
          <Banner key={n.id} kind={n.kind}>
            <span className="notice" data-testid={`run-notice-${n.id}`}>
              <strong>{n.title}</strong>
              {n.detail && <span className="notice-detail"> {n.detail}</span>}
            </span>
          </Banner>
        ))}
      <TrainingLogViewer
        key={id}
        runId={id}
        isLive={active}
        height={RUN_LOG_HEIGHT}
        downloads={false} /* the page's header has the same menu, "Download log" */
        onUnauthorized={reportUnauthorized}
        onEnd={run.reload /* the header catches up at once, not at the next poll */}
        startedAt={r?.started_at ?? null}
      />
      {/* Below the log: the log is what the page is for, and it gets most of the window. */}
      <MetricsPanel key={`metrics-${id}`} runId={id} live={active} />
    </RunPageFrame>
  );
}

/** A run page, found or not: the way back to the list, then its content. */
function RunPageFrame({ className, children }: { className: string; children: ReactNode }) {
  return (
    <main className={className}>
      <Link href="/" className="back">
        ← All runs
      </Link>
      {children}
    </main>
  );
}
