/**
 * Whole-log search through the server (`/logs/search`): the matches are collected page by
 * page (the count reads "100+…" while the scan goes on), and next/previous load the
 * window around each and highlight its line. "Next error" is the same search for a traceback
 * or an error level, from where the view is.
 */
import { useCallback, useEffect, useRef, useState, type KeyboardEvent, type RefObject } from 'react';
import type { LogNavigator, NavView, SearchMatch } from './logNavigator';
import { ERROR_PATTERN, pickMatch } from './lineWindow';

/** Matches kept per search (a bound on memory; the count then reads "5000+"). */
const MAX_MATCHES = 5000;
const PAGE = 100;
const DEBOUNCE_MS = 250;

export interface LogSearch {
  query: string;
  setQuery: (q: string) => void;
  regex: boolean;
  caseSensitive: boolean;
  toggleRegex: () => void;
  toggleCase: () => void;
  /** "3/100+…" (still scanning), "3/5000+" (no more kept), "3/41", "no matches", or null before anything is known. */
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
  const [matches, setMatches] = useState<SearchMatch[]>([]);
  const [scanning, setScanning] = useState(false);
  const [searched, setSearched] = useState(false);
  const [index, setIndex] = useState(-1);
  const [error, setError] = useState<string | null>(null);
  const [errorNotice, setErrorNotice] = useState<string | null>(null);
  const viewRef = useRef(view);
  viewRef.current = view;
  const matchesRef = useRef(matches);
  matchesRef.current = matches;

  const show = useCallback(
    (i: number, list: SearchMatch[]) => {
      const m = list[i];
      if (!m) return;
      setIndex(i);
      void navRef.current?.jumpToLine(m.line);
    },
    [navRef],
  );

  // A new query: scan the whole log, page by page; show the first match from the view on.
  useEffect(() => {
    setMatches([]);
    setIndex(-1);
    setError(null);
    setSearched(false);
    setScanning(false);
    if (!query) return undefined;
    let cancelled = false;
    const timer = setTimeout(() => {
      void (async () => {
        const nav = navRef.current;
        if (!nav) return;
        setScanning(true);
        const found: SearchMatch[] = [];
        let after: number | undefined;
        let shown = false;
        try {
          for (;;) {
            const page = await nav.search({ q: query, regex, caseSensitive, after, limit: PAGE });
            if (cancelled) return;
            found.push(...page.matches);
            setMatches([...found]);
            setSearched(true);
            if (!shown && found.length > 0) {
              shown = true;
              const from = viewRef.current?.from ?? 1;
              show(
                pickMatch(
                  found.map((m) => m.line),
                  from,
                  false,
                  true,
                ),
                found,
              );
            }
            if (page.next_after === null || found.length >= MAX_MATCHES) break;
            after = page.next_after;
          }
        } catch (err) {
          if (cancelled) return;
          setError(err instanceof Error ? err.message : String(err));
        }
        if (!cancelled) setScanning(false);
      })();
    }, DEBOUNCE_MS);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [query, regex, caseSensitive, navRef, show]);

  const go = useCallback(
    (backwards: boolean) => {
      const list = matchesRef.current;
      if (list.length === 0) return;
      let i: number;
      if (index >= 0) i = (index + (backwards ? -1 : 1) + list.length) % list.length;
      else
        i = pickMatch(
          list.map((m) => m.line),
          viewRef.current?.from ?? 1,
          backwards,
          true,
        );
      show(i, list);
    },
    [index, show],
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
  else if (searched || !scanning) {
    const n = matches.length;
    // Short: it sits inside the search box.
    const more = scanning ? '+…' : n >= MAX_MATCHES ? '+' : '';
    if (scanning) countTitle = 'Still searching the log: more matches may come';
    else if (n >= MAX_MATCHES) countTitle = `The first ${MAX_MATCHES.toLocaleString('en-US')} matches are kept`;
    if (n === 0) status = scanning ? 'searching…' : searched ? 'no matches' : null;
    else status = index >= 0 ? `${index + 1}/${n}${more}` : `${n}${more}`;
  } else status = 'searching…';

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
