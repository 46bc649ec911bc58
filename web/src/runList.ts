/** The runs page's list: the newest page, polled live, merged with older pages loaded on demand. */
import type { Run } from './api';

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
