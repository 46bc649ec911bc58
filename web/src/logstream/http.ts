/** Fetching JSON from the API: one place that turns failures into statuses and messages. */
import { errorMessage } from './protocol';

/** A request that did not succeed: the HTTP status (0: no answer at all) and why, in words. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/**
 * The JSON body of a successful answer. A request that gets no answer throws HttpError(0); one
 * answered with an error throws HttpError(status, the server's message). An aborted request
 * rethrows the abort, so callers can tell "cancelled" from "failed".
 */
export async function fetchJson<T>(fetchFn: typeof fetch, url: string, init: RequestInit = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetchFn(url, { ...init, headers: { Accept: 'application/json', ...init.headers } });
  } catch (err) {
    if (init.signal?.aborted) throw err;
    throw new HttpError(0, 'Cannot reach the trainlog server.');
  }
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  if (!res.ok) throw new HttpError(res.status, errorMessage(res.status, body));
  return body as T;
}
