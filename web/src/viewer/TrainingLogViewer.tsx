/**
 * <TrainingLogViewer runId isLive height />: one run's log in a terminal.
 *
 * Self-contained: depends only on React, xterm.js and ../logstream (the protocol), and talks
 * to the trainlog HTTP API under /api. Drop it into any React app.
 */
import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { Terminal, type ITheme } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import './TrainingLogViewer.css';
import { describeEnd, useLogStream, type EndTone, type TailPolicy } from '../logstream';
import { DownloadMenu } from './DownloadMenu';
import { formatBytes } from './formatBytes';
import { LogNavigator, type NavView } from './logNavigator';
import { LineGutter, useTimeMode } from './LineGutter';
import { useLogSearch } from './useLogSearch';
import { describeView, hashFor, parseJump, parseLineHash } from './lineWindow';

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
  /** When the run started (ISO 8601): the origin of relative line times. */
  startedAt?: string | null;
}

const API_BASE = '/api';
/**
 * Rows, not lines: the navigator holds at most a few thousand lines (lineWindow.ts); this
 * leaves room for them to wrap.
 */
export const VIEWER_SCROLLBACK = 50_000;
/** The stream starts at the log's end: the navigator loads the lines before it by number. */
const STREAM_FROM_END: TailPolicy = { thresholdBytes: 0, tailBytes: 0 };
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

const END_TONE_CLASS: Record<EndTone, string> = { ok: 'tlv-ok', error: 'tlv-error', muted: 'tlv-neutral' };


declare global {
  interface Window {
    /** Set by tests (before the app loads) to have the viewer expose its terminal. */
    __TRAINLOG_EXPOSE_TERM__?: boolean;
    __trainlogTerm?: Terminal;
    __trainlogNav?: LogNavigator;
  }
}

export function TrainingLogViewer({
  runId,
  isLive = false,
  height = '400px',
  downloads = true,
  onUnauthorized,
  onEnd,
  startedAt = null,
}: TrainingLogViewerProps) {
  const boxRef = useRef<HTMLDivElement | null>(null);
  const scrollRef = useRef<HTMLDivElement | null>(null);
  const [overflow, setOverflow] = useState<{ left: boolean; right: boolean }>({ left: false, right: false });
  const termRef = useRef<Terminal | null>(null);
  const fitRef = useRef<FitAddon | null>(null);
  const navRef = useRef<LogNavigator | null>(null);
  const followRef = useRef(true);
  const colsRef = useRef<number | null>(null);
  const [ready, setReady] = useState(false);
  const [view, setView] = useState<NavView | null>(null);
  const [jumpText, setJumpText] = useState('');
  const [jumpError, setJumpError] = useState<string | null>(null);
  const [timeMode, cycleTimeMode] = useTimeMode();
  const [cellHeight, setCellHeight] = useState(0);
  const follow = view?.following ?? true;
  followRef.current = follow;

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
    const screenEl = term.element?.querySelector<HTMLElement>('.xterm-screen');
    if (screenEl && term.rows > 0) setCellHeight(screenEl.offsetHeight / term.rows);
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
      allowProposedApi: true, // line highlights (decorations)
      fontFamily: "'JetBrains Mono', 'Fira Code', 'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace",
      fontSize: 13,
      lineHeight: 1.2,
      theme: THEME,
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(box);
    termRef.current = term;
    fitRef.current = fit;
    colsRef.current = null;
    const nav = new LogNavigator(term, API_BASE, runId, setView);
    navRef.current = nav;
    // The address bar names the lines shown highlighted, so a copied URL opens where the
    // reader is: replaced, not pushed (Back leaves the page, not the last jump).
    nav.onHighlight = (range) => {
      const hash = hashFor(range, window.location.hash);
      if (hash === window.location.hash) return;
      const url = `${window.location.pathname}${window.location.search}${hash}`;
      window.history.replaceState(window.history.state, '', url);
    };
    if (window.__TRAINLOG_EXPOSE_TERM__) {
      window.__trainlogTerm = term;
      window.__trainlogNav = nav;
    }

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
    setView(null);
    setReady(true);

    return () => {
      setReady(false);
      cancelAnimationFrame(frame);
      ro.disconnect();
      scroller?.removeEventListener('scroll', updateOverflow);
      nav.dispose();
      navRef.current = null;
      termRef.current = null;
      fitRef.current = null;
      if (window.__trainlogTerm === term) delete window.__trainlogTerm;
      if (window.__trainlogNav === nav) delete window.__trainlogNav;
      term.dispose();
    };
  }, [runId, refit, updateOverflow]);

  const sink = useCallback((bytes: Uint8Array) => navRef.current?.pushLive(bytes), []);
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
    tailPolicy: STREAM_FROM_END,
    onTermCols,
  });
  const { phase, exitCode, error, errorStatus, offset, shownFrom, size, runStatus } = stream;

  // Once the stream is open, its first byte's offset is known: open the view there (or at
  // the permalink's lines).
  const streamOpen = phase === 'live' || phase === 'done';
  useEffect(() => {
    if (streamOpen) navRef.current?.begin(shownFrom ?? 0, parseLineHash(window.location.hash));
  }, [streamOpen, shownFrom]);
  useEffect(() => {
    const onHash = () => {
      const range = parseLineHash(window.location.hash);
      if (!range) return;
      // Asked from elsewhere on the page (a chart point below the log): bring the log to view.
      scrollRef.current?.scrollIntoView({ block: 'nearest' });
      void navRef.current?.jumpToLine(range.from, range.to);
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  const search = useLogSearch(navRef, view);

  const onJumpKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key !== 'Enter') return;
    e.preventDefault();
    const nav = navRef.current;
    const startSec = startedAt ? Date.parse(startedAt) / 1000 : null;
    const target = parseJump(jumpText, startSec);
    if (!nav || !target) {
      setJumpError('Type a line number, a time of day (UTC) or a date and time');
      return;
    }
    setJumpError(null);
    if ('line' in target) void nav.jumpToLine(target.line);
    else void nav.jumpToTime(target.time);
  };

  const jumpToBottom = () => void navRef.current?.jumpToEnd();
  // Following only means something while output can still come: once the run is over, the
  // end is a place to jump to, like the start.
  const live = isLive && phase !== 'done';

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
      <span className={`tlv-status ${END_TONE_CLASS[end.tone]}`} data-testid="viewer-exit" title={end.text}>
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
      data-view-from={view?.from ?? ''}
      data-view-to={view?.to ?? ''}
      data-view-top={view?.top ?? ''}
      data-total={view?.total ?? ''}
      data-held-first={view?.heldFirst ?? ''}
      data-held-offset={view?.heldOffset ?? ''}
      data-held-next={view?.heldNext ?? ''}
      data-highlight={view?.highlight ? `${view.highlight.from}-${view.highlight.to}` : ''}
      data-loading={view?.loading ? 'yes' : 'no'}
      data-exit-code={exitCode ?? ''}
      data-run-status={runStatus ?? ''}
      data-follow={follow ? 'on' : 'off'}
    >
      <div className="tlv-toolbar">
        <div className="tlv-info">
          {statusEl}
          <span className="tlv-size tlv-muted" title={`${offset} bytes`}>
            {formatBytes(Math.max(size, offset))}
          </span>
          {/* Only when the run's width does not fit: then the log scrolls sideways, and this says why. */}
          {stream.termCols !== null && (overflow.left || overflow.right) && (
            <span
              className="tlv-cols tlv-muted"
              data-testid="viewer-cols"
              title={`The run's terminal was ${stream.termCols} columns wide: the log keeps that width (scroll sideways to see all of it)`}
            >
              {stream.termCols} cols ↔
            </span>
          )}
        </div>
        {/* As wide as its longest text for this log (the hidden copy: last line to last line),
            so the toolbar does not reflow as the numbers change while scrolling. */}
        <span className="tlv-where tlv-muted">
          <span data-testid="viewer-where">{view && view.total > 0 ? describeView(view.from, view.to, view.total) : ''}</span>
          <span aria-hidden className="tlv-where-room">
            {view && view.total > 0 ? describeView(view.total, view.total, view.total) : ''}
          </span>
          {/* Beside the range, taking no room of its own (the toolbar does not reflow). */}
          {view?.loading && <span className="tlv-spinner tlv-muted" aria-label="Loading lines" />}
        </span>
        <div className="tlv-jumpto">
          <input
            type="text"
            placeholder="Line or time"
            aria-label="Go to line or time"
            value={jumpText}
            onChange={(e) => {
              setJumpText(e.target.value);
              setJumpError(null);
            }}
            // The notice is about this box: it goes when the reader goes elsewhere.
            onBlur={() => setJumpError(null)}
            onKeyDown={onJumpKey}
            title="A line number (48213), a UTC time of day (23:10:05) or a date and time (2026-12-06T23:10Z); Enter"
          />
          <button
            type="button"
            className="tlv-icon"
            aria-label="Go to the first line"
            title="Go to the first line"
            onClick={() => void navRef.current?.jumpToStart()}
          >
            ⤒
          </button>
          {live ? (
            <button
              type="button"
              className={`tlv-follow ${follow ? 'on' : ''}`}
              aria-pressed={follow}
              title={follow ? 'Following the end of the log' : 'Go to the end and follow'}
              onClick={jumpToBottom}
            >
              {follow ? 'Following' : 'Follow'}
            </button>
          ) : (
            <button type="button" className="tlv-icon" aria-label="Go to the last line" title="Go to the last line" onClick={jumpToBottom}>
              ⤓
            </button>
          )}
        </div>
        <div className="tlv-search">
          {/* The count sits inside the box, at its end: the toolbar keeps its width as the count
              appears and grows while the scan goes on. */}
          <span className={`tlv-search-box${search.query && search.status ? ' tlv-counted' : ''}`}>
            <input
              type="search"
              placeholder="Search whole log"
              aria-label="Search log"
              value={search.query}
              onChange={(e) => search.setQuery(e.target.value)}
              onKeyDown={search.onKey}
            />
            {search.query && search.status && (
              <span className="tlv-muted tlv-count" data-testid="viewer-search-count" title={search.countTitle}>
                {search.status}
              </span>
            )}
          </span>
          {(
            [
              ['.*', 'Regular expression', 'Regular expression (RE2)', search.regex, search.toggleRegex],
              ['Aa', 'Match case', 'Match case', search.caseSensitive, search.toggleCase],
            ] as const
          ).map(([label, name, title, on, toggle]) => (
            <button
              key={label}
              type="button"
              className={`tlv-toggle ${on ? 'on' : ''}`}
              aria-pressed={on}
              aria-label={name}
              title={title}
              onClick={toggle}
            >
              {label}
            </button>
          ))}
          {(
            [
              ['↑', 'Previous match', 'Shift+Enter', true],
              ['↓', 'Next match', 'Enter', false],
            ] as const
          ).map(([label, name, key, backwards]) => (
            <button
              key={label}
              type="button"
              className="tlv-icon"
              aria-label={name}
              title={`${name} (${key})`}
              onClick={() => search.go(backwards)}
              disabled={!search.query}
            >
              {label}
            </button>
          ))}
        </div>
        <button
          type="button"
          title="Next line that starts a Python traceback or has an error level (ERROR, CRITICAL, Error:), whole log"
          onClick={search.nextError}
          data-testid="viewer-next-error"
        >
          Next error
        </button>
        <button
          type="button"
          className={`tlv-toggle ${timeMode !== 'off' ? 'on' : ''}`}
          aria-pressed={timeMode !== 'off'}
          title="Line times: off, UTC clock, since the run started"
          onClick={cycleTimeMode}
          data-testid="viewer-times"
        >
          {timeMode === 'off' ? 'Times' : timeMode === 'absolute' ? 'Times: UTC' : 'Times: +run'}
        </button>
        {downloads && <DownloadMenu runId={runId} apiBase={API_BASE} testId="viewer-download-menu" />}
      </div>
      {(view?.error || jumpError || search.errorNotice) && (
        <div className="tlv-notice" role="alert" data-testid="viewer-nav-notice">
          {view?.error ?? jumpError ?? search.errorNotice}
        </div>
      )}
      <div className={`tlv-body${overflow.left ? ' tlv-more-left' : ''}${overflow.right ? ' tlv-more-right' : ''}`}>
        <LineGutter
          view={view}
          cellHeight={cellHeight}
          mode={timeMode}
          runStart={startedAt ? Date.parse(startedAt) / 1000 : null}
          nav={navRef.current}
        />
        <div className="tlv-main">
          {/* A run recorded at a fixed width keeps it: a narrower box scrolls sideways. */}
          <div
            className={`tlv-scroll${stream.termCols ? ' tlv-fixed-cols' : ''}`}
            data-testid="viewer-scroll"
            ref={scrollRef}
          >
            <div className="tlv-term" ref={boxRef} />
          </div>
        </div>
        {empty && (
          <div className="tlv-empty">{phase === 'done' ? 'This run wrote no output.' : 'Waiting for output…'}</div>
        )}
        {live && !follow && (
          <button type="button" className="tlv-jump" onClick={jumpToBottom}>
            ↓ Follow output
          </button>
        )}
      </div>
    </div>
  );
}

export default TrainingLogViewer;
