import { reportUnauthorized } from './auth';
import { HttpError, fetchJson } from './logstream/http';
import { errorMessage, isTransientStatus } from './logstream/protocol';

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
  /** Where the run came from (null for runs recorded before trainlog kept it). */
  name?: string | null;
  tags?: Record<string, string>;
  host?: string | null;
  user?: string | null;
  cwd?: string | null;
  git?: { commit: string | null; branch: string | null; dirty: boolean } | null;
}

/** One page of `GET /api/runs`, newest first; `next_cursor` fetches the next (null: the last). */
export interface RunPage {
  runs: Run[];
  next_cursor: string | null;
}

/** The runs page's filters, as kept in its URL (`?status=failed&tag=team:vision&q=bert`). */
export interface RunQuery {
  statuses: RunStatus[];
  tags: string[];
  q: string;
}

export const RUN_STATUSES: RunStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'lost'];

export function parseRunQuery(search: string): RunQuery {
  const p = new URLSearchParams(search);
  return {
    statuses: p.getAll('status').filter((s): s is RunStatus => (RUN_STATUSES as string[]).includes(s)),
    tags: p.getAll('tag').filter((t) => t !== ''),
    q: p.get('q') ?? '',
  };
}

/** The query string for `query` (also the API's filter parameters), empty for no filter. */
export function runQueryString(query: RunQuery, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  query.statuses.forEach((s) => p.append('status', s));
  query.tags.forEach((t) => p.append('tag', t));
  if (query.q) p.set('q', query.q);
  Object.entries(extra).forEach(([k, v]) => p.set(k, v));
  const text = p.toString();
  return text ? `?${text}` : '';
}

/**
 * A page of runs, or `null` when it is unchanged since the answer whose ETag is `etag` (the
 * server answers 304 with no body): following the runs page costs almost nothing while
 * nothing happens.
 */
async function listRunsIfChanged(
  query: RunQuery,
  cursor: string | null,
  etag: string | null,
  signal?: AbortSignal,
): Promise<{ page: RunPage; etag: string | null } | null> {
  const qs = runQueryString(query, cursor ? { cursor } : {});
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (etag) headers['If-None-Match'] = etag;
  let res: Response;
  try {
    res = await fetch(`/api/runs${qs}`, { signal, headers });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new HttpError(0, 'Cannot reach the trainlog server.');
  }
  if (res.status === 304) return null;
  if (!res.ok) {
    const body: unknown = await res.json().catch(() => null);
    if (res.status === 401) reportUnauthorized();
    throw new HttpError(res.status, errorMessage(res.status, body));
  }
  return { page: (await res.json()) as RunPage, etag: res.headers.get('ETag') };
}

async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
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
  listRunsIfChanged,
  deleteRun: (id: string) => request<null>('DELETE', `/runs/${encodeURIComponent(id)}`),
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
