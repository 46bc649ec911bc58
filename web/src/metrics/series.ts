/** Metric series from the API, and the arrays a chart draws (pure). */

/** A value as the API sends it: a number, or "nan", "inf", "-inf". */
export type MetricValue = number | 'nan' | 'inf' | '-inf';

export interface MetricPoint {
  seq: number;
  step: number;
  value: MetricValue;
  /** The log line it was printed on (numbered from 1, as the viewer's #L links are). */
  line: number;
  offset: number;
  /** Unix epoch seconds, or null when not known. */
  time: number | null;
}

export interface SeriesSummary {
  name: string;
  points: number;
  last: MetricPoint | null;
}

/** By step, by time, or in the order printed (for steps that restart, such as per-epoch counters). */
export type XAxis = 'step' | 'time' | 'order';

/** What a chart draws: x and y arrays (ascending x), and the point behind each index. */
export interface ChartData {
  xs: number[];
  ys: (number | null)[];
  points: MetricPoint[];
}

/**
 * The chart's arrays for `points`: by step or by time (points without a time are left out),
 * sorted by x as the chart needs (points printed at the same x keep their order). Values the
 * chart cannot draw (NaN, infinities; on a log scale anything <= 0) become gaps.
 */
export function chartData(points: MetricPoint[], x: XAxis, logScale: boolean): ChartData {
  const kept = points.filter((p) => x !== 'time' || p.time != null);
  const xOf = (p: MetricPoint) => (x === 'step' ? p.step : x === 'order' ? p.seq : (p.time as number));
  const sorted = kept.map((p, i) => [p, i] as const).sort((a, b) => xOf(a[0]) - xOf(b[0]) || a[1] - b[1]);
  const ordered = sorted.map(([p]) => p);
  return {
    xs: ordered.map(xOf),
    ys: ordered.map((p) => (typeof p.value === 'number' && (!logScale || p.value > 0) ? p.value : null)),
    points: ordered,
  };
}

export function formatValue(value: MetricValue): string {
  if (typeof value !== 'number') return value;
  return Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(3) : String(+value.toPrecision(5));
}
