/**
 * The log-stream protocol as pure functions: no I/O, no DOM, no React.
 *
 * The log is an append-only byte sequence; a byte offset is the only cursor. The client
 * loads history (`GET /logs?offset=&limit=`) up to some offset, then opens the SSE stream
 * at exactly that offset. Every SSE `log` event carries `id: <offset after this chunk>`,
 * so the start of a chunk is `id - chunk.length`, and the client can tell a duplicate,
 * an overlap or a gap from the offset it already has.
 */

export const MiB = 1024 * 1024;

export interface TailPolicy {
  /** Logs larger than this are not loaded whole: only their tail is. */
  thresholdBytes: number;
  /** How many bytes of the tail to load when the log is over the threshold. */
  tailBytes: number;
}

export const DEFAULT_TAIL_POLICY: TailPolicy = {
  thresholdBytes: 5 * MiB,
  tailBytes: 1 * MiB,
};

export interface HistoryPlan {
  /** Offset where history loading starts. */
  start: number;
  /** True when the start of the log is skipped (only the tail is shown). */
  truncated: boolean;
}

/** Where to start loading history for a log of `size` bytes. */
export function decideHistoryStart(size: number, policy: TailPolicy = DEFAULT_TAIL_POLICY): HistoryPlan {
  if (!Number.isFinite(size) || size <= 0) return { start: 0, truncated: false };
  if (size <= policy.thresholdBytes) return { start: 0, truncated: false };
  const tail = Math.max(0, Math.min(policy.tailBytes, size));
  return { start: size - tail, truncated: tail < size };
}

/**
 * When only a tail is shown, its first bytes are usually the middle of a line (and may be
 * the middle of a UTF-8 character or an escape sequence). Skip to just after the first
 * newline within `maxScan` bytes; if there is none, skip any UTF-8 continuation bytes.
 * With `maxLines`, also skip whole lines so at most that many remain: no point pushing more
 * into a terminal than its scrollback holds. Returns how many bytes to skip.
 */
export function tailSkip(bytes: Uint8Array, maxScan = 64 * 1024, maxLines?: number): number {
  let skip = -1;
  const n = Math.min(bytes.length, maxScan);
  for (let i = 0; i < n; i++) {
    if (bytes[i] === 0x0a) {
      skip = i + 1;
      break;
    }
  }
  if (skip < 0) {
    skip = 0;
    while (skip < bytes.length && skip < 4 && (bytes[skip]! & 0xc0) === 0x80) skip++;
  }
  if (maxLines !== undefined && maxLines >= 0) {
    // Walk back over maxLines newlines (a final newline ends the last line, it starts none).
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0a) end--;
    let seen = 0;
    for (let i = end - 1; i >= skip; i--) {
      if (bytes[i] === 0x0a && ++seen === maxLines) {
        return Math.max(skip, i + 1);
      }
    }
  }
  return skip;
}

/** What to do with one SSE `log` chunk, given how many bytes we already have. */
export type ChunkPlan =
  | { kind: 'write'; skip: number; nextOffset: number }
  | { kind: 'duplicate' }
  | { kind: 'gap'; expected: number; got: number };

/**
 * Decide how a chunk ending at byte `eventId` with `length` bytes fits a log of which the
 * client has `have` bytes. A chunk that starts before `have` overlaps (write only the new
 * tail); one entirely before is a duplicate; one that starts after `have` leaves a gap,
 * which the caller must fill (re-open the stream at `have`) rather than write.
 */
export function planChunk(have: number, eventId: number, length: number): ChunkPlan {
  const start = eventId - length;
  if (eventId <= have) return { kind: 'duplicate' };
  if (start > have) return { kind: 'gap', expected: have, got: start };
  return { kind: 'write', skip: have - start, nextOffset: eventId };
}

/** Parse the SSE `id:` (the byte offset after the chunk). NaN-safe: returns null if bad. */
export function parseEventId(id: string | null | undefined): number | null {
  if (id == null || id === '') return null;
  if (!/^\d+$/.test(id.trim())) return null;
  const n = Number(id.trim());
  return Number.isSafeInteger(n) ? n : null;
}

/** Decode standard base64 to bytes (never to a string: bytes go to the terminal as is). */
export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export interface DoneInfo {
  exitCode: number | null;
  finalSize: number | null;
}

export function parseDone(data: string): DoneInfo {
  try {
    const v = JSON.parse(data) as { exit_code?: unknown; final_size?: unknown };
    return {
      exitCode: typeof v.exit_code === 'number' ? v.exit_code : null,
      finalSize: typeof v.final_size === 'number' ? v.final_size : null,
    };
  } catch {
    return { exitCode: null, finalSize: null };
  }
}

export function parseLogChunk(data: string): Uint8Array | null {
  try {
    const v = JSON.parse(data) as { chunk?: unknown };
    if (typeof v.chunk !== 'string') return null;
    return base64ToBytes(v.chunk);
  } catch {
    return null;
  }
}

/** Delay before reconnect attempt `attempt` (0-based): 0.5 s, 1 s, 2 s, ... capped. */
export function reconnectDelay(attempt: number, baseMs = 500, maxMs = 10_000): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt));
}

export function streamUrl(base: string, runId: string, offset: number): string {
  return `${base}/runs/${encodeURIComponent(runId)}/logs/stream?offset=${offset}`;
}

export function historyUrl(base: string, runId: string, offset: number, limit: number): string {
  return `${base}/runs/${encodeURIComponent(runId)}/logs?offset=${offset}&limit=${limit}`;
}

export function rawUrl(base: string, runId: string): string {
  return `${base}/runs/${encodeURIComponent(runId)}/logs/raw`;
}

/** The log as plain text: escapes stripped, `\r` redraws collapsed (a download). */
export function textUrl(base: string, runId: string): string {
  return `${base}/runs/${encodeURIComponent(runId)}/logs/text`;
}

/**
 * Whether a failed request is worth retrying: no answer at all (status 0), a timeout, rate
 * limiting, or a server-side error (503 while the database is away). Anything else (401, 404,
 * 422) will not get better by asking again.
 */
export function isTransientStatus(status: number): boolean {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

export type EndTone = 'ok' | 'error' | 'muted';

export interface EndDescription {
  text: string;
  tone: EndTone;
}

const SIGNAL_NAMES: Record<number, string> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  6: 'SIGABRT',
  9: 'SIGKILL',
  11: 'SIGSEGV',
  15: 'SIGTERM',
};

/** "SIGTERM" for 15, "signal 42" for one without a common name. */
export function signalName(signal: number): string {
  return SIGNAL_NAMES[signal] ?? `signal ${signal}`;
}

/**
 * How a finished run ended, in words, from the `done` event's exit code and the run's status
 * (null when unknown). A negative exit code is a child killed by that signal; no exit code
 * means the child's end was never seen (its runner died) or it never started.
 */
export function describeEnd(exitCode: number | null, status: string | null): EndDescription {
  if (status === 'lost') return { text: 'Runner lost', tone: 'error' };
  const cancelled = status === 'cancelled';
  if (exitCode === null) {
    if (cancelled) return { text: 'Cancelled', tone: 'muted' };
    if (status === 'failed') return { text: 'Failed without an exit code', tone: 'error' };
    return { text: 'Ended without an exit code', tone: status === 'succeeded' ? 'muted' : 'error' };
  }
  if (exitCode < 0) {
    const by = signalName(-exitCode);
    return cancelled ? { text: `Cancelled (killed by ${by})`, tone: 'muted' } : { text: `Killed by ${by}`, tone: 'error' };
  }
  if (cancelled) return { text: `Cancelled (exited with code ${exitCode})`, tone: 'muted' };
  return { text: `Exited with code ${exitCode}`, tone: exitCode === 0 ? 'ok' : 'error' };
}

/** A readable message from an API error body (`{"detail": string | [{msg}]}`) or status. */
export function errorMessage(status: number, body: unknown): string {
  const detail = (body as { detail?: unknown } | null)?.detail;
  if (typeof detail === 'string' && detail) return detail;
  if (Array.isArray(detail)) {
    const msgs = detail
      .map((d) => {
        const e = d as { msg?: unknown; loc?: unknown };
        const where = Array.isArray(e.loc) ? e.loc.filter((x) => !['body', 'path', 'query'].includes(String(x))).join('.') : '';
        const msg = typeof e.msg === 'string' ? e.msg : JSON.stringify(d);
        return where ? `${where}: ${msg}` : msg;
      })
      .filter(Boolean);
    if (msgs.length) return msgs.join('; ');
  }
  return `HTTP ${status}`;
}
