import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LogStreamController, type EventSourceLike, type LogStreamState } from './controller';

const enc = new TextEncoder();
const b64 = (s: string | Uint8Array) => Buffer.from(typeof s === 'string' ? enc.encode(s) : s).toString('base64');

/** A fake server holding one run's log. */
class FakeServer {
  log = new Uint8Array(0);
  requests: string[] = [];
  failRun = false;
  /** Answer every request with this status (503: the database is away), or 0: no answer. */
  outage: number | null = null;
  runInfo: Record<string, unknown> = { status: 'running' };
  constructor(text = '') {
    this.append(text);
  }
  append(s: string | Uint8Array) {
    const add = typeof s === 'string' ? enc.encode(s) : s;
    const next = new Uint8Array(this.log.length + add.length);
    next.set(this.log);
    next.set(add, this.log.length);
    this.log = next;
  }
  fetch = async (input: RequestInfo | URL): Promise<Response> => {
    const url = new URL(String(input), 'http://x');
    this.requests.push(url.pathname + url.search);
    if (this.outage === 0) throw new TypeError('Failed to fetch');
    if (this.outage !== null) {
      return new Response(JSON.stringify({ detail: 'the database is unavailable; try again shortly' }), { status: this.outage });
    }
    if (this.failRun) return new Response(JSON.stringify({ detail: 'run not found' }), { status: 404 });
    if (url.pathname.endsWith('/logs')) {
      const offset = Number(url.searchParams.get('offset') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? this.log.length);
      const data = this.log.subarray(offset, Math.min(offset + limit, this.log.length));
      return Response.json({ run_id: 'r1', offset, size: this.log.length, updated_at: null, data: b64(data) });
    }
    return Response.json({ id: 'r1', ...this.runInfo, log_size: this.log.length });
  };
}

class FakeEventSource implements EventSourceLike {
  static all: FakeEventSource[] = [];
  readyState = 0;
  closed = false;
  listeners = new Map<string, Array<(ev: MessageEvent<string>) => void>>();
  constructor(readonly url: string) {
    FakeEventSource.all.push(this);
  }
  addEventListener(type: string, fn: (ev: MessageEvent<string>) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  /** What the browser does on a non-200 answer: an error, and no retry of its own. */
  refuse() {
    this.readyState = 2;
    this.emit('error');
  }
  emit(type: string, data = '{}', lastEventId = '') {
    const ev = { data, lastEventId } as MessageEvent<string>;
    (this.listeners.get(type) ?? []).forEach((fn) => fn(ev));
  }
  open() {
    this.readyState = 1;
    this.emit('open');
  }
  /** Send log bytes [from, to) of the server's log as one event. */
  sendLog(server: FakeServer, from: number, to: number) {
    this.emit('log', JSON.stringify({ chunk: b64(server.log.subarray(from, to)) }), String(to));
  }
  /** End the stream with a `done` event, then let the controller settle. */
  async sendDone(exitCode: number | null, finalSize: number) {
    this.emit('done', JSON.stringify({ exit_code: exitCode, final_size: finalSize }));
    await flush();
  }
  get offset(): number {
    return Number(new URL(this.url, 'http://x').searchParams.get('offset'));
  }
}

function setup(text: string, opts: Partial<ConstructorParameters<typeof LogStreamController>[0]> = {}) {
  const server = new FakeServer(text);
  const written: Uint8Array[] = [];
  const states: LogStreamState[] = [];
  const ctl = new LogStreamController({
    runId: 'r1',
    sink: (b) => {
      written.push(b.slice());
    },
    onState: (s) => states.push(s),
    fetch: server.fetch as typeof fetch,
    eventSource: (url) => new FakeEventSource(url),
    watchdogMs: 5000,
    ...opts,
  });
  const text_ = () => Buffer.concat(written.map((b) => Buffer.from(b))).toString('utf8');
  const bytes = () => Buffer.concat(written.map((b) => Buffer.from(b)));
  return { server, ctl, written, states, text: text_, bytes };
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await vi.advanceTimersByTimeAsync(0);
};
const lastEs = () => FakeEventSource.all[FakeEventSource.all.length - 1]!;

/** A controller over a fake server holding `text`, started, with its first requests answered. */
async function started(text: string, opts: Parameters<typeof setup>[1] = {}) {
  const t = setup(text, opts);
  t.ctl.start();
  await flush();
  return t;
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeEventSource.all = [];
});
afterEach(() => {
  vi.useRealTimers();
});

describe('history then stream', () => {
  it('loads history, then opens the stream at exactly the history size', async () => {
    const t = await started('line 1\nline 2\n');
    expect(t.text()).toBe('line 1\nline 2\n');
    expect(FakeEventSource.all).toHaveLength(1);
    expect(lastEs().offset).toBe(14);
    expect(t.ctl.getState().offset).toBe(14);

    // Bytes appended after the history load arrive on the stream, once.
    t.server.append('line 3\n');
    lastEs().open();
    lastEs().sendLog(t.server, 14, 21);
    expect(t.text()).toBe('line 1\nline 2\nline 3\n');
    expect(t.ctl.getState().phase).toBe('live');
  });

  it('loads history in pages no bigger than pageBytes, and streams the bytes that came meanwhile', async () => {
    const t = await started('0123456789abcdef', { pageBytes: 5 });
    const pages = t.server.requests.filter((r) => r.includes('/logs?'));
    expect(pages).toEqual([
      '/api/runs/r1/logs?offset=0&limit=5',
      '/api/runs/r1/logs?offset=5&limit=5',
      '/api/runs/r1/logs?offset=10&limit=5',
      '/api/runs/r1/logs?offset=15&limit=1',
    ]);
    expect(t.text()).toBe('0123456789abcdef');
    expect(lastEs().offset).toBe(16);
  });

  it('an overlapping first chunk (server resends) is written only once', async () => {
    const t = await started('abc\n');
    t.server.append('def\n');
    lastEs().sendLog(t.server, 0, 8); // the whole log again, id=8
    lastEs().sendLog(t.server, 4, 8); // a duplicate
    expect(t.text()).toBe('abc\ndef\n');
  });

  it('keeps a multi-byte character split across chunks as raw bytes', async () => {
    const euro = enc.encode('€'); // e2 82 ac
    const t = await started('');
    t.server.append(euro);
    lastEs().sendLog(t.server, 0, 1);
    lastEs().sendLog(t.server, 1, 3);
    await flush(); // an empty log: the first bytes wait for the run's width
    expect(t.written.map((b) => Array.from(b))).toEqual([[0xe2], [0x82, 0xac]]);
    expect(t.text()).toBe('€');
  });

  it('on a gap, re-opens the stream at the offset it has instead of writing past it', async () => {
    const t = await started('abc\n');
    t.server.append('def\nghi\n');
    const first = lastEs();
    first.sendLog(t.server, 8, 12); // starts at 8, we have 4
    expect(t.text()).toBe('abc\n');
    expect(first.closed).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    expect(FakeEventSource.all).toHaveLength(2);
    expect(lastEs().offset).toBe(4);
  });
});

describe('tail loading', () => {
  it('loads only the tail of a big log, starting at a line boundary, and says so', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => `line ${String(i).padStart(3, '0')}\n`).join(''); // 9 bytes each
    const t = await started(lines, { tailPolicy: { thresholdBytes: 200, tailBytes: 50 } });
    // 900 bytes; tail starts at 850 (mid-line), first newline at 854 => shown from 855.
    expect(t.ctl.getState().shownFrom).toBe(855);
    expect(t.text()).toBe('line 095\nline 096\nline 097\nline 098\nline 099\n');
    expect(lastEs().offset).toBe(900);
  });
  it('fetches the tail as one page and keeps no more lines than the scrollback', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => `line ${String(i).padStart(3, '0')}\n`).join('');
    const t = await started(lines, { tailPolicy: { thresholdBytes: 200, tailBytes: 90 }, pageBytes: 20, maxTailLines: 3 });
    expect(t.server.requests.filter((r) => r.includes('/logs?'))).toEqual(['/api/runs/r1/logs?offset=810&limit=90']);
    expect(t.text()).toBe('line 097\nline 098\nline 099\n');
    expect(t.ctl.getState().shownFrom).toBe(873);
    expect(lastEs().offset).toBe(900);
  });
  it('loads a log under the threshold whole', async () => {
    const t = await started('x'.repeat(150) + '\n', { tailPolicy: { thresholdBytes: 200, tailBytes: 50 } });
    expect(t.ctl.getState().shownFrom).toBeNull();
    expect(t.text().length).toBe(151);
  });
});

describe('done', () => {
  it('closes the EventSource and reports the exit code', async () => {
    const t = await started('hello\n');
    const es = lastEs();
    await es.sendDone(3, 6);
    expect(es.closed).toBe(true);
    expect(t.ctl.getState()).toMatchObject({ phase: 'done', exitCode: 3 });
    // No reconnect after done, even when the browser reports the closed connection.
    es.emit('error');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeEventSource.all).toHaveLength(1);
  });
  it('fetches bytes it is missing before reporting done', async () => {
    const t = await started('hello\n');
    t.server.append('bye\n');
    await lastEs().sendDone(0, 10);
    expect(t.text()).toBe('hello\nbye\n');
    expect(t.ctl.getState()).toMatchObject({ phase: 'done', exitCode: 0, offset: 10 });
  });
});

describe('reconnect', () => {
  it('on a dropped connection, shows reconnecting and resumes from the last event id', async () => {
    const t = await started('a\n');
    const es1 = lastEs();
    es1.open();
    t.server.append('b\nc\n');
    es1.sendLog(t.server, 2, 4);
    es1.emit('error');
    expect(es1.closed).toBe(true);
    expect(t.ctl.getState().phase).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(499);
    expect(FakeEventSource.all).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeEventSource.all).toHaveLength(2);
    const es2 = lastEs();
    expect(es2.offset).toBe(4);
    es2.open();
    es2.sendLog(t.server, 4, 6);
    expect(t.text()).toBe('a\nb\nc\n');
    expect(t.ctl.getState().phase).toBe('live');
  });

  it('backs off while the server stays away', async () => {
    await started('');
    lastEs().emit('error');
    await vi.advanceTimersByTimeAsync(500);
    lastEs().emit('error');
    await vi.advanceTimersByTimeAsync(999);
    expect(FakeEventSource.all).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeEventSource.all).toHaveLength(3);
  });

  it('the heartbeat watchdog reconnects a silent stream; heartbeats keep it alive', async () => {
    const t = await started('a\n');
    const es1 = lastEs();
    es1.open();
    await vi.advanceTimersByTimeAsync(4000);
    es1.emit('heartbeat');
    await vi.advanceTimersByTimeAsync(4000);
    expect(es1.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1001);
    expect(es1.closed).toBe(true);
    expect(t.states.some((s) => s.phase === 'reconnecting')).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeEventSource.all).toHaveLength(2);
    expect(lastEs().offset).toBe(2);
  });

  it('ignores events from a stream it has replaced', async () => {
    const t = await started('a\n');
    const es1 = lastEs();
    es1.emit('error');
    await vi.advanceTimersByTimeAsync(500);
    t.server.append('b\n');
    es1.sendLog(t.server, 2, 4); // late event from the old connection
    expect(t.text()).toBe('a\n');
  });
});

describe('terminal width', () => {
  it('reports a started run\'s width before writing anything', async () => {
    const events: string[] = [];
    const t = setup('abc\n', {
      onTermCols: (c) => events.push(`cols ${c}`),
      sink: (b) => void events.push(`write ${b.length}`),
    });
    t.server.runInfo = { status: 'running', term_cols: 120 };
    t.ctl.start();
    await flush();
    expect(events).toEqual(['cols 120', 'write 4']);
  });
  it('for a queued run, holds the first streamed bytes until it knows the width', async () => {
    const events: string[] = [];
    const t = setup('', {
      onTermCols: (c) => events.push(`cols ${c}`),
      sink: (b) => void events.push(`write ${b.length}`),
    });
    t.server.runInfo = { status: 'queued', term_cols: null };
    t.ctl.start();
    await flush();
    t.server.runInfo = { status: 'running', term_cols: 100 };
    t.server.append('hello\nworld\n');
    lastEs().sendLog(t.server, 0, 6);
    lastEs().sendLog(t.server, 6, 12);
    expect(events).toEqual(['cols null']);
    await lastEs().sendDone(0, 12);
    expect(events).toEqual(['cols null', 'cols 100', 'write 6', 'write 6']);
    expect(t.ctl.getState()).toMatchObject({ phase: 'done', termCols: 100 });
  });
});

describe('lifecycle', () => {
  it('dispose closes the stream and stops every timer', async () => {
    const t = await started('a\n');
    const es = lastEs();
    t.ctl.dispose();
    expect(es.closed).toBe(true);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(FakeEventSource.all).toHaveLength(1);
  });
  it('dispose during history loading never opens a stream', async () => {
    const t = setup('a\n');
    t.ctl.start();
    t.ctl.dispose();
    await flush();
    expect(FakeEventSource.all).toHaveLength(0);
  });
  it('reports an error when the run cannot be loaded', async () => {
    const t = setup('a\n');
    t.server.failRun = true;
    t.ctl.start();
    await flush();
    expect(t.ctl.getState()).toMatchObject({ phase: 'error', error: 'run not found' });
    expect(FakeEventSource.all).toHaveLength(0);
  });
});

describe('database outage and other trouble: reconnecting, never an error page', () => {
  it('a stream that errors over and over stays "reconnecting", backing off up to 10 s, and resumes', async () => {
    const t = await started('a\n');
    lastEs().open();
    t.server.outage = 503; // the database is away: new requests get 503
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) {
      const before = FakeEventSource.all.length;
      lastEs().emit('error'); // dropped, the browser would retry: we do, at our own pace
      expect(t.ctl.getState().phase).toBe('reconnecting');
      let waited = 0;
      while (FakeEventSource.all.length === before) {
        await vi.advanceTimersByTimeAsync(100);
        waited += 100;
      }
      delays.push(waited);
    }
    expect(delays.slice(0, 6)).toEqual([500, 1000, 2000, 4000, 8000, 10000]);
    expect(Math.max(...delays)).toBe(10000);
    expect(t.states.some((s) => s.phase === 'error')).toBe(false);

    t.server.outage = null;
    t.server.append('b\n');
    lastEs().open();
    lastEs().sendLog(t.server, 2, 4);
    expect(t.ctl.getState()).toMatchObject({ phase: 'live', offset: 4, error: null });
    expect(t.text()).toBe('a\nb\n');
  });

  it('a stream refused with 503 asks for the run until it answers, then re-opens at its offset', async () => {
    const t = await started('a\n');
    t.server.outage = 503;
    lastEs().refuse();
    const opened = FakeEventSource.all.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeEventSource.all).toHaveLength(opened); // no stream while the run cannot be asked
    expect(t.ctl.getState().phase).toBe('reconnecting');
    const asked = t.server.requests.filter((r) => r === '/api/runs/r1').length;
    expect(asked).toBeGreaterThan(3);
    expect(asked).toBeLessThan(15); // backed off
    t.server.outage = 0; // and then no answer at all
    await vi.advanceTimersByTimeAsync(30_000);
    expect(t.ctl.getState().phase).toBe('reconnecting');
    t.server.outage = null;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(FakeEventSource.all).toHaveLength(opened + 1);
    expect(lastEs().offset).toBe(2);
    expect(t.states.some((s) => s.phase === 'error')).toBe(false);
  });

  it('the server\'s "reconnecting" event shows reconnecting on the same stream; its next event is live again', async () => {
    const t = await started('a\n');
    const es = lastEs();
    es.open();
    es.emit('reconnecting', JSON.stringify({ offset: 2 }));
    expect(t.ctl.getState().phase).toBe('reconnecting');
    expect(es.closed).toBe(false);
    es.emit('heartbeat');
    expect(t.ctl.getState().phase).toBe('live');
    expect(FakeEventSource.all).toHaveLength(1);
  });

  it('history that cannot be loaded for now (503, no answer) is retried, not an error', async () => {
    const t = setup('hello\n');
    t.server.outage = 503;
    t.ctl.start();
    await flush();
    expect(t.ctl.getState().phase).toBe('reconnecting');
    await vi.advanceTimersByTimeAsync(500);
    t.server.outage = 0;
    await vi.advanceTimersByTimeAsync(1000);
    expect(t.ctl.getState().phase).toBe('reconnecting');
    t.server.outage = null;
    await vi.advanceTimersByTimeAsync(2000);
    expect(t.text()).toBe('hello\n');
    expect(lastEs().offset).toBe(6);
    expect(t.states.some((s) => s.phase === 'error')).toBe(false);
  });

  it('history cut by an outage mid-way resumes at the page it had, without repeating bytes', async () => {
    const t = setup('0123456789', { pageBytes: 4 });
    const realFetch = t.server.fetch;
    let calls = 0;
    t.ctl = new LogStreamController({
      runId: 'r1',
      sink: (b) => void t.written.push(b.slice()),
      fetch: (async (input: RequestInfo | URL) => {
        calls++;
        if (calls === 3) return new Response('{}', { status: 503 }); // the second page
        return realFetch(input);
      }) as typeof fetch,
      eventSource: (url) => new FakeEventSource(url),
    });
    t.ctl.start();
    await flush();
    await vi.advanceTimersByTimeAsync(500);
    expect(t.text()).toBe('0123456789');
    expect(lastEs().offset).toBe(10);
  });

  it('a stream refused with 401 (no token) is an error, with its status, and no more retries', async () => {
    const t = await started('a\n');
    t.server.outage = 401;
    lastEs().refuse();
    await vi.advanceTimersByTimeAsync(500);
    expect(t.ctl.getState()).toMatchObject({ phase: 'error', errorStatus: 401 });
    const n = t.server.requests.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.server.requests.length).toBe(n);
    expect(FakeEventSource.all).toHaveLength(1);
  });

  it('history refused with 401 is an error at once', async () => {
    const t = setup('a\n');
    t.server.outage = 401;
    t.ctl.start();
    await flush();
    expect(t.ctl.getState()).toMatchObject({ phase: 'error', errorStatus: 401 });
  });
});

describe('how the run ended', () => {
  it('on done, asks for the run, so a lost run (no exit code) says lost', async () => {
    const t = await started('partial output\n');
    expect(t.ctl.getState().runStatus).toBe('running');
    t.server.runInfo = { status: 'lost', exit_code: null };
    await lastEs().sendDone(null, 15);
    expect(t.ctl.getState()).toMatchObject({ phase: 'done', exitCode: null, runStatus: 'lost' });
  });
  it('on done, keeps the status it knew when the run cannot be asked', async () => {
    const t = await started('x\n');
    t.server.outage = 503;
    await lastEs().sendDone(0, 2);
    expect(t.ctl.getState()).toMatchObject({ phase: 'done', exitCode: 0, runStatus: 'running' });
  });
});
