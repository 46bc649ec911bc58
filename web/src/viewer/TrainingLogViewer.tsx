/**
 * <TrainingLogViewer runId isLive height />: one run's log in a terminal.
 *
 * Self-contained: depends only on React, xterm.js and ../logstream (the protocol), and talks
 * to the trainlog HTTP API under /api. Drop it into any React app.
 */
import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { Terminal, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import '@xterm/xterm/css/xterm.css';
import './TrainingLogViewer.css';
import { describeEnd, rawUrl, useLogStream, type EndTone } from '../logstream';
import { DownloadMenu } from './DownloadMenu';
import { WriteQueue } from './writeQueue';
import { formatBytes } from './formatBytes';

export interface TrainingLogViewerProps {
  runId: string;
  isLive?: boolean;
  height?: string /* default 400px */;
  /** Show the download menu (raw log, plain text) in the toolbar. Default true. */
  downloads?: boolean;
  /** Called when the server refuses the log for want of its API token (HTTP 401). */
  onUnauthorized?: () => void;
  /** Called once the stream says the run has ended (every byte received). */
  onEnd?: (end: { exitCode: number | null; runStatus: string | null }) => void;
}

const API_BASE = '/api';
export const VIEWER_SCROLLBACK = 20_000;
/** xterm's vertical scrollbar overlays the right edge of its element: keep it off the text. */
const XTERM_SCROLLBAR_PX = 14;

const THEME: ITheme = {
  background: '#0d1117',
  foreground: '#d6dde6',
  cursor: '#0d1117',
  cursorAccent: '#0d1117',
  selectionBackground: '#2f4a6d',
  black: '#1b1f24',
  red: '#ff6b6b',
  green: '#5fd38d',
  yellow: '#f2c94c',
  blue: '#6cb6ff',
  magenta: '#d2a8ff',
  cyan: '#56d4dd',
  white: '#c9d1d9',
  brightBlack: '#6e7681',
  brightRed: '#ff8e8e',
  brightGreen: '#7ee2a8',
  brightYellow: '#f8dc7a',
  brightBlue: '#94c9ff',
  brightMagenta: '#e2c5ff',
  brightCyan: '#86e5ec',
  brightWhite: '#f0f6fc',
  scrollbarSliderBackground: 'rgba(110,118,129,0.35)',
  scrollbarSliderHoverBackground: 'rgba(110,118,129,0.55)',
  scrollbarSliderActiveBackground: 'rgba(110,118,129,0.75)',
};

const SEARCH_DECORATIONS = {
  matchBackground: '#5a4a12',
  matchOverviewRuler: '#f2c94c',
  activeMatchBackground: '#b8860b',
  activeMatchColorOverviewRuler: '#ffb000',
};

const END_TONE_CLASS: Record<EndTone, string> = { ok: 'tlv-ok', error: 'tlv-error', muted: 'tlv-neutral' };


declare global {
  interface Window {
    /** Set by tests (before the app loads) to have the viewer expose its terminal. */
    __TRAINLOG_EXPOSE_TERM__?: boolean;
    __trainlogTerm?: Terminal;
  }
}

export function TrainingLogViewer({
  runId,
  isLive = false,
  height = '400px',
  downloads = true,
  onUnauthorized,
  onEnd,
}: TrainingLogViewerProps) {
  const boxRef = useRef<HTMLDivElement | null>(null);
  const scrollRef = useRef<HTMLDivElement | null>(null);
  const [overflow, setOverflow] = useState<{ left: boolean; right: boolean }>({ left: false, right: false });
  const termRef = useRef<Terminal | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const searchRef = useRef<SearchAddon | null>(null);
  const queueRef = useRef<WriteQueue | null>(null);
  const followRef = useRef(true);
  const colsRef = useRef<number | null>(null);
  const [ready, setReady] = useState(false);
  const [follow, setFollowState] = useState(true);
  const [query, setQuery] = useState('');
  const [matches, setMatches] = useState<{ index: number; count: number } | null>(null);

  const setFollow = useCallback((on: boolean) => {
    followRef.current = on;
    setFollowState(on);
  }, []);

  /** Whether there is more text to either side (a fixed-width run in a narrower box). */
  const updateOverflow = useCallback(() => {
    const el = scrollRef.current;
    if (!el) return;
    const left = el.scrollLeft > 1;
    const right = el.scrollLeft + el.clientWidth < el.scrollWidth - 1;
    setOverflow((o) => (o.left === left && o.right === right ? o : { left, right }));
  }, []);

  const refit = useCallback(() => {
    const term = termRef.current;
    const fit = fitRef.current;
    if (!term || !fit || !boxRef.current?.offsetParent) return;
    const dims = fit.proposeDimensions();
    if (!dims || !Number.isFinite(dims.cols) || !Number.isFinite(dims.rows)) return;
    const cols = colsRef.current ?? Math.max(dims.cols, 20);
    const rows = Math.max(dims.rows, 2);
    if (cols !== term.cols || rows !== term.rows) term.resize(cols, rows);
    // At a fixed width the box is as wide as the text plus the scrollbar, and its scroller
    // scrolls sideways when that is wider than the viewer.
    const screen = term.element?.querySelector<HTMLElement>('.xterm-screen');
    const width = colsRef.current !== null && screen ? `${screen.offsetWidth + XTERM_SCROLLBAR_PX}px` : '';
    if (boxRef.current.style.width !== width) boxRef.current.style.width = width;
    if (followRef.current) term.scrollToBottom();
    updateOverflow();
  }, [updateOverflow]);

  // The terminal: one per run.
  useEffect(() => {
    const box = boxRef.current;
    if (!box) return undefined;
    const term = new Terminal({
      convertEol: true, // a bare \n from a pipe starts a new line; a lone \r still returns
      scrollback: VIEWER_SCROLLBACK,
      disableStdin: true,
      cursorBlink: false,
      cursorStyle: 'bar',
      cursorInactiveStyle: 'none',
      allowProposedApi: true, // search decorations
      fontFamily: "'JetBrains Mono', 'Fira Code', 'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace",
      fontSize: 13,
      lineHeight: 1.2,
      theme: THEME,
    });
    const fit = new FitAddon();
    const search = new SearchAddon();
    term.loadAddon(fit);
    term.loadAddon(search);
    term.open(box);
    termRef.current = term;
    fitRef.current = fit;
    searchRef.current = search;
    colsRef.current = null;
    if (window.__TRAINLOG_EXPOSE_TERM__) window.__trainlogTerm = term;

    const queue = new WriteQueue((data, done) =>
      term.write(data, () => {
        if (followRef.current) term.scrollToBottom();
        done();
      }),
    );
    queueRef.current = queue;

    const subs = [
      term.onScroll(() => {
        const buf = term.buffer.active;
        const atBottom = buf.viewportY >= buf.baseY;
        if (atBottom !== followRef.current) setFollow(atBottom);
      }),
      search.onDidChangeResults((r) => setMatches({ index: r.resultIndex, count: r.resultCount })),
    ];

    // Scrolling up with the wheel means "stop following" even before the viewport moves.
    const onWheel = (ev: WheelEvent) => {
      if (ev.deltaY < 0 && followRef.current && term.buffer.active.baseY > 0) setFollow(false);
    };
    box.addEventListener('wheel', onWheel, { passive: true });

    let frame = 0;
    const ro = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(refit);
    });
    ro.observe(box);
    const scroller = scrollRef.current;
    if (scroller) ro.observe(scroller);
    const screen = term.element?.querySelector('.xterm-screen');
    if (screen) ro.observe(screen); // the cell size changes when the font loads
    scroller?.addEventListener('scroll', updateOverflow, { passive: true });
    refit();
    setFollow(true);
    setMatches(null);
    setReady(true);

    return () => {
      setReady(false);
      cancelAnimationFrame(frame);
      ro.disconnect();
      scroller?.removeEventListener('scroll', updateOverflow);
      box.removeEventListener('wheel', onWheel);
      subs.forEach((s) => s.dispose());
      queue.close();
      queueRef.current = null;
      termRef.current = null;
      fitRef.current = null;
      searchRef.current = null;
      if (window.__trainlogTerm === term) delete window.__trainlogTerm;
      term.dispose();
    };
  }, [runId, refit, setFollow, updateOverflow]);

  const sink = useCallback((bytes: Uint8Array) => queueRef.current?.push(bytes) ?? Promise.resolve(), []);
  // A run recorded at a fixed width is shown at that width instead of fitting: set before
  // any byte is written, so the bytes are laid out at the run's width from the start.
  const onTermCols = useCallback(
    (cols: number | null) => {
      colsRef.current = cols;
      refit();
    },
    [refit],
  );
  const stream = useLogStream(runId, sink, ready, {
    apiBase: API_BASE,
    maxTailLines: VIEWER_SCROLLBACK,
    onTermCols,
  });

  const runSearch = useCallback(
    (backwards: boolean, incremental = false) => {
      const search = searchRef.current;
      if (!search) return;
      if (!query) {
        search.clearDecorations();
        setMatches(null);
        return;
      }
      const opts = { incremental, decorations: SEARCH_DECORATIONS };
      const found = backwards ? search.findPrevious(query, opts) : search.findNext(query, opts);
      if (!found) setMatches({ index: -1, count: 0 });
      // Searching moves the viewport: that's the user looking around, not following.
      const buf = termRef.current?.buffer.active;
      if (buf && buf.viewportY < buf.baseY) setFollow(false);
    },
    [query, setFollow],
  );

  useEffect(() => {
    runSearch(false, true);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [query]);

  const onSearchKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      runSearch(e.shiftKey);
    } else if (e.key === 'Escape') {
      setQuery('');
    }
  };

  const jumpToBottom = () => {
    setFollow(true);
    termRef.current?.scrollToBottom();
  };

  const { phase, exitCode, error, errorStatus, offset, shownFrom, size, runStatus } = stream;
  const unauthorized = phase === 'error' && errorStatus === 401;
  const onUnauthorizedRef = useRef(onUnauthorized);
  onUnauthorizedRef.current = onUnauthorized;
  useEffect(() => {
    if (unauthorized) onUnauthorizedRef.current?.();
  }, [unauthorized]);
  const onEndRef = useRef(onEnd);
  onEndRef.current = onEnd;
  useEffect(() => {
    if (phase === 'done') onEndRef.current?.({ exitCode, runStatus });
  }, [phase, exitCode, runStatus]);
  const empty = offset === 0 && (phase === 'done' || phase === 'live' || phase === 'reconnecting');

  let statusEl;
  if (phase === 'loading') statusEl = <span className="tlv-status tlv-muted">Loading log…</span>;
  else if (phase === 'reconnecting')
    statusEl = (
      <span className="tlv-status tlv-warn" role="status">
        <span className="tlv-spinner" aria-hidden /> Reconnecting…
      </span>
    );
  else if (phase === 'error')
    statusEl = (
      <span className="tlv-status tlv-error" role="alert">
        {error ?? 'Could not load the log'}
      </span>
    );
  else if (phase === 'done') {
    const end = describeEnd(exitCode, runStatus);
    statusEl = (
      <span className={`tlv-status ${END_TONE_CLASS[end.tone]}`} data-testid="viewer-exit">
        {end.text}
      </span>
    );
  }
  else if (isLive)
    statusEl = (
      <span className="tlv-status tlv-live" data-testid="viewer-live">
        <span className="tlv-dot" aria-hidden /> LIVE
      </span>
    );
  else statusEl = <span className="tlv-status tlv-muted">Connected</span>;

  return (
    <div
      className="tlv"
      style={{ height }}
      data-testid="training-log-viewer"
      data-phase={phase}
      data-offset={offset}
      data-shown-from={shownFrom ?? ''}
      data-exit-code={exitCode ?? ''}
      data-run-status={runStatus ?? ''}
      data-follow={follow ? 'on' : 'off'}
    >
      <div className="tlv-toolbar">
        {statusEl}
        <span className="tlv-size tlv-muted" title={`${offset} bytes`}>
          {formatBytes(Math.max(size, offset))}
        </span>
        {stream.termCols !== null && (
          <span
            className="tlv-cols tlv-muted"
            data-testid="viewer-cols"
            title={`The run's terminal was ${stream.termCols} columns wide: the log keeps that width${
              overflow.left || overflow.right ? ' (scroll sideways to see all of it)' : ''
            }`}
          >
            {stream.termCols} cols{overflow.left || overflow.right ? ' ↔' : ''}
          </span>
        )}
        <span className="tlv-spacer" />
        <div className="tlv-search">
          <input
            type="search"
            placeholder="Search log"
            aria-label="Search log"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
            onKeyDown={onSearchKey}
          />
          {query && matches && (
            <span className="tlv-muted tlv-count">
              {matches.count === 0 ? 'no matches' : `${matches.index + 1}/${matches.count}`}
            </span>
          )}
          <button type="button" title="Previous match (Shift+Enter)" onClick={() => runSearch(true)} disabled={!query}>
            ↑
          </button>
          <button type="button" title="Next match (Enter)" onClick={() => runSearch(false)} disabled={!query}>
            ↓
          </button>
        </div>
        <button
          type="button"
          className={`tlv-follow ${follow ? 'on' : ''}`}
          aria-pressed={follow}
          title={follow ? 'Following the end of the log' : 'Scroll to the end and follow'}
          onClick={jumpToBottom}
        >
          {follow ? 'Following' : 'Follow'}
        </button>
        {downloads && <DownloadMenu runId={runId} apiBase={API_BASE} testId="viewer-download-menu" />}
      </div>
      {shownFrom !== null && (
        <div className="tlv-notice" data-testid="viewer-tail-notice">
          This log is {formatBytes(Math.max(size, offset))}: showing its last {formatBytes(Math.max(0, offset - shownFrom))}.{' '}
          <a href={rawUrl(API_BASE, runId)} download>
            Download the full log
          </a>
        </div>
      )}
      <div className={`tlv-body${overflow.left ? ' tlv-more-left' : ''}${overflow.right ? ' tlv-more-right' : ''}`}>
        {/* A run recorded at a fixed width keeps it: a narrower box scrolls sideways. */}
        <div
          className={`tlv-scroll${stream.termCols ? ' tlv-fixed-cols' : ''}`}
          data-testid="viewer-scroll"
          ref={scrollRef}
        >
          <div className="tlv-term" ref={boxRef} />
        </div>
        {empty && (
          <div className="tlv-empty">{phase === 'done' ? 'This run wrote no output.' : 'Waiting for output…'}</div>
        )}
        {!follow && (
          <button type="button" className="tlv-jump" onClick={jumpToBottom}>
            ↓ Follow output
          </button>
        )}
      </div>
    </div>
  );
}

export default TrainingLogViewer;
