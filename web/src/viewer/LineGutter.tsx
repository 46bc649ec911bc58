/**
 * The column beside the terminal: each line's number (click: copy its link; shift-click: a
 * range) and, when asked, its time. Beside the text, never in it: the terminal shows the
 * log's bytes as they are.
 */
import { useCallback, useEffect, useRef, useState, type MouseEvent } from 'react';
import type { LogNavigator, NavView } from './logNavigator';
import { formatLineTime, lineHash } from './lineWindow';

export type TimeMode = 'off' | 'absolute' | 'relative';
const TIME_MODES: TimeMode[] = ['off', 'absolute', 'relative'];
const TIME_MODE_KEY = 'trainlog.viewer.times';

/** The gutter's time mode, remembered across visits (this browser). */
export function useTimeMode(): [TimeMode, () => void] {
  const [mode, setMode] = useState<TimeMode>(() => {
    const saved = window.localStorage.getItem(TIME_MODE_KEY);
    return TIME_MODES.includes(saved as TimeMode) ? (saved as TimeMode) : 'off';
  });
  const cycle = useCallback(() => {
    setMode((m) => {
      const next = TIME_MODES[(TIME_MODES.indexOf(m) + 1) % TIME_MODES.length]!;
      window.localStorage.setItem(TIME_MODE_KEY, next);
      return next;
    });
  }, []);
  return [mode, cycle];
}

export interface LineGutterProps {
  view: NavView | null;
  /** Height of one terminal row in px. */
  cellHeight: number;
  mode: TimeMode;
  /** The run's start (epoch seconds) for relative times; without it, the first line's. */
  runStart: number | null;
  nav: LogNavigator | null;
}

export function LineGutter({ view, cellHeight, mode, runStart, nav }: LineGutterProps) {
  const anchor = useRef<number | null>(null);
  const asked = useRef('');
  const [copied, setCopied] = useState<number | null>(null);

  // Lines that arrived on the live stream have no time yet: ask for the ones in view.
  const missing = mode !== 'off' && view ? view.rows.some((r) => r !== null && r.time === null) : false;
  useEffect(() => {
    if (!missing || !view || !nav) return;
    const key = `${view.from}-${view.to}-${view.total}`;
    if (asked.current === key) return;
    asked.current = key;
    nav.fillTimes(view.from, view.to).catch(() => undefined);
  }, [missing, view, nav]);

  const origin = runStart ?? view?.rows.find((r) => r?.line === 1)?.time ?? null;

  const onLineClick = (e: MouseEvent<HTMLAnchorElement>, line: number) => {
    e.preventDefault();
    const from = e.shiftKey && anchor.current !== null ? Math.min(anchor.current, line) : line;
    const to = e.shiftKey && anchor.current !== null ? Math.max(anchor.current, line) : line;
    if (!e.shiftKey) anchor.current = line;
    const hash = lineHash(from, to);
    nav?.setHighlight({ from, to }); // and the address bar (TrainingLogViewer)
    const url = `${window.location.origin}${window.location.pathname}${window.location.search}${hash}`;
    void navigator.clipboard?.writeText(url).then(
      () => setCopied(line),
      () => undefined,
    );
  };
  useEffect(() => {
    if (copied === null) return undefined;
    const t = setTimeout(() => setCopied(null), 1500);
    return () => clearTimeout(t);
  }, [copied]);

  const hl = view?.highlight;
  return (
    <div className={`tlv-gutter${mode !== 'off' ? ' tlv-with-times' : ''}`} data-testid="viewer-gutter" aria-hidden={!view}>
      {cellHeight > 0 &&
        view?.rows.map((r, i) =>
          r === null ? (
            <div key={i} className="tlv-gutter-row" style={{ height: cellHeight }} />
          ) : (
            <div
              key={i}
              className={`tlv-gutter-row${hl && r.line >= hl.from && r.line <= hl.to ? ' tlv-hl' : ''}`}
              style={{ height: cellHeight }}
              data-line={r.line}
              data-time={r.time ?? ''}
            >
              {mode !== 'off' && (
                <a className="tlv-time" href={lineHash(r.line)} onClick={(e) => onLineClick(e, r.line)} title="Copy a link to this line">
                  {formatLineTime(r.time, mode, origin)}
                </a>
              )}
              <a className="tlv-ln" href={lineHash(r.line)} onClick={(e) => onLineClick(e, r.line)} title="Copy a link to this line">
                {copied === r.line ? 'copied' : r.line}
              </a>
            </div>
          ),
        )}
    </div>
  );
}
