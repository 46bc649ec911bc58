import { useEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { chartData, formatValue, type MetricPoint, type XAxis } from './series';

const WIDTH = 340;
const HEIGHT = 140;

/** The log line a chart point was printed on: the viewer scrolls to it and highlights it.
 * The address may name that line already (the viewer keeps it in step with its highlight):
 * setting the same hash fires nothing, so the viewer is told as if it had changed. */
export function showLine(line: number) {
  const hash = `#L${line}`;
  if (window.location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else window.location.hash = hash;
}

/**
 * One series as a small chart: hover shows the point's step, value and time; a click on it
 * opens its line in the terminal. `compare` (another run's points of the same name) is drawn
 * beside it, dashed.
 */
export function SeriesChart({
  name,
  points,
  compare,
  x,
  logScale,
}: {
  name: string;
  points: MetricPoint[];
  compare?: MetricPoint[];
  x: XAxis;
  logScale: boolean;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [hover, setHover] = useState<MetricPoint | null>(null);
  const data = useMemo(() => chartData(points, x, logScale), [points, x, logScale]);
  const other = useMemo(() => (compare ? chartData(compare, x, logScale) : null), [compare, x, logScale]);
  const current = useRef(data);
  current.current = data;

  // uPlot draws from aligned arrays: this run's and the other run's points on one x axis.
  const aligned = useMemo((): uPlot.AlignedData => {
    if (!other) return [data.xs, data.ys];
    return uPlot.join([
      [data.xs, data.ys],
      [other.xs, other.ys],
    ]) as uPlot.AlignedData;
  }, [data, other]);
  const seriesCount = other ? 2 : 1;

  useEffect(() => {
    const element = host.current;
    if (!element) return undefined;
    const opts: uPlot.Options = {
      width: WIDTH,
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: x === 'time' }, y: { distr: logScale ? 3 : 1 } },
      axes: [{ size: 28 }, { size: 48 }],
      series: [
        {},
        { label: name, stroke: '#4f8cff', width: 1.5 },
        ...(seriesCount > 1 ? [{ label: `${name} (compare)`, stroke: '#e59b3a', width: 1, dash: [4, 3] }] : []),
      ],
      hooks: {
        setCursor: [
          (u) => {
            const idx = u.cursor.idx;
            setHover(idx == null ? null : (pointAt(current.current, u.data[0][idx]) ?? null));
          },
        ],
      },
    };
    const chart = new uPlot(opts, aligned, element);
    plot.current = chart;
    const onClick = () => {
      const idx = chart.cursor.idx;
      const p = idx == null ? undefined : pointAt(current.current, chart.data[0][idx]);
      if (p) showLine(p.line);
    };
    chart.over.addEventListener('click', onClick);
    return () => {
      chart.over.removeEventListener('click', onClick);
      chart.destroy();
      plot.current = null;
    };
    // Rebuilt when the axes change; new data alone goes through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [name, x, logScale, seriesCount]);

  useEffect(() => {
    plot.current?.setData(aligned);
  }, [aligned]);

  const last = points.length ? points[points.length - 1] : null;
  const shown = hover ?? last;
  return (
    <figure className="metric-chart" data-testid={`metric-chart-${name}`} data-points={points.length}>
      <figcaption>
        <span className="metric-name mono">{name}</span>
        {shown && (
          <span className="metric-readout mono" data-testid="metric-readout">
            step {shown.step} · {formatValue(shown.value)}
            {shown.time != null && ` · ${new Date(shown.time * 1000).toLocaleTimeString()}`}
            {hover && ` · line ${hover.line}`}
          </span>
        )}
      </figcaption>
      <div ref={host} className="metric-plot" title="Click a point to show its line in the log" />
    </figure>
  );
}

/** This run's point drawn at x (the first one there), if any. */
function pointAt(data: { xs: number[]; points: MetricPoint[] }, at: number | null | undefined) {
  if (at == null) return undefined;
  const i = data.xs.indexOf(at);
  return i < 0 ? undefined : data.points[i];
}
