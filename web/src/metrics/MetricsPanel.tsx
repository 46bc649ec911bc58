import { useEffect, useState } from 'react';
import { api, request, type Run } from '../api';
import { shortId } from '../format';
import { SeriesChart } from './SeriesChart';
import { appendPoints, type MetricPoint, type SeriesSummary, type XAxis } from './series';

// Points a chart asks for: about one per pixel pair of its width; the server keeps extremes.
const CHART_POINTS = 1000;

type PointsByName = Record<string, MetricPoint[]>;

const seriesPath = (runId: string, name: string) =>
  `/runs/${encodeURIComponent(runId)}/metrics/${name.split('/').map(encodeURIComponent).join('/')}?max_points=${CHART_POINTS}`;

async function loadRun(runId: string, signal: AbortSignal): Promise<{ series: SeriesSummary[]; points: PointsByName }> {
  const { series } = await request<{ series: SeriesSummary[] }>('GET', `/runs/${encodeURIComponent(runId)}/metrics`, undefined, signal);
  const loaded = await Promise.all(
    series.map((s) => request<{ points: MetricPoint[] }>('GET', seriesPath(runId, s.name), undefined, signal)),
  );
  return { series, points: Object.fromEntries(series.map((s, i) => [s.name, loaded[i]?.points ?? []])) };
}

/**
 * The run's metrics, charted: one small chart per series, growing live while the run goes
 * (`metric` events from the run's metrics stream), by step or by time, linear or log, with
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
    let source: EventSource | null = null;
    loadRun(runId, abort.signal)
      .then(({ series, points: loaded }) => {
        setNames(series.map((s) => s.name));
        setPoints(loaded);
        if (!live) return;
        // Every point printed after the summary was read: seqs are the order printed, run-wide.
        const next = series.reduce((n, s) => n + s.points, 0);
        source = new EventSource(`/api/runs/${encodeURIComponent(runId)}/metrics-stream?from_seq=${next}`);
        source.addEventListener('metric', (event) => {
          const batch = (JSON.parse((event as MessageEvent<string>).data) as { points: (MetricPoint & { name: string })[] }).points;
          setPoints((held) => {
            const grouped: PointsByName = { ...held };
            for (const p of batch) grouped[p.name] = appendPoints(grouped[p.name] ?? [], [p]);
            return grouped;
          });
          setNames((known) => {
            const fresh = [...new Set(batch.map((p) => p.name))].filter((n) => !known.includes(n));
            return fresh.length ? [...known, ...fresh].sort() : known;
          });
        });
        source.addEventListener('done', () => source?.close());
      })
      .catch((e: unknown) => {
        if (!abort.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      });
    return () => {
      abort.abort();
      source?.close();
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
