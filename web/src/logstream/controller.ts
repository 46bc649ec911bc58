/**
 * LogStreamController: history-then-stream for one run's log, framework-agnostic.
 *
 * 1. `GET /api/runs/{id}` for the log size; decide whether to load it whole or its tail.
 * 2. Load history in pages (`/logs?offset=&limit=`), awaiting the sink after each page so a
 *    big log is pushed only as fast as the terminal consumes it.
 * 3. Open the SSE stream at exactly the offset history ended at: nothing lost or repeated.
 * 4. On `log`: write only bytes past what we have (by the event id); a gap re-opens the stream.
 *    On `done`: close the EventSource (the browser would reconnect forever otherwise), fetch
 *    anything still missing, report the exit code.
 *    On an error or a silent stream (heartbeat watchdog): report "reconnecting", close, and
 *    re-open at the last event id with backoff. When the browser gave up on the stream (an
 *    HTTP error, not a dropped connection), ask for the run first: a 401 or 404 is final
 *    (phase "error"), anything transient (503 while the database is away, no answer) is
 *    retried, so an outage never turns into an error page.
 *    On the server's `reconnecting` event (it lost the database under an open stream): report
 *    "reconnecting" and keep the stream; its next event means it is back.
 * 5. History loading retries transient failures the same way.
 * 6. `dispose()` closes everything; no callback fires after it.
 */
import {
  DEFAULT_TAIL_POLICY,
  MiB,
  type TailPolicy,
  base64ToBytes,
  decideHistoryStart,
  historyUrl,
  isTransientStatus,
  parseDone,
  parseEventId,
  parseLogChunk,
  planChunk,
  reconnectDelay,
  streamUrl,
  tailSkip,
} from './protocol';
import { HttpError, fetchJson } from './http';
import { type StreamOpener, sharedStreams } from './shared';

export type LogStreamPhase = 'loading' | 'live' | 'reconnecting' | 'done' | 'error';

export interface LogStreamState {
  phase: LogStreamPhase;
  /** Bytes of the log the client has (the offset the stream resumes from). */
  offset: number;
  /** When only the tail is loaded: the offset it starts at; else null. */
  shownFrom: number | null;
  /** Total log size as last known. */
  size: number;
  exitCode: number | null;
  error: string | null;
  /** The HTTP status behind `error` (0: no answer), when there is one. */
  errorStatus: number | null;
  /** The run's status as last asked (refreshed when the stream says it is done). */
  runStatus: string | null;
  /** Columns the run's terminal had, if the server records it. */
  termCols: number | null;
}

export const INITIAL_LOG_STREAM_STATE: LogStreamState = {
  phase: 'loading',
  offset: 0,
  shownFrom: null,
  size: 0,
  exitCode: null,
  error: null,
  errorStatus: null,
  runStatus: null,
  termCols: null,
};

/** The part of the browser's EventSource that we use. */
export interface EventSourceLike {
  addEventListener(type: string, listener: (ev: MessageEvent<string>) => void): void;
  close(): void;
  readonly readyState: number;
}
export type EventSourceFactory = (url: string) => EventSourceLike;

export type ByteSink = (bytes: Uint8Array) => void | Promise<void>;

export interface LogStreamOptions {
  runId: string;
  sink: ByteSink;
  onState?: (state: LogStreamState) => void;
  /**
   * Called synchronously, before any byte is written, once the run's terminal width is known
   * (null: the run has none, fit the box). A run still queued gets it when it starts, so its
   * first streamed bytes are held back until the run has been asked again.
   */
  onTermCols?: (cols: number | null) => void;
  apiBase?: string;
  tailPolicy?: TailPolicy;
  pageBytes?: number;
  /** When only a tail is loaded, keep at most this many of its lines (the scrollback). */
  maxTailLines?: number;
  /** No event (not even a heartbeat) for this long means the stream is dead. */
  watchdogMs?: number;
  fetch?: typeof fetch;
  /** Opens the stream: by default on the browser's one shared connection (shared.ts). */
  connect?: StreamOpener;
  /** Or a stream of its own per run, made by this factory (`/runs/{id}/logs/stream`). */
  eventSource?: EventSourceFactory;
}

interface HistoryPage {
  offset: number;
  size: number;
  data: string;
}

interface RunInfo {
  status?: string;
  log_size?: number;
  term_cols?: number | null;
}

function colsOf(run: RunInfo): number | null {
  return typeof run.term_cols === 'number' && run.term_cols > 0 ? run.term_cols : null;
}

/** The HTTP status of a failed request; 0 when there was no answer (network, CORS). */
function statusOf(err: unknown): number {
  return err instanceof HttpError ? err.status : 0;
}

const EVENT_SOURCE_CLOSED = 2;

export class LogStreamController {
  private readonly opts: Required<
    Omit<LogStreamOptions, 'onState' | 'onTermCols' | 'fetch' | 'connect' | 'eventSource' | 'maxTailLines'>
  > &
    Pick<LogStreamOptions, 'onState' | 'onTermCols' | 'maxTailLines'>;
  private readonly fetchFn: typeof fetch;
  private readonly connect: StreamOpener;
  private state: LogStreamState = INITIAL_LOG_STREAM_STATE;
  private es: EventSourceLike | null = null;
  private watchdog: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private disposed = false;
  private readonly abort = new AbortController();
  /** Bumped whenever a stream is opened, so events of an old one are ignored. */
  private generation = 0;
  /** Whether the run's terminal width may still change (it had not started when asked). */
  private colsPending = false;
  /** Streamed bytes held back while the run is asked again for its width. */
  private held: Uint8Array[] | null = null;
  private heldDone: Promise<void> = Promise.resolve();
  /** Where history ends (the log's size when first asked); null until the run is known. */
  private historyEnd: number | null = null;
  /** Whether the first history page is a tail still to be cut to whole lines. */
  private tailPending = false;

  constructor(options: LogStreamOptions) {
    this.opts = {
      apiBase: '/api',
      tailPolicy: DEFAULT_TAIL_POLICY,
      pageBytes: 1 * MiB,
      watchdogMs: 40_000,
      ...options,
    };
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    const { eventSource } = options;
    const { apiBase } = this.opts;
    this.connect =
      options.connect ??
      (eventSource ? (runId, offset) => eventSource(streamUrl(apiBase, runId, offset)) : sharedStreams(apiBase));
  }

  getState(): LogStreamState {
    return this.state;
  }

  start(): void {
    void this.boot();
  }

  /** Load history, retrying what may pass (an outage) with backoff; fail on the rest. */
  private async boot(): Promise<void> {
    for (;;) {
      try {
        await this.loadHistory();
        return;
      } catch (err) {
        if (this.disposed) return;
        if (!isTransientStatus(statusOf(err))) {
          this.fail(err);
          return;
        }
        this.setState({ phase: 'reconnecting' });
        await new Promise<void>((resolve) => {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            resolve();
          }, reconnectDelay(this.attempt++));
        });
        if (this.disposed) return;
      }
    }
  }

  private fail(err: unknown): void {
    this.closeStream();
    this.setState({
      phase: 'error',
      error: err instanceof Error ? err.message : String(err),
      errorStatus: statusOf(err),
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.abort.abort();
    this.closeStream();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private setState(patch: Partial<LogStreamState>): void {
    if (this.disposed) return;
    this.state = { ...this.state, ...patch };
    this.opts.onState?.(this.state);
  }

  private getJson<T>(url: string): Promise<T> {
    return fetchJson<T>(this.fetchFn, url, { signal: this.abort.signal });
  }

  private async loadHistory(): Promise<void> {
    if (this.historyEnd === null) {
      const run = await this.getRun();
      if (this.disposed) return;
      const size = typeof run.log_size === 'number' ? run.log_size : 0;
      const termCols = colsOf(run);
      this.colsPending = termCols === null && (run.status === 'queued' || size === 0);
      this.opts.onTermCols?.(termCols);
      const plan = decideHistoryStart(size, this.opts.tailPolicy);
      this.historyEnd = size;
      this.tailPending = plan.truncated;
      this.setState({
        size,
        termCols,
        runStatus: typeof run.status === 'string' ? run.status : null,
        offset: plan.start,
        shownFrom: plan.truncated ? plan.start : null,
      });
    }
    // Load up to the size we were told about; whatever comes after arrives on the stream.
    // After a failed page, this picks up at the offset we have.
    await this.fetchRange(this.state.offset, this.historyEnd, true);
    if (this.disposed) return;
    this.openStream();
  }

  private getRun(): Promise<RunInfo> {
    return this.getJson<RunInfo>(`${this.opts.apiBase}/runs/${encodeURIComponent(this.opts.runId)}`);
  }

  /** Write streamed bytes, holding them back while the run's width is being asked for. */
  private sinkStreamed(bytes: Uint8Array): void {
    if (this.held) {
      this.held.push(bytes);
      return;
    }
    if (!this.colsPending) {
      void this.opts.sink(bytes);
      return;
    }
    this.colsPending = false;
    const held = [bytes];
    this.held = held;
    this.heldDone = (async () => {
      try {
        const run = await this.getRun();
        if (this.disposed) return;
        const cols = colsOf(run);
        if (cols !== this.state.termCols) {
          this.opts.onTermCols?.(cols);
          this.setState({ termCols: cols });
        }
      } catch {
        /* keep the width we have */
      }
      this.held = null;
      if (this.disposed) return;
      for (const b of held) void this.opts.sink(b);
    })();
  }

  /**
   * Fetch [from, to) in pages and write each, awaiting the sink (backpressure). With
   * `history`, a pending tail is fetched as one page and cut to whole lines first.
   */
  private async fetchRange(from: number, to: number, history = false): Promise<void> {
    let offset = from;
    while (offset < to && !this.disposed) {
      const trim = history && this.tailPending;
      const limit = trim ? to - offset : Math.min(this.opts.pageBytes, to - offset);
      const page = await this.getJson<HistoryPage>(historyUrl(this.opts.apiBase, this.opts.runId, offset, limit));
      if (this.disposed) return;
      const bytes = base64ToBytes(page.data ?? '');
      if (bytes.length === 0) break; // the log is shorter than we were told: stream the rest
      let out = bytes;
      if (trim) {
        const skip = tailSkip(bytes, 64 * 1024, this.opts.maxTailLines);
        out = bytes.subarray(skip);
        this.setState({ shownFrom: offset + skip });
        this.tailPending = false;
      }
      offset += bytes.length;
      this.setState({ offset, size: Math.max(this.state.size, page.size ?? 0, offset) });
      if (out.length) await this.opts.sink(out);
    }
  }

  private openStream(): void {
    if (this.disposed || this.state.phase === 'done') return;
    this.closeStream();
    const gen = ++this.generation;
    const es = this.connect(this.opts.runId, this.state.offset);
    this.es = es;
    const live = (fn: (ev: MessageEvent<string>) => void) => (ev: MessageEvent<string>) => {
      if (gen !== this.generation || this.disposed) return;
      fn(ev);
    };
    es.addEventListener('open', live(() => this.onAlive()));
    es.addEventListener('heartbeat', live(() => this.onAlive()));
    es.addEventListener('log', live((ev) => this.onLog(ev)));
    es.addEventListener('done', live((ev) => void this.onDone(ev)));
    es.addEventListener('reconnecting', live(() => this.onServerRetrying()));
    es.addEventListener('error', live(() => this.onError(es)));
    this.armWatchdog();
  }

  private closeStream(): void {
    this.generation++;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    if (this.es) {
      this.es.close();
      this.es = null;
    }
  }

  private armWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      if (this.disposed || this.state.phase === 'done') return;
      // Silent for too long: the connection may be half-open. Start over at our offset.
      this.reconnect(0);
    }, this.opts.watchdogMs);
  }

  private onAlive(): void {
    this.armWatchdog();
    this.markLive();
  }

  /** The stream works: the next failure starts the backoff over. Does not touch the watchdog. */
  private markLive(): void {
    this.attempt = 0;
    if (this.state.phase !== 'live') this.setState({ phase: 'live', error: null });
  }

  private onLog(ev: MessageEvent<string>): void {
    this.armWatchdog(); // any event, even one we cannot use, shows the connection is up
    const bytes = parseLogChunk(ev.data);
    const id = parseEventId(ev.lastEventId);
    if (!bytes || id === null) return;
    const plan = planChunk(this.state.offset, id, bytes.length);
    if (plan.kind === 'duplicate') {
      this.markLive();
      return;
    }
    if (plan.kind === 'gap') {
      // Never write past a hole: re-open at what we have, the server resends from there.
      this.reconnect(reconnectDelay(this.attempt++) - reconnectDelay(0));
      return;
    }
    this.markLive();
    const out = plan.skip ? bytes.subarray(plan.skip) : bytes;
    this.setState({ offset: plan.nextOffset, size: Math.max(this.state.size, plan.nextOffset) });
    this.sinkStreamed(out);
  }

  private async onDone(ev: MessageEvent<string>): Promise<void> {
    const done = parseDone(ev.data);
    this.closeStream(); // or the browser reconnects forever
    await this.heldDone;
    if (done.finalSize !== null && done.finalSize > this.state.offset) {
      try {
        await this.fetchRange(this.state.offset, done.finalSize);
      } catch {
        /* the exit code still matters more than the missing tail */
      }
    }
    // How it ended ("lost", "cancelled") is the run's, not the stream's, to say.
    let runStatus = this.state.runStatus;
    try {
      const run = await this.getRun();
      if (typeof run.status === 'string') runStatus = run.status;
    } catch {
      /* keep what we knew */
    }
    this.setState({
      phase: 'done',
      exitCode: done.exitCode,
      runStatus,
      size: Math.max(this.state.size, done.finalSize ?? 0),
      error: null,
      errorStatus: null,
    });
  }

  /** The server lost its database under this stream; it keeps the stream and retries. */
  private onServerRetrying(): void {
    this.armWatchdog();
    if (this.state.phase !== 'reconnecting') this.setState({ phase: 'reconnecting' });
  }

  private onError(es: EventSourceLike): void {
    // CLOSED: the browser will not retry (an HTTP error or a wrong answer), so ask why first.
    this.reconnect(reconnectDelay(this.attempt++), es.readyState === EVENT_SOURCE_CLOSED);
  }

  private reconnect(delayMs: number, checkFirst = false): void {
    this.closeStream();
    if (this.disposed || this.state.phase === 'done' || this.state.phase === 'error') return;
    this.setState({ phase: 'reconnecting' });
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (checkFirst) void this.checkThenOpen();
      else this.openStream();
    }, delayMs);
  }

  /** Ask for the run before re-opening: a final answer (401, 404) ends the retries. */
  private async checkThenOpen(): Promise<void> {
    try {
      const run = await this.getRun();
      if (this.disposed) return;
      if (typeof run.status === 'string' && run.status !== this.state.runStatus) this.setState({ runStatus: run.status });
    } catch (err) {
      if (this.disposed) return;
      if (isTransientStatus(statusOf(err))) this.reconnect(reconnectDelay(this.attempt++), true);
      else this.fail(err);
      return;
    }
    this.openStream();
  }
}
