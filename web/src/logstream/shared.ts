/**
 * The tab's side of the shared log stream: an EventSourceLike per viewer whose events come
 * from one connection per browser. That connection lives in a SharedWorker (worker.ts) that
 * every trainlog tab of the origin talks to; where SharedWorker does not exist, in the page
 * (one connection per tab, shared by its viewers).
 */
import type { EventSourceLike } from './controller';
import { type MuxEvent, type MuxListener, StreamMux } from './mux';
import { parseEventId } from './protocol';

/** Opens one run's stream from an offset. */
export type StreamOpener = (runId: string, offset: number) => EventSourceLike;

/** What the tab asks of the worker. */
export type ToWorker =
  | { op: 'open'; key: number; apiBase: string; runId: string; offset: number }
  | { op: 'close'; key: number }
  /** The page is going away (or into the back-forward cache): close all its streams. */
  | { op: 'bye' };

/** What the worker tells a tab: an event for one of its streams. */
export interface FromWorker {
  key: number;
  event: MuxEvent;
}

/** Where the connection is: opens a run's stream and returns the function that closes it. */
interface Transport {
  open(apiBase: string, runId: string, offset: number, listener: MuxListener): () => void;
}

/** In the page: one StreamMux per API base. */
export class PageTransport implements Transport {
  private readonly muxes = new Map<string, StreamMux>();
  constructor(private readonly makeEs = (url: string): EventSourceLike => new EventSource(url)) {}
  open(apiBase: string, runId: string, offset: number, listener: MuxListener): () => void {
    let mux = this.muxes.get(apiBase);
    if (!mux) {
      mux = new StreamMux(apiBase, this.makeEs);
      this.muxes.set(apiBase, mux);
    }
    return mux.open(runId, offset, listener);
  }
}

interface PortLike {
  postMessage(message: ToWorker): void;
  onmessage: ((ev: MessageEvent<FromWorker>) => void) | null;
  start(): void;
}

interface Open {
  apiBase: string;
  runId: string;
  offset: number;
  listener: MuxListener;
}

/**
 * Through the shared worker's port. The page keeps each stream's offset too, so that a page
 * back from the back-forward cache (its streams closed by `bye`) opens them again where
 * they were.
 */
export class PortTransport implements Transport {
  private readonly opens = new Map<number, Open>();
  private nextKey = 0;
  constructor(private readonly port: PortLike) {
    port.onmessage = (ev) => {
      const open = this.opens.get(ev.data.key);
      if (!open) return;
      const id = ev.data.event.type === 'log' ? parseEventId(ev.data.event.lastEventId) : null;
      if (id !== null && id > open.offset) open.offset = id;
      open.listener(ev.data.event);
    };
    port.start();
  }
  open(apiBase: string, runId: string, offset: number, listener: MuxListener): () => void {
    const key = this.nextKey++;
    this.opens.set(key, { apiBase, runId, offset, listener });
    this.port.postMessage({ op: 'open', key, apiBase, runId, offset });
    return () => {
      if (this.opens.delete(key)) this.port.postMessage({ op: 'close', key });
    };
  }
  /** The page is hidden for good or for the cache: the worker forgets its streams. */
  leave(): void {
    this.port.postMessage({ op: 'bye' });
  }
  /** The worker cannot run: each stream is told its connection failed, so it opens again
   * (through whatever transport is current by then). */
  fail(): void {
    const event: MuxEvent = { type: 'error', data: '', lastEventId: '', readyState: 0 };
    for (const { listener } of [...this.opens.values()]) listener(event);
  }
  /** The page is back from the cache: its streams again, from where they were. */
  rejoin(): void {
    for (const [key, { apiBase, runId, offset }] of this.opens) {
      this.port.postMessage({ op: 'open', key, apiBase, runId, offset });
    }
  }
}

/** An EventSource for one run whose events come through a transport. */
class SharedEventSource implements EventSourceLike {
  readyState = 0;
  private readonly listeners = new Map<string, Array<(ev: MessageEvent<string>) => void>>();
  private readonly stop: () => void;
  constructor(transport: Transport, apiBase: string, runId: string, offset: number) {
    this.stop = transport.open(apiBase, runId, offset, (event) => this.dispatch(event));
  }
  addEventListener(type: string, listener: (ev: MessageEvent<string>) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close(): void {
    this.readyState = 2;
    this.stop();
  }
  private dispatch(event: MuxEvent): void {
    if (this.readyState === 2) return;
    this.readyState = event.type === 'open' ? 1 : event.readyState;
    const message = new MessageEvent<string>(event.type, { data: event.data, lastEventId: event.lastEventId });
    for (const listener of this.listeners.get(event.type) ?? []) listener(message);
  }
}

function browserTransport(): Transport {
  if (typeof SharedWorker === 'undefined') return new PageTransport();
  try {
    const worker = new SharedWorker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'trainlog-streams' });
    const transport = new PortTransport(worker.port as unknown as PortLike);
    worker.addEventListener('error', () => {
      current = new PageTransport(); // its script did not load, or it failed to start
      transport.fail();
    });
    addEventListener('pagehide', () => transport.leave());
    addEventListener('pageshow', (ev) => {
      if (ev.persisted) transport.rejoin();
    });
    return transport;
  } catch {
    return new PageTransport(); // a worker the page may not start (a sandbox, a policy)
  }
}

let current: Transport | null = null;

/** The browser's shared stream of runs, made on first use. */
export function sharedStreams(apiBase: string, using?: Transport): StreamOpener {
  return (runId, offset) => {
    const transport = using ?? (current ??= browserTransport());
    return new SharedEventSource(transport, apiBase, runId, offset);
  };
}
