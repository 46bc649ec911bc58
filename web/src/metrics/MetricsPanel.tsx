import { useEffect, useState } from 'react';
import { api, request, type Run } from '../api';
import { shortId } from '../format';
import { SeriesChart } from './SeriesChart';
import { type MetricPoint, type SeriesSummary, type XAxis } from './series';

// Points a chart asks for: about one per pixel pair of its width; the server keeps extremes.
const CHART_POINTS = 1000;
// How often a live run's charts are refreshed.
const LIVE_REFRESH_MS = 2000;

type PointsByName = Record<string, MetricPoint[]>;

/** A series downsampled for a chart; with `afterSeq`, only the points printed after that one. */
const seriesPath = (runId: string, name: string, afterSeq?: number) =>
  `/runs/${encodeURIComponent(runId)}/metrics/${name.split('/').map(encodeURIComponent).join('/')}?max_points=${CHART_POINTS}` +
  (afterSeq === undefined ? '' : `&after_seq=${afterSeq}`);

async function loadRun(runId: string, signal: AbortSignal): Promise<{ series: SeriesSummary[]; points: PointsByName }> {
  const { series } = await request<{ series: SeriesSummary[] }>('GET', `/runs/${encodeURIComponent(runId)}/metrics`, undefined, signal);
  const loaded = await Promise.all(
    series.map((s) => request<{ points: MetricPoint[] }>('GET', seriesPath(runId, s.name), undefined, signal)),
  );
  return { series, points: Object.fromEntries(series.map((s, i) => [s.name, loaded[i]?.points ?? []])) };
}

/**
 * The run's metrics, charted: one small chart per series, growing live while the run goes
 * (refreshed every few seconds), by step or by time, linear or log, with
 * another run's series of the same names overlaid on request. Nothing shows for a run that
 * printed no metrics.
 */
export function MetricsPanel({ runId, live }: { runId: string; live: boolean }) {
  const [names, setNames] = useState<string[]>([]);
  const [points, setPoints] = useState<PointsByName>({});
  const [x, setX] = useState<XAxis>('step');
  const [logScale, setLogScale] = useState(false);
  const [compareId, setCompareId] = useState('');
  const [compare, setCompare] = useState<PointsByName>({});
  const [otherRuns, setOtherRuns] = useState<Run[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    // While the run is live the charts are refreshed by short requests, not a stream of their
    // own: a browser holds six connections per host, and the log's stream already shares one
    // among every tab (a stream per tab for metrics would stall the seventh tab again).
    let known: Record<string, number> = {};
    const held: PointsByName = {};
    const refresh = async (): Promise<void> => {
      const started = performance.now();
      const { series } = await request<{ series: SeriesSummary[] }>(
        'GET',
        `/runs/${encodeURIComponent(runId)}/metrics`,
        undefined,
        abort.signal,
      );
      const changed = series.filter((s) => known[s.name] !== s.points);
      // Only what was printed since the last point held is fetched and appended; a series
      // that has grown to twice the chart's points is fetched whole again, downsampled anew.
      const loaded = await Promise.all(
        changed.map((s) => {
          const had = held[s.name];
          const after = had?.length && had.length < 2 * CHART_POINTS ? had[had.length - 1]?.seq : undefined;
          return request<{ points: MetricPoint[] }>('GET', seriesPath(runId, s.name, after), undefined, abort.signal).then(
            ({ points: got }) => (after === undefined ? got : [...(had ?? []), ...got]),
          );
        }),
      );
      known = Object.fromEntries(series.map((s) => [s.name, s.points]));
      changed.forEach((s, i) => {
        held[s.name] = loaded[i] ?? [];
      });
      setNames(series.map((s) => s.name));
      if (changed.length) setPoints({ ...held });
      if (live && !abort.signal.aborted) {
        // Every 2 s, or less often while a refresh of huge series takes long.
        timer = setTimeout(poll, Math.max(LIVE_REFRESH_MS, 2 * (performance.now() - started)));
      }
    };
    const poll = () => {
      refresh().catch((e: unknown) => {
        if (abort.signal.aborted) return;
        if (!Object.keys(known).length) setError(e instanceof Error ? e.message : String(e));
        else timer = setTimeout(poll, LIVE_REFRESH_MS); // a passing failure: try again
      });
    };
    poll();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [runId, live]);

  useEffect(() => {
    if (!names.length) return undefined;
    const abort = new AbortController();
    api
      .listRunsIfChanged({ statuses: [], tags: [], q: '' }, null, null, abort.signal)
      .then((answer) => setOtherRuns((answer?.page.runs ?? []).filter((r) => r.id !== runId)))
      .catch(() => undefined);
    return () => abort.abort();
  }, [runId, names.length]);

  useEffect(() => {
    setCompare({});
    if (!compareId) return undefined;
    const abort = new AbortController();
    loadRun(compareId, abort.signal)
      .then(({ points: loaded }) => setCompare(loaded))
      .catch(() => undefined);
    return () => abort.abort();
  }, [compareId]);

  if (error) return <div className="metrics-panel muted">Metrics unavailable: {error}</div>;
  if (!names.length) return null;
  return (
    <section className="metrics-panel" data-testid="metrics-panel" aria-label="Metrics">
      <div className="metrics-toolbar">
        <strong>Metrics</strong>
        <label>
          x{' '}
          <select value={x} onChange={(e) => setX(e.target.value as XAxis)} data-testid="metrics-x">
            <option value="step">step</option>
            <option value="time">time</option>
            <option value="order">order printed</option>
          </select>
        </label>
        <label>
          <input type="checkbox" checked={logScale} onChange={(e) => setLogScale(e.target.checked)} data-testid="metrics-log" />{' '}
          log scale
        </label>
        <label>
          compare with{' '}
          <select value={compareId} onChange={(e) => setCompareId(e.target.value)} data-testid="metrics-compare">
            <option value="">—</option>
            {otherRuns.map((r) => (
              <option key={r.id} value={r.id}>
                {shortId(r.id)} {r.config ?? ''}
              </option>
            ))}
          </select>
        </label>
        <span className="muted">click a point to see its line</span>
      </div>
      <div className="metrics-charts">
        {names.map((name) => (
          <SeriesChart key={name} name={name} points={points[name] ?? []} compare={compare[name]} x={x} logScale={logScale} />
        ))}
      </div>
    </section>
  );
}
