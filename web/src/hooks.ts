import { useCallback, useEffect, useRef, useState } from 'react';

/** The current time, re-rendering every `ms` while `active`. */
export function useNow(ms = 1000, active = true): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!active) return undefined;
    setNow(Date.now());
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms, active]);
  return now;
}

export interface Polled<T> {
  data: T | null;
  error: Error | null;
  loading: boolean;
  reload: () => void;
}

/** How long to wait before the next poll (null: don't repeat), or how to tell from the last data. */
export type PollInterval<T> = number | null | ((data: T | null) => number | null);

/**
 * Load `load()` now and then every `intervalMs` (null: don't repeat). Requests never overlap;
 * unmount or a change of `key` aborts the one in flight. `intervalMs` is read each time the
 * next poll is due, so changing it does not re-fetch; as a function it gets the last data
 * loaded (null before any), so polling can stop the moment the data says it is final. Once
 * it has stopped, only `reload()` or a new `key` loads again.
 */
export function usePolling<T>(
  key: string,
  load: (signal: AbortSignal) => Promise<T>,
  intervalMs: PollInterval<T>,
): Polled<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const intervalRef = useRef(intervalMs);
  intervalRef.current = intervalMs;
  const dataRef = useRef<T | null>(null);

  useEffect(() => {
    dataRef.current = null;
    setData(null);
    setError(null);
    setLoading(true);
  }, [key]);

  useEffect(() => {
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const nextMs = () => {
      const i = intervalRef.current;
      return typeof i === 'function' ? i(dataRef.current) : i;
    };
    const run = async () => {
      try {
        const v = await loadRef.current(ctl.signal);
        if (stopped) return;
        dataRef.current = v;
        setData(v);
        setError(null);
      } catch (e) {
        if (stopped || (e instanceof DOMException && e.name === 'AbortError')) return;
        setError(e instanceof Error ? e : new Error(String(e)));
      } finally {
        if (!stopped) {
          setLoading(false);
          const ms = nextMs();
          // Checked again when due: the interval may have become null in the meantime.
          if (ms !== null) {
            timer = setTimeout(() => {
              if (nextMs() !== null) void run();
            }, ms);
          }
        }
      }
    };
    void run();
    return () => {
      stopped = true;
      ctl.abort();
      if (timer) clearTimeout(timer);
    };
  }, [key, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}
