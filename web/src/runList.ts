/** The runs page's list: the newest page, polled live, merged with older pages loaded on demand. */
import { request, runQueryString, type Run, type RunQuery } from './api';

/** Whether `a` comes after `b` in the list's order (newest first: created_at, then id). */
export function isOlder(a: Run, b: Run): boolean {
  return a.created_at < b.created_at || (a.created_at === b.created_at && a.id < b.id);
}

/**
 * The runs to show once the newest page has been fetched again: `fresh` replaces every run it
 * covers in `shown` (so a run deleted, or no longer matching, drops out), and the older runs
 * loaded before stay below it, including any that new runs pushed off the first page.
 * `complete`: `fresh` is every matching run.
 */
export function mergeNewest(shown: Run[], fresh: Run[], complete: boolean): Run[] {
  if (complete) return fresh;
  const oldest = fresh[fresh.length - 1];
  if (oldest === undefined) return shown;
  const ids = new Set(fresh.map((r) => r.id));
  return [...fresh, ...shown.filter((r) => !ids.has(r.id) && isOlder(r, oldest))];
}

/** `shown` with an older page appended (runs already shown are not repeated). */
export function appendOlder(shown: Run[], older: Run[]): Run[] {
  const ids = new Set(shown.map((r) => r.id));
  return [...shown, ...older.filter((r) => !ids.has(r.id))];
}

/** A short commit, `*` when the tree had uncommitted changes. */
export function shortCommit(git: Run['git']): string | null {
  if (!git?.commit) return null;
  return git.commit.slice(0, 8) + (git.dirty ? '*' : '');
}

/** The runs page's metric column, kept in its address beside the filters (`?metric=loss`). */
export function metricColumn(search: string): string | null {
  return new URLSearchParams(search).get('metric')?.trim() || null;
}

/** The runs page's address for these filters and metric column (null: none). */
export function runsAddress(query: RunQuery, metric: string | null): string {
  return `/${runQueryString(query, metric ? { metric } : {})}`;
}

/** A run's latest point of a series, as `GET /api/metrics/latest` gives it. */
export interface LatestPoint {
  step: number;
  /** A number, or "nan", "inf", "-inf". */
  value: number | string;
  time: number | null;
  line: number;
  offset: number;
}

/** The server's limit on runs per `/api/metrics/latest` request. */
export const LATEST_BATCH = 500;

/** Each of these runs' latest value of series `name` (runs without one are left out). */
export async function latestValues(name: string, ids: string[], signal?: AbortSignal): Promise<Record<string, LatestPoint>> {
  const found: Record<string, LatestPoint> = {};
  for (let i = 0; i < ids.length; i += LATEST_BATCH) {
    const p = new URLSearchParams({ name });
    ids.slice(i, i + LATEST_BATCH).forEach((id) => p.append('run', id));
    const answer = await request<{ runs: Record<string, LatestPoint> }>('GET', `/metrics/latest?${p}`, undefined, signal);
    Object.assign(found, answer.runs);
  }
  return found;
}

/** A metric value for a table cell: 4 significant digits, exponents only for very large or small values. */
export function formatMetric(value: number | string): string {
  if (typeof value === 'string') return value;
  const abs = Math.abs(value);
  if (Number.isInteger(value) && abs < 1e9) return String(value);
  const rounded = Number(value.toPrecision(4));
  return abs !== 0 && (abs >= 1e6 || abs < 1e-3) ? rounded.toExponential() : String(rounded);
}
