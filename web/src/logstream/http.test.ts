import { describe, expect, it } from 'vitest';
import { HttpError, fetchJson } from './http';

const answer = (status: number, body: string) => async () => new Response(body, { status });

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the request to fail');
}

describe('fetchJson', () => {
  it('returns the body of a successful answer and asks for JSON', async () => {
    let accept: string | null = null;
    const fetchFn = async (_url: RequestInfo | URL, init?: RequestInit) => {
      accept = new Headers(init?.headers).get('Accept');
      return new Response('{"size": 3}', { status: 200 });
    };
    expect(await fetchJson(fetchFn, '/api/x')).toEqual({ size: 3 });
    expect(accept).toBe('application/json');
  });

  it("turns an error answer into its status and the server's message", async () => {
    const err = await failure(fetchJson(answer(409, '{"detail": "run abc is already active"}'), '/api/runs'));
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).status).toBe(409);
    expect((err as HttpError).message).toBe('run abc is already active');
  });

  it('says plainly when there is no answer at all (status 0)', async () => {
    const err = await failure(
      fetchJson(async () => {
        throw new TypeError('Failed to fetch');
      }, '/api/runs'),
    );
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).status).toBe(0);
    expect((err as HttpError).message).toBe('Cannot reach the trainlog server.');
  });

  it('lets an abort through as an abort, not as a failure', async () => {
    const abort = new AbortController();
    abort.abort();
    const aborted = new DOMException('aborted', 'AbortError');
    const err = await failure(
      fetchJson(
        async () => {
          throw aborted;
        },
        '/api/runs',
        { signal: abort.signal },
      ),
    );
    expect(err).toBe(aborted);
  });

  it('copes with an error answer that is not JSON', async () => {
    const err = await failure(fetchJson(answer(502, '<html>bad gateway</html>'), '/api/runs'));
    expect((err as HttpError).status).toBe(502);
    expect((err as HttpError).message).toBe('HTTP 502');
  });
});
