import { describe, expect, it } from 'vitest';
import { chartData, formatValue, type MetricPoint } from './series';

const point = (seq: number, step: number, value: MetricPoint['value'], time: number | null = seq): MetricPoint => ({
  seq,
  step,
  value,
  line: seq + 1,
  offset: seq * 10,
  time,
});

describe('chartData', () => {
  it('sorts by step, keeping the printed order of a shared step, and maps each index to its point', () => {
    const data = chartData([point(0, 50, 1), point(1, 10, 2), point(2, 50, 3)], 'step', false);
    expect(data.xs).toEqual([10, 50, 50]);
    expect(data.ys).toEqual([2, 1, 3]);
    expect(data.points.map((p) => p.line)).toEqual([2, 1, 3]);
  });

  it('leaves gaps for NaN, infinities and, on a log scale, values <= 0', () => {
    const points = [point(0, 0, 'nan'), point(1, 1, 'inf'), point(2, 2, 0), point(3, 3, 0.5)];
    expect(chartData(points, 'step', false).ys).toEqual([null, null, 0, 0.5]);
    expect(chartData(points, 'step', true).ys).toEqual([null, null, null, 0.5]);
  });

  it('in the order printed, whatever the steps', () => {
    expect(chartData([point(0, 50, 1), point(1, 10, 2)], 'order', false).xs).toEqual([0, 1]);
  });

  it('by time leaves out points whose time is unknown', () => {
    const data = chartData([point(0, 0, 1, null), point(1, 1, 2, 100)], 'time', false);
    expect(data.xs).toEqual([100]);
  });
});

describe('formatValue', () => {
  it('shows numbers briefly and non-finite values by name', () => {
    expect(formatValue(0.41234567)).toBe('0.41235');
    expect(formatValue(3e-5)).toBe('3.000e-5');
    expect(formatValue('nan')).toBe('nan');
  });
});
