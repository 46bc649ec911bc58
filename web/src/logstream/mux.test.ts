import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EventSourceLike } from './controller';
import { LogStreamController } from './controller';
import { type MuxEvent, REGROUP_MS, StreamMux, runOfData, streamsUrl } from './mux';
import { PageTransport, PortTransport, type FromWorker, type ToWorker, sharedStreams } from './shared';

const enc = new TextEncoder();
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

/** A fake `/api/streams` connection: knows the runs and offsets it was opened with. */
class FakeStreams implements EventSourceLike {
  static all: FakeStreams[] = [];
  readyState = 0;
  closed = false;
  readonly offsets: Map<string, number>;
  private readonly listeners = new Map<string, Array<(ev: MessageEvent<string>) => void>>();
  constructor(readonly url: string) {
    FakeStreams.all.push(this);
    const u = new URL(url, 'http://x');
    this.offsets = new Map(
      u.searchParams.getAll('run').map((r) => {
        const [run, offset] = r.split(':');
        return [run!, Number(offset)];
      }),
    );
  }
  addEventListener(type: string, fn: (ev: MessageEvent<string>) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  emit(type: string, data = '', lastEventId = '') {
    for (const fn of this.listeners.get(type) ?? []) fn({ data, lastEventId } as MessageEvent<string>);
  }
  open() {
    this.readyState = 1;
    this.emit('open');
  }
  /** The run's next `length` bytes (from where this connection has it), as the server tags them. */
  sendLog(logs: Logs, run: string, length: number) {
    const from = this.offsets.get(run)!;
    const to = from + length;
    this.offsets.set(run, to);
    this.emit('log', `{"run":"${run}","chunk":"${b64(logs.get(run)!.subarray(from, to))}"}`, String(to));
  }
  sendDone(run: string, exitCode: number, finalSize: number) {
    this.emit('done', `{"run":"${run}","exit_code":${exitCode},"final_size":${finalSize}}`);
  }
}
type Logs = Map<string, Uint8Array>;

const last = () => FakeStreams.all[FakeStreams.all.length - 1]!;
const regroup = () => vi.advanceTimersByTime(REGROUP_MS);

/** A subscriber that keeps the bytes of its run's log events. */
function collector() {
  const events: MuxEvent[] = [];
  const bytes: number[] = [];
  const listener = (ev: MuxEvent) => {
    events.push(ev);
    if (ev.type === 'log') bytes.push(...Buffer.from(JSON.parse(ev.data).chunk as string, 'base64'));
  };
  return { events, bytes, listener, types: () => events.map((e) => e.type) };
}

const logsOf = (...runs: string[]): Logs => new Map(runs.map((r, i) => [r, enc.encode(`${r}:`.repeat(10 + i))]));

beforeEach(() => {
  vi.useFakeTimers();
  FakeStreams.all = [];
});
afterEach(() => {
  vi.useRealTimers();
});

describe('pure parts', () => {
  it('names each run with its offset, and reads the run off an event', () => {
    expect(streamsUrl('/api', new Map([['a', 0], ['b c', 12]]))).toBe('/api/streams?run=a%3A0&run=b%20c%3A12');
    expect(runOfData('{"run":"r-1","chunk":"AA=="}')).toBe('r-1');
    expect(runOfData('{"run":"r-1"}')).toBe('r-1');
    expect(runOfData('{"chunk":"AA==","run":"r-1"}')).toBeNull();
    expect(runOfData('')).toBeNull();
  });
});

describe('StreamMux', () => {
  it('carries several runs on one connection, each subscriber getting its own run only', () => {
    const logs = logsOf('a', 'b');
    const mux = new StreamMux('/api', (url) => new FakeStreams(url));
    const a = collector();
    const b = collector();
    mux.open('a', 0, a.listener);
    mux.open('b', 4, b.listener);
    regroup();
    expect(FakeStreams.all).toHaveLength(1);
    expect([...last().offsets]).toEqual([['a', 0], ['b', 4]]);
    last().open();
    last().sendLog(logs, 'a', 6);
    last().sendLog(logs, 'b', 3);
    last().sendLog(logs, 'a', 4);
    expect(Buffer.from(a.bytes).toString()).toBe('a:a:a:a:a:');
    expect(Buffer.from(b.bytes).toString()).toBe('b:b');
    expect(a.types()).toEqual(['open', 'log', 'log']);
    expect(b.types()).toEqual(['open', 'log']);
  });

  it('adding or removing a run reconnects every other run where it was: no byte lost or repeated', () => {
    const logs = logsOf('a', 'b', 'c');
    const mux = new StreamMux('/api', (url) => new FakeStreams(url));
    const a = collector();
    const b = collector();
    const c = collector();
    mux.open('a', 0, a.listener);
    const closeB = mux.open('b', 0, b.listener);
    regroup();
    const first = last();
    first.sendLog(logs, 'a', 5);
    first.sendLog(logs, 'b', 7);
    mux.open('c', 2, c.listener);
    first.sendLog(logs, 'a', 3); // still on the old connection until the regroup
    regroup();
    expect(first.closed).toBe(true);
    expect([...last().offsets]).toEqual([['a', 8], ['b', 7], ['c', 2]]);
    last().sendLog(logs, 'a', 4);
    last().sendLog(logs, 'b', 5);
    last().sendLog(logs, 'c', 3);
    closeB();
    regroup();
    expect([...last().offsets]).toEqual([['a', 12], ['c', 5]]);
    last().sendLog(logs, 'a', 8);
    last().sendLog(logs, 'c', 4);
    expect(Buffer.from(a.bytes)).toEqual(Buffer.from(logs.get('a')!.subarray(0, 20)));
    expect(Buffer.from(b.bytes)).toEqual(Buffer.from(logs.get('b')!.subarray(0, 12)));
    expect(Buffer.from(c.bytes)).toEqual(Buffer.from(logs.get('c')!.subarray(2, 9)));
    expect(FakeStreams.all).toHaveLength(3);
    expect(FakeStreams.all.filter((s) => !s.closed)).toHaveLength(1);
  });

  it('a second viewer of a run behind the connection gets nothing until it is reconnected from there', () => {
    const logs = logsOf('a');
    const mux = new StreamMux('/api', (url) => new FakeStreams(url));
    const ahead = collector();
    const behind = collector();
    mux.open('a', 0, ahead.listener);
    regroup();
    last().sendLog(logs, 'a', 10);
    mux.open('a', 4, behind.listener);
    last().sendLog(logs, 'a', 2); // bytes 10-12: the newcomer would see a gap
    expect(behind.events).toEqual([]);
    regroup();
    expect([...last().offsets]).toEqual([['a', 4]]);
    last().sendLog(logs, 'a', 10);
    expect(Buffer.from(behind.bytes)).toEqual(Buffer.from(logs.get('a')!.subarray(4, 14)));
    // The one ahead gets 4-14 again: its own offset tells it those are duplicates.
    expect(ahead.events.at(-1)!.lastEventId).toBe('14');
  });

  it('a run that is done leaves without a reconnect; the last subscriber closes the connection', () => {
    const logs = logsOf('a', 'b');
    const mux = new StreamMux('/api', (url) => new FakeStreams(url));
    const a = collector();
    const closeA = mux.open('a', 0, a.listener);
    const closeB = mux.open('b', 0, () => {});
    regroup();
    last().sendLog(logs, 'a', 20);
    last().sendDone('a', 3, 20);
    expect(a.types()).toEqual(['log', 'done']);
    expect(JSON.parse(a.events[1]!.data)).toEqual({ run: 'a', exit_code: 3, final_size: 20 });
    closeA();
    regroup();
    expect(FakeStreams.all).toHaveLength(1);
    closeB();
    expect(last().closed).toBe(true);
    expect(mux.connections).toBe(0);
  });

  it('a failed connection is closed and handed to each of its subscribers, with its state', () => {
    const mux = new StreamMux('/api', (url) => new FakeStreams(url));
    const a = collector();
    const b = collector();
    mux.open('a', 0, a.listener);
    mux.open('b', 0, b.listener);
    regroup();
    const es = last();
    es.readyState = 2; // the browser gave up (an HTTP error): the subscribers ask why
    es.emit('error');
    expect(es.closed).toBe(true);
    expect(a.events).toEqual([{ type: 'error', data: '', lastEventId: '', readyState: 2 }]);
    expect(b.types()).toEqual(['error']);
    expect(mux.connections).toBe(0);
  });
});

describe('controllers on one shared connection', () => {
  it('stream two runs byte for byte, history then live, and each ends with its exit code', async () => {
    const logs = logsOf('r1', 'r2');
    const fetchFn = (async (input: RequestInfo | URL) => {
      const url = new URL(String(input), 'http://x');
      const run = url.pathname.split('/')[3]!;
      if (url.pathname.endsWith('/logs')) {
        const offset = Number(url.searchParams.get('offset'));
        const limit = Number(url.searchParams.get('limit'));
        const data = logs.get(run)!.subarray(offset, Math.min(offset + limit, 6));
        return Response.json({ offset, size: 6, data: b64(data) });
      }
      return Response.json({ id: run, status: 'running', log_size: 6, term_cols: 80 });
    }) as typeof fetch;
    const connect = sharedStreams('/api', new PageTransport((url) => new FakeStreams(url)));
    const written = new Map<string, number[]>();
    const controllers = ['r1', 'r2'].map((runId) => {
      written.set(runId, []);
      const ctl = new LogStreamController({ runId, sink: (b) => void written.get(runId)!.push(...b), fetch: fetchFn, connect });
      ctl.start();
      return ctl;
    });
    for (let i = 0; i < 20; i++) await Promise.resolve();
    regroup();
    expect(FakeStreams.all).toHaveLength(1);
    expect([...last().offsets]).toEqual([['r1', 6], ['r2', 6]]);
    last().open();
    const size = (run: string) => logs.get(run)!.length;
    last().sendLog(logs, 'r1', size('r1') - 6);
    last().sendLog(logs, 'r2', size('r2') - 6);
    last().sendDone('r1', 0, size('r1'));
    last().sendDone('r2', 2, size('r2'));
    for (let i = 0; i < 40; i++) await Promise.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(Buffer.from(written.get('r1')!)).toEqual(Buffer.from(logs.get('r1')!));
    expect(Buffer.from(written.get('r2')!)).toEqual(Buffer.from(logs.get('r2')!));
    expect(controllers.map((c) => [c.getState().phase, c.getState().exitCode])).toEqual([
      ['done', 0],
      ['done', 2],
    ]);
    expect(last().closed).toBe(true); // no viewer left: nothing holds a connection
  });
});

describe('PortTransport', () => {
  it('opens and closes through the port, fails its streams if the worker cannot run, and reopens each from its offset after the back-forward cache', () => {
    const sent: ToWorker[] = [];
    const port = {
      postMessage: (m: ToWorker) => sent.push(m),
      onmessage: null as ((ev: MessageEvent<FromWorker>) => void) | null,
      start: () => {},
    };
    const transport = new PortTransport(port);
    const got: MuxEvent[] = [];
    const close = transport.open('/api', 'a', 3, (ev) => got.push(ev));
    const log: MuxEvent = { type: 'log', data: '{"run":"a","chunk":""}', lastEventId: '9', readyState: 1 };
    port.onmessage!({ data: { key: 0, event: log } } as MessageEvent<FromWorker>);
    port.onmessage!({ data: { key: 7, event: log } } as MessageEvent<FromWorker>); // not ours
    expect(got).toEqual([log]);
    transport.fail(); // the worker did not start: the stream hears its connection failed
    expect(got.at(-1)).toEqual({ type: 'error', data: '', lastEventId: '', readyState: 0 });
    transport.leave();
    transport.rejoin();
    close();
    close();
    expect(sent).toEqual([
      { op: 'open', key: 0, apiBase: '/api', runId: 'a', offset: 3 },
      { op: 'bye' },
      { op: 'open', key: 0, apiBase: '/api', runId: 'a', offset: 9 },
      { op: 'close', key: 0 },
    ]);
  });
});
