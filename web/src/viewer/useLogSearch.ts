/**
 * Whole-log search through the server (`/logs/search`): a new query shows the first match at
 * or after the line at the top of the view (else, wrapping, the log's first), and next/previous
 * walk every match of the log (matchWindow.ts: a bounded window of them). The count comes from
 * a scan of the log's start: "3/100+…" while it goes on, "3/5000+" past what it counts ("?"
 * for a match beyond them). "Next error" is the same search for a traceback or an error
 * level, from where the view is.
 */
import { useCallback, useEffect, useRef, useState, type KeyboardEvent, type RefObject } from 'react';
import type { LogNavigator, NavView, SearchMatch } from './logNavigator';
import { ERROR_PATTERN } from './lineWindow';
import { MatchWalker, countMatches, describeCount, type MatchCount, type SearchFn } from './matchWindow';

const DEBOUNCE_MS = 250;
const NO_COUNT: MatchCount = { offsets: [], complete: false, capped: false };

export interface LogSearch {
  query: string;
  setQuery: (q: string) => void;
  regex: boolean;
  caseSensitive: boolean;
  toggleRegex: () => void;
  toggleCase: () => void;
  /** "3/100+…" (still counting), "3/5000+" (more than are counted), "3/41", "no matches", or null before anything is known. */
  status: string | null;
  /** What the count means, for its tooltip. */
  countTitle: string | undefined;
  /** What to tell the user about a search or "next error" that could not go anywhere. */
  errorNotice: string | null;
  go: (backwards: boolean) => void;
  onKey: (e: KeyboardEvent<HTMLInputElement>) => void;
  nextError: () => void;
}

export function useLogSearch(navRef: RefObject<LogNavigator | null>, view: NavView | null): LogSearch {
  const [query, setQuery] = useState('');
  const [regex, setRegex] = useState(false);
  const [caseSensitive, setCase] = useState(false);
  const [count, setCount] = useState<MatchCount>(NO_COUNT);
  const [current, setCurrent] = useState<SearchMatch | null>(null);
  const [searched, setSearched] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [errorNotice, setErrorNotice] = useState<string | null>(null);
  const walkerRef = useRef<MatchWalker | null>(null);
  const viewRef = useRef(view);
  viewRef.current = view;

  // A new query: show the first match from the view on, and count the log's matches.
  useEffect(() => {
    walkerRef.current = null;
    setCount(NO_COUNT);
    setCurrent(null);
    setError(null);
    setSearched(false);
    if (!query) return undefined;
    let cancelled = false;
    const fail = (err: unknown) => {
      if (!cancelled) setError(err instanceof Error ? err.message : String(err));
    };
    const timer = setTimeout(() => {
      const nav = navRef.current;
      if (!nav) return;
      const search: SearchFn = (after, limit) => nav.search({ q: query, regex, caseSensitive, after, limit });
      const walker = new MatchWalker(search);
      walkerRef.current = walker;
      const v = viewRef.current;
      walker.start((v && nav.offsetOfLine(v.from)) ?? 0).then((m) => {
        if (cancelled) return;
        setSearched(true);
        setCurrent(m);
        if (m) void nav.jumpToLine(m.line);
      }, fail);
      countMatches(search, (c) => !cancelled && setCount(c), () => cancelled).catch(fail);
    }, DEBOUNCE_MS);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [query, regex, caseSensitive, navRef]);

  const go = useCallback(
    (backwards: boolean) => {
      const walker = walkerRef.current;
      if (!walker?.current) return;
      (backwards ? walker.previous() : walker.next()).then(
        (m) => {
          if (walkerRef.current !== walker || !m) return;
          setCurrent(m);
          void navRef.current?.jumpToLine(m.line);
        },
        (err: unknown) => walkerRef.current === walker && setError(err instanceof Error ? err.message : String(err)),
      );
    },
    [navRef],
  );

  const onKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      go(e.shiftKey);
    } else if (e.key === 'Escape') setQuery('');
  };

  const nextError = useCallback(() => {
    const nav = navRef.current;
    const v = viewRef.current;
    if (!nav || !v) return;
    const from = v.highlight && v.highlight.from >= v.from && v.highlight.from <= v.to ? v.highlight.from : v.from;
    setErrorNotice(null);
    void (async () => {
      try {
        // From the line in view onwards, then (wrapping) from the start.
        for (const after of [nav.offsetOfLine(from) ?? undefined, undefined]) {
          let cursor = after;
          for (;;) {
            const page = await nav.search({ q: ERROR_PATTERN, regex: true, caseSensitive: true, after: cursor, limit: 10 });
            const hit = page.matches.find((m) => after === undefined || m.line > from);
            if (hit) {
              await nav.jumpToLine(hit.line);
              return;
            }
            if (page.next_after === null) break;
            cursor = page.next_after;
          }
        }
        setErrorNotice('No traceback or error line in this log.');
      } catch (err) {
        setErrorNotice(err instanceof Error ? err.message : String(err));
      }
    })();
  }, [navRef]);

  let status: string | null = null;
  let countTitle: string | undefined;
  if (error) status = 'error';
  else if (searched && !current) status = 'no matches';
  else if (query) ({ text: status, title: countTitle } = describeCount(count, current));

  return {
    query,
    setQuery,
    regex,
    caseSensitive,
    toggleRegex: () => setRegex((r) => !r),
    toggleCase: () => setCase((c) => !c),
    status,
    countTitle: error ?? countTitle,
    errorNotice: errorNotice ?? (error ? `Search: ${error}` : null),
    go,
    onKey,
    nextError,
  };
}
