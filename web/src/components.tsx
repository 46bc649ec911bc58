import type { ReactNode } from 'react';
import type { RunStatus } from './api';
import { signalName } from './logstream/protocol';

const LABELS: Record<RunStatus, string> = {
  queued: 'Queued',
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Cancelled',
  lost: 'Lost',
};

export function StatusBadge({ status }: { status: RunStatus | string }) {
  const known = status in LABELS;
  const label = known ? LABELS[status as RunStatus] : status;
  return (
    <span className={`badge badge-${known ? status : 'unknown'}`} data-testid="status-badge" data-status={status}>
      {status === 'running' && <span className="badge-dot" aria-hidden />}
      {label}
    </span>
  );
}

export function ExitCode({ code }: { code: number | null }) {
  if (code === null) return <span className="muted">—</span>;
  // A negative code is how Python reports a child killed by a signal.
  const signal = code < 0 ? signalName(-code) : null;
  return (
    <span className={`exit ${code === 0 ? 'exit-ok' : 'exit-bad'}`} title={signal ? `killed by ${signal}` : undefined}>
      {code}
      {signal && <span className="exit-signal"> {signal}</span>}
    </span>
  );
}

export function Banner({ kind, children }: { kind: 'error' | 'warn' | 'info'; children: ReactNode }) {
  return (
    <div className={`banner banner-${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}
