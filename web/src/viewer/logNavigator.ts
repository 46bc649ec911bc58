/**
 * The xterm adapter: keeps the terminal showing a few windows of the log (lineWindow.ts) and
 * moves them as the user scrolls or jumps, over `GET /logs/lines` and the live stream.
 *
 * xterm.js cannot prepend to its buffer, so moving a window rewrites the terminal: a full
 * reset (`ESC c`, written through the same queue as everything else, so it is ordered with the
 * bytes) and the held lines, after which the line that was at the top of the view is put back
 * at the top. Terminal rows map to log lines through xterm's `isWrapped` (a wrapped row
 * continues its line; a `\r` redraw stays in its row), so a long line is still one line.
 *
 * The live stream always feeds `tail` (the last few MiB received, by offset). While the held
 * lines reach the live end they are "attached": streamed bytes are appended to them and
 * written to the terminal. A terminal that cannot keep up (a flood) is not fed a backlog: it
 * is rewritten with the newest lines, and what it skipped is above, loaded by scrolling up.
 */
import type { IDecoration, Terminal } from '@xterm/xterm';
import { base64ToBytes } from '../logstream/protocol';
import { fetchJson } from '../logstream/http';
import { WriteQueue } from './writeQueue';
import {
  HELD_LINES,
  WINDOW_LINES,
  advanceCount,
  appendLive,
  concat,
  endOffset,
  endsWhole,
  heldFromPage,
  join,
  lineCount,
  lineIndexAtRow,
  nextLine,
  rowStarts,
  slice,
  windowAround,
  windowBefore,
  type Held,
  type LineCount,
  type LinesPage,
} from './lineWindow';

/** A terminal that has this much queued is behind a flood: rewrite it with the newest lines. */
const FLOOD_BYTES = 4 * 1024 * 1024;
/** Live bytes kept to join a window onto the stream without asking the server again. */
const TAIL_BYTES = 8 * 1024 * 1024;
/** Rows from the top at which scrolling up loads the window before. */
const EDGE_ROWS = 2;
const RESET = new Uint8Array([0x1b, 0x63]); // ESC c
const HIGHLIGHT_BG = '#3d3514';

/** One terminal row as the gutter shows it: the line that starts there, or a continuation. */
export type GutterRow = { line: number; time: number | null } | null;

export interface NavView {
  /** Lines in view (first and last) and how many the log has. */
  from: number;
  to: number;
  total: number;
  /** At the live end, showing new output as it comes. */
  following: boolean;
  /** A window is being fetched. */
  loading: boolean;
  rows: GutterRow[];
  /** The buffer row at the top of the view, when this was computed. */
  top: number;
  /** The held lines: the terminal's first line, its byte offset, and the one past its last. */
  heldFirst: number;
  heldOffset: number;
  heldNext: number;
  highlight: { from: number; to: number } | null;
  error: string | null;
}

interface LinesJson {
  start: number;
  offset: number;
  end_offset: number;
  total_lines: number;
  size: number;
  data: string;
  times: (number | null)[];
}

export interface SearchMatch {
  line: number;
  offset: number;
  time: number | null;
  text: string;
}

export interface SearchPage {
  matches: SearchMatch[];
  next_after: number | null;
  scanned_to: number;
}

export interface SearchQuery {
  q: string;
  regex?: boolean;
  caseSensitive?: boolean;
  after?: number;
  limit?: number;
}

const EMPTY: Held = { first: 1, offset: 0, bytes: new Uint8Array(0), starts: [], times: [] };

export class LogNavigator {
  private held: Held = EMPTY;
  private readonly queue: WriteQueue;
  /** The last live chunks received, from byte `tailOffset` (-1 until the stream's start is known). */
  private tail: Uint8Array[] = [];
  private tailOffset = -1;
  private tailBytes = 0;
  private early: Uint8Array[] = [];
  /** Lines in the log as the stream has them (known once a window has joined the stream). */
  private live: LineCount | null = null;
  private serverTotal = 0;
  private attached = false;
  private following = true;
  private loading = false;
  private rendering = false;
  /** Bumped by each jump, so a slower earlier fetch is dropped. */
  private gen = 0;
  private renderGen = 0;
  private starts: number[] | null = null;
  private highlight: { from: number; to: number } | null = null;
  /** The line at the top of the view and how many rows into it, as last scrolled there. */
  private top: { line: number; rowOffset: number } | null = null;
  private decorations: IDecoration[] = [];
  private error: string | null = null;
  private frame = 0;
  private disposed = false;
  private readonly abort = new AbortController();
  private readonly disposers: Array<() => void> = [];
  /** Told the highlighted lines whenever a jump or a click sets them (null: none, at the end). */
  onHighlight: ((range: { from: number; to: number } | null) => void) | null = null;

  constructor(
    private readonly term: Terminal,
    private readonly apiBase: string,
    private readonly runId: string,
    private readonly onView: (v: NavView) => void,
    private readonly fetchFn: typeof fetch = (i, init) => fetch(i, init),
  ) {
    this.queue = new WriteQueue((data, done) =>
      term.write(data, () => {
        this.starts = null;
        if (this.following && this.attached) term.scrollToBottom();
        this.scheduleView();
        done();
      }),
    );
    const sub = term.onScroll(() => this.onScroll());
    // A new width re-wraps the lines: rows move.
    // A new width re-wraps the lines, a new height moves the view (xterm keeps the bottom row):
    // put the line that was at the top back there, unless following the end.
    const resized = term.onResize(() => {
      this.starts = null;
      if (!this.rendering && !this.following && this.top && lineCount(this.held) > 0) this.restore(this.top);
      this.drawHighlight();
      this.scheduleView();
    });
    const el = term.element;
    const onWheel = (ev: WheelEvent) => this.onWheel(ev);
    // Capture: xterm handles the wheel on its viewport and may stop it there.
    el?.addEventListener('wheel', onWheel, { passive: true, capture: true });
    this.disposers.push(
      () => sub.dispose(),
      () => resized.dispose(),
      () => el?.removeEventListener('wheel', onWheel, { capture: true }),
    );
  }

  dispose(): void {
    this.disposed = true;
    this.abort.abort();
    this.queue.close();
    cancelAnimationFrame(this.frame);
    this.disposers.forEach((d) => d());
  }

  // --- the server -------------------------------------------------------------------------

  private url(path: string, params: Record<string, string | number>): string {
    const q = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
    return `${this.apiBase}/runs/${encodeURIComponent(this.runId)}/logs/${path}?${q}`;
  }

  async fetchLines(params: { start: number; count: number } | { offset: number; count: number }): Promise<LinesPage> {
    const j = await fetchJson<LinesJson>(this.fetchFn, this.url('lines', params), { signal: this.abort.signal });
    this.serverTotal = Math.max(this.serverTotal, j.total_lines);
    return {
      start: j.start,
      offset: j.offset,
      endOffset: j.end_offset,
      totalLines: j.total_lines,
      size: j.size,
      data: base64ToBytes(j.data),
      times: j.times,
    };
  }

  search(s: SearchQuery): Promise<SearchPage> {
    const params: Record<string, string | number> = { q: s.q };
    if (s.regex) params.regex = 1;
    if (s.caseSensitive) params.case = 1;
    if (s.after !== undefined) params.after = s.after;
    if (s.limit !== undefined) params.limit = s.limit;
    return fetchJson<SearchPage>(this.fetchFn, this.url('search', params), { signal: this.abort.signal });
  }

  // --- the live stream --------------------------------------------------------------------

  /** Where the live stream starts (the log's size when it was opened); then opens the view. */
  begin(streamStart: number, target: { from: number; to: number } | null): void {
    if (this.tailOffset >= 0) return;
    this.tailOffset = streamStart;
    const early = this.early;
    this.early = [];
    for (const b of early) this.pushLive(b);
    if (target) void this.jumpToLine(target.from, target.to);
    else void this.jumpToEnd(streamStart);
  }

  /** Bytes from the live stream, in order and without gaps (the controller sees to that). */
  pushLive(bytes: Uint8Array): void {
    if (this.disposed || bytes.length === 0) return;
    if (this.tailOffset < 0) {
      this.early.push(bytes);
      return;
    }
    this.tail.push(bytes);
    this.tailBytes += bytes.length;
    while (this.tailBytes - this.tail[0]!.length >= TAIL_BYTES) {
      const old = this.tail.shift()!;
      this.tailBytes -= old.length;
      this.tailOffset += old.length;
    }
    if (this.live) this.live = advanceCount(this.live, bytes);
    if (!this.attached) {
      this.tryAttach();
      this.scheduleView();
      return;
    }
    this.held = appendLive(this.held, bytes);
    const over = lineCount(this.held) > HELD_LINES + WINDOW_LINES;
    if (this.following && (over || this.queue.pending > FLOOD_BYTES)) {
      // Behind (or simply long): show the newest lines; the rest is loaded by scrolling up.
      const keep = this.queue.pending > FLOOD_BYTES ? WINDOW_LINES : HELD_LINES;
      this.held = slice(this.held, nextLine(this.held) - keep, nextLine(this.held));
      this.render('bottom');
    } else if (over && !this.following) {
      this.attached = false; // the reader is elsewhere: stop growing under them
    } else {
      void this.queue.push(bytes);
    }
  }

  /** Join the held lines onto the live stream, if the bytes after them are in `tail`. */
  private tryAttach(): void {
    if (this.attached || this.tailOffset < 0 || this.loading) return;
    const end = endOffset(this.held);
    const tailEnd = this.tailOffset + this.tailBytes;
    if (end > tailEnd) return; // the stream has not caught up with the window yet
    if (end < this.tailOffset) {
      // Older than the bytes kept: more windows from the server first (when at the end).
      if (this.following) void this.loadLater();
      return;
    }
    const rest = concat(...this.tail).subarray(end - this.tailOffset);
    const counted = advanceCount({ end, lines: nextLine(this.held) - 1, whole: endsWhole(this.held) }, rest);
    const added = counted.lines - (nextLine(this.held) - 1);
    // A reader looking at earlier lines gets the ones after them by scrolling, window by
    // window; only a short way from the end are they joined onto the stream.
    if (!this.following && lineCount(this.held) + added > HELD_LINES + WINDOW_LINES) return;
    this.live = counted;
    this.attached = true;
    if (rest.length) {
      this.held = appendLive(this.held, rest);
      if (this.following && lineCount(this.held) > HELD_LINES) {
        this.held = slice(this.held, nextLine(this.held) - HELD_LINES, nextLine(this.held));
        void this.render('bottom');
      } else void this.queue.push(rest);
    }
    this.scheduleView();
  }

  // --- drawing ----------------------------------------------------------------------------

  /** Rewrite the terminal with the held lines; then put `anchor` back where it was. */
  private render(anchor: 'bottom' | { line: number; rowOffset: number }): Promise<void> {
    const gen = ++this.renderGen;
    this.clearDecorations();
    this.queue.clear();
    this.rendering = true;
    this.starts = null;
    void this.queue.push(RESET);
    return this.queue.push(this.held.bytes).then(() => {
      if (gen !== this.renderGen || this.disposed) return;
      this.rendering = false;
      this.starts = null;
      if (anchor === 'bottom') this.term.scrollToBottom();
      else this.restore(anchor);
      this.top = this.anchor();
      this.drawHighlight();
      this.scheduleView();
    });
  }

  /** Scroll so that `a.line` is at the top again, `a.rowOffset` rows into it. */
  private restore(a: { line: number; rowOffset: number }): void {
    const row = this.rowOfLine(a.line);
    if (row !== null) this.scrollToRow(row + a.rowOffset);
  }

  /**
   * Put buffer row `row` at the top of the view. xterm scrolls relative to its scrollbar's
   * position, not to `viewportY`, and the two can differ after the buffer changed under it
   * (a resize moves `viewportY` and xterm re-syncs its scrollbar only later, from a stale row):
   * one `scrollToLine` then lands that many rows off. So scroll, look where the view is, and
   * scroll by what is left (after one step the scrollbar and the buffer agree again).
   */
  private scrollToRow(row: number): void {
    const b = this.term.buffer.active;
    const target = Math.max(0, Math.min(row, b.baseY));
    for (let i = 0; i < 3 && this.term.buffer.active.viewportY !== target; i++) {
      this.term.scrollLines(target - this.term.buffer.active.viewportY);
    }
  }

  /** The last buffer row with log text on it. */
  private lastContentRow(): number {
    const b = this.term.buffer.active;
    const cursorRow = b.baseY + b.cursorY;
    return lineCount(this.held) > 0 && endsWhole(this.held) && b.cursorX === 0 ? cursorRow - 1 : cursorRow;
  }

  /** The row each held line starts on (computed from the buffer, once per change). */
  private rowStartsNow(): number[] {
    if (this.starts) return this.starts;
    const b = this.term.buffer.active;
    const last = Math.min(this.lastContentRow(), b.length - 1);
    const wrapped: boolean[] = [];
    for (let r = 0; r <= last; r++) wrapped.push(b.getLine(r)?.isWrapped ?? false);
    this.starts = rowStarts(wrapped, lineCount(this.held));
    return this.starts;
  }

  private rowOfLine(line: number): number | null {
    const starts = this.rowStartsNow();
    const i = line - this.held.first;
    if (i < 0 || starts.length === 0) return null;
    return starts[Math.min(i, starts.length - 1)]!;
  }

  private lineAtRow(row: number): number {
    return this.held.first + lineIndexAtRow(this.rowStartsNow(), row);
  }

  /** The line at the top of the view and how far into it (in rows) the view starts. */
  private anchor(): { line: number; rowOffset: number } {
    const top = this.term.buffer.active.viewportY;
    const line = this.lineAtRow(top);
    return { line, rowOffset: top - (this.rowOfLine(line) ?? top) };
  }

  private clearDecorations(): void {
    this.decorations.forEach((d) => d.dispose());
    this.decorations = [];
  }

  private drawHighlight(): void {
    this.clearDecorations();
    const h = this.highlight;
    if (!h) return;
    const b = this.term.buffer.active;
    const cursorRow = b.baseY + b.cursorY;
    const from = Math.max(h.from, this.held.first);
    const to = Math.min(h.to, nextLine(this.held) - 1, from + WINDOW_LINES);
    for (let line = from; line <= to; line++) {
      const row = this.rowOfLine(line);
      if (row === null) continue;
      const next = line + 1 < nextLine(this.held) ? this.rowOfLine(line + 1) : null;
      const height = Math.max(1, (next ?? this.lastContentRow() + 1) - row);
      const marker = this.term.registerMarker(row - cursorRow);
      const deco = this.term.registerDecoration({
        marker,
        width: this.term.cols,
        height,
        backgroundColor: HIGHLIGHT_BG,
        layer: 'bottom',
      });
      if (deco) this.decorations.push(deco);
      else marker.dispose();
    }
  }

  // --- scrolling --------------------------------------------------------------------------

  private onScroll(): void {
    if (this.rendering || this.disposed) return;
    const b = this.term.buffer.active;
    if (lineCount(this.held) > 0) this.top = this.anchor();
    const atBottom = b.viewportY >= b.baseY;
    if (!atBottom) this.following = false;
    else if (this.attached) this.following = true;
    if (!this.loading) {
      if (b.viewportY <= EDGE_ROWS && this.held.first > 1) void this.loadEarlier();
      else if (atBottom && !this.attached) void this.loadLater();
    }
    this.scheduleView();
  }

  private onWheel(ev: WheelEvent): void {
    if (this.rendering || this.loading) return;
    const b = this.term.buffer.active;
    // At an edge of the buffer xterm does not scroll, so it sends no scroll event.
    if (ev.deltaY < 0) {
      if (this.following) {
        this.following = false;
        this.scheduleView();
      }
      if (b.viewportY === 0 && this.held.first > 1) void this.loadEarlier();
    } else if (ev.deltaY > 0 && b.viewportY >= b.baseY && !this.attached) void this.loadLater();
  }

  /** Fetch, then (unless a jump came meanwhile) apply; errors are shown, not thrown. */
  private async load(apply: (gen: number) => Promise<void>): Promise<void> {
    const gen = this.gen;
    this.loading = true;
    this.error = null;
    this.scheduleView();
    try {
      await apply(gen);
    } catch (err) {
      if (this.disposed || this.abort.signal.aborted) return;
      if (gen === this.gen) this.error = err instanceof Error ? err.message : String(err);
    } finally {
      if (gen === this.gen) this.loading = false;
      this.scheduleView();
    }
    if (gen === this.gen) this.tryAttach();
  }

  loadEarlier(): Promise<void> {
    this.following = false; // reading earlier lines: the live end must not pull the view back
    return this.load(async (gen) => {
      const w = windowBefore(this.held.first);
      const page = await this.fetchLines(w);
      if (gen !== this.gen) return;
      const anchor = this.anchor();
      const joined = join(heldFromPage(page), this.held);
      if (!joined) throw new Error('The log changed under the viewer; jump to reload.');
      this.held = lineCount(joined) > HELD_LINES ? slice(joined, joined.first, joined.first + HELD_LINES) : joined;
      if (this.attached && lineCount(joined) > HELD_LINES) this.attached = false;
      await this.render(anchor);
    });
  }

  loadLater(): Promise<void> {
    return this.load(async (gen) => {
      // An unterminated last line may have grown: ask for it again.
      const from = endsWhole(this.held) ? nextLine(this.held) : nextLine(this.held) - 1;
      const page = await this.fetchLines({ start: from, count: WINDOW_LINES });
      if (gen !== this.gen || page.data.length === 0) return;
      const anchor = this.anchor();
      const joined = join(slice(this.held, this.held.first, from), heldFromPage(page));
      if (!joined) throw new Error('The log changed under the viewer; jump to reload.');
      const n = lineCount(joined);
      this.held = n > HELD_LINES ? slice(joined, nextLine(joined) - HELD_LINES, nextLine(joined)) : joined;
      await this.render(this.following ? 'bottom' : anchor);
    });
  }

  // --- jumps ------------------------------------------------------------------------------

  /** Show lines [from, to] highlighted, a few rows below the top of the view. */
  jumpToLine(from: number, to = from): Promise<void> {
    this.gen++;
    this.following = false;
    this.attached = false;
    return this.load(async (gen) => {
      // Before the log's length is known (a permalink), the server clamps: a line past the
      // end answers empty with the total, and the last window is asked for instead.
      const known = this.total();
      let line = Math.max(1, known > 0 ? Math.min(from, known) : from);
      let page = await this.fetchLines(windowAround(line, Math.max(known, line + WINDOW_LINES)));
      if (page.data.length === 0 && page.totalLines > 0) {
        line = page.totalLines;
        page = await this.fetchLines(windowAround(line, line));
      }
      if (gen !== this.gen) return;
      this.held = heldFromPage(page);
      const target = Math.max(this.held.first, Math.min(line, nextLine(this.held) - 1));
      this.highlight = { from: target, to: Math.max(target, to) };
      this.onHighlight?.(this.highlight);
      await this.render({ line: target, rowOffset: -Math.floor(this.term.rows / 3) });
    });
  }

  /** The last window, following the live end. `knownEnd`: a byte offset the log reaches. */
  jumpToEnd(knownEnd?: number): Promise<void> {
    this.gen++;
    this.following = true;
    this.attached = false;
    this.highlight = null;
    this.onHighlight?.(null);
    return this.load(async (gen) => {
      const end = knownEnd ?? this.tailOffset + this.tailBytes;
      // The line holding the last byte: its number tells where the last window starts.
      const last = await this.fetchLines({ offset: Math.max(0, end - 1), count: 1 });
      if (gen !== this.gen) return;
      const page =
        last.start <= WINDOW_LINES
          ? await this.fetchLines({ start: 1, count: WINDOW_LINES })
          : await this.fetchLines({ start: last.start - WINDOW_LINES + 1, count: WINDOW_LINES });
      if (gen !== this.gen) return;
      this.held = heldFromPage(page);
      await this.render('bottom');
    });
  }

  jumpToStart(): Promise<void> {
    return this.jumpToLine(1);
  }

  /** The first line printed at or after `t` (epoch seconds), found by bisecting line times. */
  async jumpToTime(t: number): Promise<void> {
    const gen = ++this.gen;
    let lo = 1;
    let hi = Math.max(1, this.total());
    try {
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        const p = await this.fetchLines({ start: mid, count: 1 });
        if (gen !== this.gen) return;
        const time = p.times[0];
        if (time === undefined || time === null) throw new Error('This run has no line times (it was stored before they were kept).');
        if (time < t) lo = mid + 1;
        else hi = mid;
      }
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
      this.scheduleView();
      return;
    }
    await this.jumpToLine(lo);
  }

  setHighlight(range: { from: number; to: number } | null): void {
    this.highlight = range;
    this.onHighlight?.(range);
    this.drawHighlight();
    this.scheduleView();
  }

  /** Lines known to be in the log. */
  total(): number {
    const attachedTotal = this.attached ? nextLine(this.held) - 1 : 0;
    return Math.max(this.serverTotal, this.live?.lines ?? 0, attachedTotal);
  }

  /** The byte offset where held line `line` starts, if held. */
  offsetOfLine(line: number): number | null {
    const i = line - this.held.first;
    return i >= 0 && i < lineCount(this.held) ? this.held.offset + this.held.starts[i]! : null;
  }

  /** Times of lines in view that are not known yet (streamed), asked of the server. */
  async fillTimes(from: number, to: number): Promise<void> {
    const i0 = Math.max(0, from - this.held.first);
    const i1 = Math.min(lineCount(this.held), to - this.held.first + 1);
    let first = -1;
    for (let i = i0; i < i1; i++) if (this.held.times[i] === null) (first = first < 0 ? i : first);
    if (first < 0) return;
    const start = this.held.first + first;
    const p = await this.fetchLines({ start, count: Math.min(WINDOW_LINES, i1 - first) });
    // Lines are numbered absolutely: whatever is held now, fill the ones still unknown.
    const times = [...this.held.times];
    p.times.forEach((t, k) => {
      const i = start - this.held.first + k;
      if (i >= 0 && i < times.length && times[i] === null) times[i] = t;
    });
    this.held = { ...this.held, times };
    this.scheduleView();
  }

  // --- what the toolbar and gutter show ---------------------------------------------------

  private scheduleView(): void {
    if (this.frame || this.disposed) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (!this.disposed) this.onView(this.view());
    });
  }

  view(): NavView {
    const b = this.term.buffer.active;
    const starts = this.rowStartsNow();
    const last = this.lastContentRow();
    const rows: GutterRow[] = [];
    for (let r = b.viewportY; r < b.viewportY + this.term.rows; r++) {
      const i = lineIndexAtRow(starts, r);
      rows.push(starts[i] === r && r <= last ? { line: this.held.first + i, time: this.held.times[i] ?? null } : null);
    }
    const held = lineCount(this.held) > 0;
    return {
      from: held ? this.lineAtRow(b.viewportY) : 0,
      to: held ? this.lineAtRow(Math.min(last, b.viewportY + this.term.rows - 1)) : 0,
      total: this.total(),
      following: this.following,
      loading: this.loading,
      rows,
      top: b.viewportY,
      heldFirst: this.held.first,
      heldOffset: this.held.offset,
      heldNext: nextLine(this.held),
      highlight: this.highlight,
      error: this.error,
    };
  }
}
