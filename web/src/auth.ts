/**
 * The server's API token, from the page's side. With TRAINLOG_API_TOKEN set, every /api
 * request without it gets 401. The page never holds the token: opening `/?token=<t>` once makes
 * the server set an HttpOnly cookie and redirect to the same page without it; fetches and
 * EventSource (same origin) then send the cookie on their own. So a 401 anywhere means "this
 * browser has no (valid) cookie", and the app shows one page saying how to get one.
 */
import { useSyncExternalStore } from 'react';

let required = false;
const listeners = new Set<() => void>();

/** A request was refused for want of the token (HTTP 401). */
export function reportUnauthorized(): void {
  if (required) return;
  required = true;
  listeners.forEach((l) => l());
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** True once any request has been refused with 401. */
export function useTokenRequired(): boolean {
  return useSyncExternalStore(
    subscribe,
    () => required,
    () => false,
  );
}

/** For tests: forget a reported 401. */
export function resetTokenRequired(): void {
  required = false;
  listeners.forEach((l) => l());
}

/**
 * The address that hands `token` to the server for `path` (plus its query, `search`): the
 * server sets its cookie and redirects back to `path` (and the rest of the query) without it.
 */
export function tokenUrl(path: string, search: string, token: string): string {
  const params = new URLSearchParams(search);
  params.delete('token');
  params.append('token', token);
  return `${path || '/'}?${params.toString()}`;
}
