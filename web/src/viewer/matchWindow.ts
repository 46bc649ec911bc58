/**
 * Walking a whole-log search's matches with bounded memory, over `/logs/search` (which only
 * pages forwards, from a byte offset `after`). A log may have millions of matches: the walker
 * keeps a window of consecutive ones (no match of the log falls between two kept ones), slides
 * it forwards a page at a time past its end, and for "previous" past its start rescans from the
 * log's start, keeping the last ones before it (simple and correct; the rescan reads the log up
 * to there, so it is the slow direction). The count is separate: the offsets of the first
 * `COUNTED_MATCHES` matches, which number a match when it is among them.
 *
 * No DOM, no terminal: the search function is passed in.
 */
import type { SearchMatch, SearchPage } from './logNavigator';

/** Matches asked for per request. */
export const SEARCH_PAGE = 500;
/** Matches the walker keeps at most. */
export const KEPT_MATCHES = 2000;
/** Matches counted (and numbered) at most: beyond, the count reads "5000+". */
export const COUNTED_MATCHES = 5000;

/** The page of matches among the lines starting at or after byte `after`. */
export type SearchFn = (after: number, limit: number) => Promise<SearchPage>;

export interface MatchWindow {
  /** Consecutive matches of the log, in order. */
  matches: SearchMatch[];
  /** Whether `matches[0]` is the log's first match (nothing was left out before it). */
  fromStart: boolean;
  /** `after` for the matches past the last kept; null once the log's end was reached. */
  nextAfter: number | null;
}

/** `w` with `page` (the page at `w.nextAfter`) added, the oldest let go past `kept`. */
export function addPage(w: MatchWindow, page: SearchPage, kept = KEPT_MATCHES): { window: MatchWindow; dropped: number } {
  const all = w.matches.concat(page.matches);
  const dropped = Math.max(0, all.length - kept);
  return {
    window: { matches: dropped ? all.slice(dropped) : all, fromStart: w.fromStart && dropped === 0, nextAfter: page.next_after },
    dropped,
  };
}

export class MatchWalker {
  private w: MatchWindow = { matches: [], fromStart: true, nextAfter: 0 };
  private i = -1;
  /** Where the log ended when a scan last reached it (a live log grows past it). */
  private end = 0;
  /** Steps run one after another: a key held down walks match by match. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly search: SearchFn,
    private readonly page = SEARCH_PAGE,
    private readonly kept = KEPT_MATCHES,
  ) {}

  /** The match shown, if any. */
  get current(): SearchMatch | null {
    return this.w.matches[this.i] ?? null;
  }

  /** Matches held (the bound on memory). */
  get held(): number {
    return this.w.matches.length;
  }

  /** The first match on a line starting at or after byte `from`, else the log's first; null: none. */
  start(from: number): Promise<SearchMatch | null> {
    return this.step(async () => {
      this.w = { matches: [], fromStart: from <= 0, nextAfter: from };
      this.i = -1;
      if (await this.more()) this.i = 0;
      else if (from > 0) await this.first();
    });
  }

  /** The match after the current one; after the log's last, its first. */
  next(): Promise<SearchMatch | null> {
    return this.step(async () => {
      if (this.i < 0) return;
      if (this.i + 1 < this.w.matches.length || (await this.more()) || (await this.grown())) this.i++;
      else await this.first();
    });
  }

  /** The match before the current one; before the log's first, its last. */
  previous(): Promise<SearchMatch | null> {
    return this.step(async () => {
      if (this.i < 0) return;
      if (this.i > 0) {
        this.i--;
        return;
      }
      if (!this.w.fromStart && (await this.rescanBefore(this.w.matches[0]!.offset))) return;
      // Before the first: the last, found by reading on to the end.
      while ((await this.more()) || (await this.grown()));
      this.i = this.w.matches.length - 1;
    });
  }

  private step(run: () => Promise<void>): Promise<SearchMatch | null> {
    const done = this.queue.then(run).then(() => this.current);
    this.queue = done.catch(() => undefined);
    return done;
  }

  /** Restart from the log's first match (called inside a step: no queueing). */
  private async first(): Promise<void> {
    this.w = { matches: [], fromStart: true, nextAfter: 0 };
    this.i = -1;
    if (await this.more()) this.i = 0;
  }

  /** Pages past the last kept match until one more match (true) or the log's end (false). */
  private async more(): Promise<boolean> {
    while (this.w.nextAfter !== null) {
      const page = await this.search(this.w.nextAfter, this.page);
      const { window, dropped } = addPage(this.w, page, this.kept);
      this.w = window;
      if (this.i >= 0) this.i = Math.max(0, this.i - dropped);
      if (page.next_after === null) this.end = page.scanned_to;
      if (page.matches.length > 0) return true;
    }
    return false;
  }

  /** At the log's end: whether lines written since hold another match (then kept). */
  private async grown(): Promise<boolean> {
    if (this.w.nextAfter !== null || this.w.matches.length === 0) return false;
    this.w = { ...this.w, nextAfter: this.end };
    return this.more();
  }

  /** Keep the last matches before byte `offset`, from a scan of the log from its start. */
  private async rescanBefore(offset: number): Promise<boolean> {
    let w: MatchWindow = { matches: [], fromStart: true, nextAfter: 0 };
    while (w.nextAfter !== null && w.nextAfter < offset) {
      const page = await this.search(w.nextAfter, this.page);
      const before = page.matches.filter((m) => m.offset < offset);
      const reached = before.length < page.matches.length || page.next_after === null;
      w = addPage(w, { ...page, matches: before, next_after: reached ? offset : page.next_after }, this.kept).window;
      if (reached) break;
    }
    if (w.matches.length === 0) return false;
    // The window goes on at `offset`, the match the walk came back from.
    this.w = { ...w, nextAfter: offset };
    this.i = w.matches.length - 1;
    return true;
  }
}

/** The first matches' offsets, from a scan of the log's start, and whether that scan saw them all. */
export interface MatchCount {
  offsets: number[];
  /** The scan reached the log's end: `offsets` are all the matches. */
  complete: boolean;
  /** The scan stopped at `COUNTED_MATCHES`: there are more. */
  capped: boolean;
}

/** The count's text (inside the search box: short) and what it means (its tooltip). */
export function describeCount(c: MatchCount, current: SearchMatch | null): { text: string; title: string | undefined } {
  const n = c.offsets.length;
  const scanning = !c.complete && !c.capped;
  const more = scanning ? '+…' : c.capped ? '+' : '';
  let title: string | undefined = scanning
    ? 'Still counting the matches: more may come'
    : c.capped
      ? `More than ${COUNTED_MATCHES.toLocaleString('en-US')} matches: the first ${COUNTED_MATCHES.toLocaleString('en-US')} are counted`
      : undefined;
  if (!current) {
    if (n === 0) return { text: scanning ? 'searching…' : 'no matches', title };
    return { text: `${n}${more}`, title };
  }
  const at = lowerBound(c.offsets, current.offset);
  const known = c.offsets[at] === current.offset;
  if (!known && !scanning) title = `${title ?? ''}${title ? '; this' : 'This'} match is past them: its number is not known`;
  return { text: `${known ? at + 1 : '?'}/${n}${more}`, title };
}

function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Counts the matches from the log's start (at most `COUNTED_MATCHES`), reporting as it goes. */
export async function countMatches(search: SearchFn, report: (c: MatchCount) => void, cancelled: () => boolean): Promise<void> {
  const offsets: number[] = [];
  let after: number | null = 0;
  // One past the cap, to know that there are more.
  while (after !== null && offsets.length <= COUNTED_MATCHES) {
    const page = await search(after, Math.min(SEARCH_PAGE * 2, COUNTED_MATCHES + 1 - offsets.length));
    if (cancelled()) return;
    offsets.push(...page.matches.map((m) => m.offset));
    after = page.next_after;
    const capped = offsets.length > COUNTED_MATCHES;
    report({ offsets: capped ? offsets.slice(0, COUNTED_MATCHES) : [...offsets], complete: after === null && !capped, capped });
  }
}
