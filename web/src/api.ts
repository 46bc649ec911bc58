import { reportUnauthorized } from './auth';
import { HttpError, fetchJson } from './logstream/http';
import { isTransientStatus } from './logstream/protocol';

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'lost';

export interface Run {
  id: string;
  status: RunStatus;
  config: string | null;
  command: string[];
  exit_code: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  log_size: number;
  /** Why it failed, was lost, or lost output; null when there is nothing to say. */
  error: string | null;
  /** Output past the server's log limit was not stored. */
  log_truncated?: boolean;
  /** The child ran under a pseudo-terminal of term_cols x term_rows (null under a pipe). */
  pty?: boolean;
  term_cols?: number | null;
  term_rows?: number | null;
}

export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const init: RequestInit =
    body === undefined
      ? { method, signal }
      : { method, signal, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  try {
    return await fetchJson<T>(fetch, `/api${path}`, init);
  } catch (err) {
    if (err instanceof HttpError && err.status === 401) reportUnauthorized();
    throw err;
  }
}

export const api = {
  listRuns: (signal?: AbortSignal) => request<Run[]>('GET', '/runs', undefined, signal),
  getRun: (id: string, signal?: AbortSignal) => request<Run>('GET', `/runs/${encodeURIComponent(id)}`, undefined, signal),
  listConfigs: (signal?: AbortSignal) => request<string[]>('GET', '/configs', undefined, signal),
  startRun: (config: string) => request<Run>('POST', '/runs', { config }),
  cancelRun: (id: string) => request<Run>('POST', `/runs/${encodeURIComponent(id)}/cancel`),
  /** Whether `token` is the server's API token (asked without storing it anywhere). */
  checkToken: async (token: string): Promise<boolean> => {
    const res = await fetch('/api/configs', { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } });
    return res.status !== 401;
  },
};

/** An error that may pass by itself (no answer, 503 while the database is away): polls retry it. */
export const isTransientError = (e: unknown) => e instanceof HttpError && isTransientStatus(e.status);

export const isActive = (s: RunStatus) => s === 'queued' || s === 'running';

/** The run id in a 409 "run <id> is already active" message, if there is one. */
export function activeRunIdFrom(message: string): string | null {
  const m = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.exec(message);
  return m ? m[0] : null;
}
