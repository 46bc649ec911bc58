/** What the run page must say plainly about a run's state, beyond its status badge (pure). */
import type { Run } from './api';

export interface RunNotice {
  kind: 'error' | 'warn' | 'info';
  /** A stable name, for tests and keys. */
  id: 'lost' | 'not-started' | 'error' | 'truncated';
  title: string;
  detail: string | null;
}

export type RunFacts = Pick<Run, 'status' | 'exit_code' | 'error'> & Partial<Pick<Run, 'log_truncated'>>;

export function runNotices(run: RunFacts): RunNotice[] {
  const notices: RunNotice[] = [];
  const error = run.error?.trim() || null;
  if (run.status === 'lost') {
    notices.push({
      kind: 'error',
      id: 'lost',
      title: 'The runner died; the log below is everything stored before it stopped.',
      detail: error ?? 'The runner stopped reporting (killed, or its machine went down).',
    });
  } else if (run.status === 'failed' && run.exit_code === null && error) {
    notices.push({ kind: 'error', id: 'not-started', title: 'The run could not start.', detail: error });
  } else if (error) {
    notices.push({
      kind: run.status === 'failed' ? 'error' : 'warn',
      id: 'error',
      title: run.status === 'failed' ? 'The run failed.' : 'The run reported a problem.',
      detail: error,
    });
  }
  if (run.log_truncated) {
    notices.push({
      kind: 'warn',
      id: 'truncated',
      title: 'The log reached the server’s size limit: output past it was not stored.',
      detail: 'The program kept running; what it wrote after the limit is gone. The log ends with a note saying so.',
    });
  }
  return notices;
}
