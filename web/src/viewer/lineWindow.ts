/**
 * The lines the viewer holds, as pure functions: no I/O, no DOM, no terminal.
 *
 * The log is numbered in lines (1-based; a line is the bytes up to and including its `\n`,
 * the last may be unterminated; a `\r` redraw stays in its line). The viewer holds one run
 * of consecutive whole lines, `Held`, at most `HELD_LINES` of them: a few windows of
 * `WINDOW_LINES`. Scrolling past either edge loads the next window from the server and joins
 * it on; the far edge is cut so memory stays bounded. Joins check offsets and line numbers,
 * so a hole or an overlap is refused, never shown.
 */

/** Lines asked of the server per window (its own default page). */
export const WINDOW_LINES = 1000;
/** Windows held at once: the terminal is rewritten from these, so this bounds its memory. */
export const HELD_WINDOWS = 3;
export const HELD_LINES = WINDOW_LINES * HELD_WINDOWS;

/** One `/logs/lines` answer, decoded. */
export interface LinesPage {
  start: number;
  offset: number;
  endOffset: number;
  totalLines: number;
  size: number;
  data: Uint8Array;
  times: (number | null)[];
}

export interface Held {
  /** Line number of the first held line. */
  first: number;
  /** Byte offset of the first held line. */
  offset: number;
  /** The held lines' bytes, exactly as stored. */
  bytes: Uint8Array;
  /** Where each held line starts in `bytes`. */
  starts: number[];
  /** Each held line's time (epoch seconds), null when unknown. */
  times: (number | null)[];
}

const NL = 0x0a;

/** Where each line of `bytes` starts (an unterminated last line counts; no bytes, no line). */
export function lineStarts(bytes: Uint8Array): number[] {
  const starts: number[] = [];
  if (bytes.length === 0) return starts;
  starts.push(0);
  for (let i = bytes.indexOf(NL); i >= 0 && i + 1 < bytes.length; i = bytes.indexOf(NL, i + 1)) starts.push(i + 1);
  return starts;
}

export function heldFromPage(page: LinesPage): Held {
  const starts = lineStarts(page.data);
  const times = starts.map((_, i) => page.times[i] ?? null);
  return { first: page.start, offset: page.offset, bytes: page.data, starts, times };
}

export const lineCount = (h: Held): number => h.starts.length;
/** Line number just past the held ones. */
export const nextLine = (h: Held): number => h.first + h.starts.length;
/** Byte offset just past the held bytes. */
export const endOffset = (h: Held): number => h.offset + h.bytes.length;
/** Whether the last held line ends with its newline (more bytes start a new line). */
export const endsWhole = (h: Held): boolean => h.bytes.length === 0 || h.bytes[h.bytes.length - 1] === NL;

export function concat(...parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * `a` then `b`, where `b` starts exactly where `a` ends (byte offset and line number), and `a`
 * ends with a whole line. Anything else would show a gap or a repeated line: null.
 */
export function join(a: Held, b: Held): Held | null {
  if (lineCount(a) === 0) return b;
  if (lineCount(b) === 0) return a;
  if (b.offset !== endOffset(a) || b.first !== nextLine(a) || !endsWhole(a)) return null;
  return {
    first: a.first,
    offset: a.offset,
    bytes: concat(a.bytes, b.bytes),
    starts: [...a.starts, ...b.starts.map((s) => s + a.bytes.length)],
    times: [...a.times, ...b.times],
  };
}

/**
 * Live bytes that follow the held ones: they may finish the last (unterminated) line and start
 * new ones. New lines' times are unknown until asked (`null`). Returns the new Held and how
 * many lines were added (a continued line is not new).
 */
export function appendLive(h: Held, bytes: Uint8Array): Held {
  if (bytes.length === 0) return h;
  const base = h.bytes.length;
  const whole = endsWhole(h);
  const more = lineStarts(bytes).filter((s) => whole || s > 0);
  return {
    first: h.first,
    offset: h.offset,
    bytes: concat(h.bytes, bytes),
    starts: [...h.starts, ...more.map((s) => s + base)],
    times: [...h.times, ...more.map(() => null)],
  };
}

/** The held lines numbered [from, to), clamped to what is held. */
export function slice(h: Held, from: number, to: number): Held {
  const i = Math.max(0, Math.min(lineCount(h), from - h.first));
  const j = Math.max(i, Math.min(lineCount(h), to - h.first));
  const b0 = i < lineCount(h) ? h.starts[i]! : h.bytes.length;
  const b1 = j < lineCount(h) ? h.starts[j]! : h.bytes.length;
  return {
    first: h.first + i,
    offset: h.offset + b0,
    bytes: h.bytes.subarray(b0, b1),
    starts: h.starts.slice(i, j).map((s) => s - b0),
    times: h.times.slice(i, j),
  };
}

/** The bytes of held line `n` (empty when not held). */
export function lineBytes(h: Held, n: number): Uint8Array {
  const i = n - h.first;
  if (i < 0 || i >= lineCount(h)) return new Uint8Array(0);
  return h.bytes.subarray(h.starts[i]!, i + 1 < lineCount(h) ? h.starts[i + 1]! : h.bytes.length);
}

/** The lines to ask for so that line `n` sits in the middle of one window. */
export function windowAround(n: number, total: number): { start: number; count: number } {
  const start = Math.max(1, Math.min(n - Math.floor(WINDOW_LINES / 2), total - WINDOW_LINES + 1));
  return { start, count: WINDOW_LINES };
}

/** The window before line `first` (first > 1). */
export function windowBefore(first: number): { start: number; count: number } {
  const start = Math.max(1, first - WINDOW_LINES);
  return { start, count: first - start };
}

/**
 * Terminal rows to log lines. A log line takes one or more rows (it wraps at the run's
 * width); a row that is not a wrapped continuation starts the next line. `wrapped[r]` is
 * xterm's `isWrapped` for row r. Returns the row each line starts on, for as many lines as
 * the rows show (`lines` caps it: rows past the held lines are the empty screen).
 */
export function rowStarts(wrapped: readonly boolean[], lines: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < wrapped.length && out.length < lines; r++) if (r === 0 || !wrapped[r]) out.push(r);
  return out;
}

/** Index (0-based, into `starts`) of the line that row `row` belongs to. */
export function lineIndexAtRow(starts: readonly number[], row: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  if (hi < 0) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= row) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** A permalink's lines: `#L48213` or `#L48213-48230` (in either order); null otherwise. */
export function parseLineHash(hash: string): { from: number; to: number } | null {
  const m = /^#?L(\d{1,12})(?:-L?(\d{1,12}))?$/.exec(hash.trim());
  if (!m) return null;
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (a < 1 || b < 1) return null;
  return { from: Math.min(a, b), to: Math.max(a, b) };
}

export function lineHash(from: number, to = from): string {
  return from === to ? `#L${from}` : `#L${from}-${to}`;
}

/**
 * The address bar's hash once lines `range` are highlighted: their permalink, or, with none,
 * no line hash (another hash is left alone).
 */
export function hashFor(range: { from: number; to: number } | null, current: string): string {
  if (range) return lineHash(range.from, range.to);
  return parseLineHash(current) ? '' : current;
}

const NUM = new Intl.NumberFormat('en-US');

/** "lines 48,100-48,140 of 2,310,552" */
export function describeView(from: number, to: number, total: number): string {
  if (total <= 0 || to < from) return 'no lines';
  return `lines ${NUM.format(from)}-${NUM.format(to)} of ${NUM.format(total)}`;
}

/** A line's time for the gutter: UTC clock time, or offset from the run's start. */
export function formatLineTime(t: number | null, mode: 'absolute' | 'relative', runStart: number | null): string {
  if (t === null) return '';
  if (mode === 'absolute') return new Date(t * 1000).toISOString().slice(11, 23);
  const d = Math.max(0, t - (runStart ?? t));
  const h = Math.floor(d / 3600);
  const m = Math.floor((d % 3600) / 60);
  const s = (d % 60).toFixed(3).padStart(6, '0');
  return `+${h}:${String(m).padStart(2, '0')}:${s}`;
}

/**
 * What the jump box means: `#L12`/`12`/`12,345` a line, anything `Date` can read with a date
 * (`2026-12-06T23:10:00Z`) or a time of day (`23:10`, `23:10:05`, UTC, on the run's first day)
 * a time; null when it is neither.
 */
export function parseJump(
  text: string,
  runStart: number | null,
): { line: number } | { time: number } | null {
  const s = text.trim();
  const asLine = /^#?L?([\d,_ ]+)$/i.exec(s);
  if (asLine) {
    const n = Number(asLine[1]!.replace(/[,_ ]/g, ''));
    return Number.isSafeInteger(n) && n >= 1 ? { line: n } : null;
  }
  const tod = /^(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?$/.exec(s);
  if (tod) {
    if (runStart === null) return null;
    const day = Math.floor(runStart / 86400) * 86400;
    let t = day + Number(tod[1]) * 3600 + Number(tod[2]) * 60 + Number(tod[3] ?? 0);
    if (t < runStart - 1) t += 86400; // a time before the start means the next day
    return { time: t };
  }
  if (!/\d{4}-\d{2}-\d{2}/.test(s)) return null;
  const ms = Date.parse(/[zZ]|[+-]\d{2}:?\d{2}$/.test(s) ? s : `${s}Z`);
  return Number.isFinite(ms) ? { time: ms / 1000 } : null;
}

/** How many lines a log has and whether its last one is whole, at byte offset `end`. */
export interface LineCount {
  end: number;
  lines: number;
  whole: boolean;
}

/** The count after `bytes` more (a byte after a whole line starts a new one). */
export function advanceCount(c: LineCount, bytes: Uint8Array): LineCount {
  if (bytes.length === 0) return c;
  let lines = c.lines + (c.whole ? 1 : 0);
  for (let i = bytes.indexOf(NL); i >= 0 && i + 1 < bytes.length; i = bytes.indexOf(NL, i + 1)) lines++;
  return { end: c.end + bytes.length, lines, whole: bytes[bytes.length - 1] === NL };
}

/** What "next error" looks for (RE2 syntax, case-sensitive): a traceback or an error level. */
export const ERROR_PATTERN = String.raw`Traceback \(most recent call last\):|\bERROR\b|\bCRITICAL\b|Error:`;
