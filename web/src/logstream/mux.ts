/**
 * Many runs' live streams on one connection: `GET /api/streams?run=ID:OFFSET&...`.
 *
 * A browser opens at most six HTTP/1.1 connections per host; one EventSource per live viewer
 * would leave a seventh tab's terminal empty and every other trainlog page hanging. A
 * StreamMux keeps one EventSource for all the runs its subscribers follow (one per browser
 * when it runs in the SharedWorker, see shared.ts) and hands each subscriber its run's events
 * as they come, unchanged (their data also carries `"run"`, which the viewer ignores).
 *
 * Whenever the set of runs changes, the connection is made again with each run's offset: the
 * offset after the last `log` event of that run it has delivered (for a run two subscribers
 * follow, the smaller of theirs). So adding or removing a run loses and repeats no byte of
 * the others; a subscriber that is still behind gets what it has not seen, and drops what it
 * has (planChunk). A connection that fails is handed to every subscriber as an `error`, with
 * its readyState, and closed: each subscriber decides, as it does for a stream of its own,
 * when to open again (and whether to: a 401 or 404 is final).
 */
import type { EventSourceFactory, EventSourceLike } from './controller';
import { parseEventId } from './protocol';

/** The per-run events the server tags with their run (`log`, `heartbeat`, `reconnecting`, `done`). */
export const RUN_EVENTS = ['log', 'heartbeat', 'reconnecting', 'done'] as const;

/** One event for one subscriber: a run's event, or the connection's `open` or `error`. */
export interface MuxEvent {
  type: string;
  data: string;
  lastEventId: string;
  /** The connection's readyState when the event came (2: closed, the browser gave up). */
  readyState: number;
}
export type MuxListener = (ev: MuxEvent) => void;

/** Several runs' stream, each from its offset. */
export function streamsUrl(base: string, offsets: ReadonlyMap<string, number>): string {
  const runs = [...offsets].map(([run, offset]) => `run=${encodeURIComponent(`${run}:${offset}`)}`);
  return `${base}/streams?${runs.join('&')}`;
}

const RUN_PREFIX = /^\{"run":"([^"\\]*)"/;

/** The run an event of `/api/streams` belongs to: the first member of its data (null: none). */
export function runOfData(data: string): string | null {
  return RUN_PREFIX.exec(data)?.[1] ?? null;
}

interface Subscriber {
  runId: string;
  /** The offset this subscriber's stream is at: where a new connection starts it. */
  offset: number;
  listener: MuxListener;
  /** Opened behind the connection's position: it gets nothing until the next connection. */
  waiting: boolean;
}

/** How long a change to the set of runs waits for others before the connection is made again. */
export const REGROUP_MS = 25;

export class StreamMux {
  private readonly subs = new Map<number, Subscriber>();
  private nextKey = 0;
  private es: EventSourceLike | null = null;
  /** Where each run of the open connection is: its start offset, then each log event's id. */
  private positions = new Map<string, number>();
  /** Runs of the open connection whose `done` has come: the server sends no more for them. */
  private finished = new Set<string>();
  private regroupTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly apiBase: string,
    private readonly makeEs: EventSourceFactory,
  ) {}

  /** Follow `runId` from `offset`; returns the function that stops it. */
  open(runId: string, offset: number, listener: MuxListener): () => void {
    const key = this.nextKey++;
    const at = this.positions.get(runId);
    // The connection is ahead of this subscriber (or does not carry its run): make it again.
    const waiting = at === undefined || at > offset || this.finished.has(runId);
    this.subs.set(key, { runId, offset, listener, waiting });
    if (waiting) this.regroup();
    return () => this.close(key);
  }

  /** How many connections are open (0 or 1). */
  get connections(): number {
    return this.es ? 1 : 0;
  }

  private close(key: number): void {
    const sub = this.subs.get(key);
    if (!sub || !this.subs.delete(key)) return;
    if (this.subs.size === 0) {
      this.disconnect();
      if (this.regroupTimer) clearTimeout(this.regroupTimer);
      this.regroupTimer = null;
      return;
    }
    // A run no one follows any more leaves the connection, unless the server is done with it.
    const followed = [...this.subs.values()].some((s) => s.runId === sub.runId);
    if (!followed && this.positions.has(sub.runId) && !this.finished.has(sub.runId)) this.regroup();
  }

  private regroup(): void {
    if (this.regroupTimer) return;
    this.regroupTimer = setTimeout(() => {
      this.regroupTimer = null;
      this.connect();
    }, REGROUP_MS);
  }

  private disconnect(): void {
    this.es?.close();
    this.es = null;
    this.positions = new Map();
    this.finished = new Set();
  }

  private connect(): void {
    this.disconnect();
    const offsets = new Map<string, number>();
    for (const sub of this.subs.values()) {
      offsets.set(sub.runId, Math.min(sub.offset, offsets.get(sub.runId) ?? sub.offset));
      sub.waiting = false;
    }
    if (offsets.size === 0) return;
    const es = this.makeEs(streamsUrl(this.apiBase, offsets));
    this.es = es;
    this.positions = offsets;
    const current = (fn: (ev: MessageEvent<string>) => void) => (ev: MessageEvent<string>) => {
      if (this.es === es) fn(ev);
    };
    es.addEventListener('open', current(() => this.toConnected({ type: 'open', data: '', lastEventId: '', readyState: es.readyState })));
    es.addEventListener(
      'error',
      current(() => {
        const event = { type: 'error', data: '', lastEventId: '', readyState: es.readyState };
        // Never let the browser come back on its own: it would ask for the old offsets.
        const connected = [...this.positions.keys()];
        this.disconnect();
        this.deliver((runId) => connected.includes(runId), event);
      }),
    );
    for (const type of RUN_EVENTS) {
      es.addEventListener(type, current((ev) => this.onRunEvent(type, ev, es.readyState)));
    }
  }

  private toConnected(event: MuxEvent): void {
    this.deliver((runId) => this.positions.has(runId), event);
  }

  private onRunEvent(type: string, ev: MessageEvent<string>, readyState: number): void {
    const runId = runOfData(ev.data);
    if (runId === null || !this.positions.has(runId)) return;
    const id = type === 'log' ? parseEventId(ev.lastEventId) : null;
    if (id !== null) this.positions.set(runId, id);
    if (type === 'done') this.finished.add(runId);
    this.deliver((r) => r === runId, { type, data: ev.data, lastEventId: ev.lastEventId, readyState }, id);
  }

  private deliver(to: (runId: string) => boolean, event: MuxEvent, offset: number | null = null): void {
    for (const [key, sub] of [...this.subs]) {
      // A listener may close others; a waiting subscriber's run may be past its offset.
      if (!this.subs.has(key) || sub.waiting || !to(sub.runId)) continue;
      if (offset !== null && offset > sub.offset) sub.offset = offset;
      sub.listener(event);
    }
  }
}
