import { describe, expect, it } from 'vitest';
import type { Run } from './api';
import { appendOlder, formatMetric, mergeNewest, metricColumn, runsAddress, shortCommit } from './runList';

const run = (id: string, minute: number): Run => ({
  id,
  status: 'succeeded',
  config: null,
  command: [],
  exit_code: 0,
  created_at: `2026-01-01T00:${String(minute).padStart(2, '0')}:00Z`,
  started_at: null,
  finished_at: null,
  log_size: 0,
  error: null,
});

const ids = (runs: Run[]) => runs.map((r) => r.id);

describe('mergeNewest', () => {
  it('keeps older pages below the fresh first page, and the run a new one pushed off it', () => {
    const shown = [run('d', 4), run('c', 3), run('b', 2), run('a', 1)];
    // e is new; d fell off a first page of two; a and b were a later page.
    expect(ids(mergeNewest(shown, [run('e', 5), run('d', 4)], false))).toEqual(['e', 'd', 'c', 'b', 'a']);
  });

  it('drops a run the fresh page no longer has (deleted, or no longer matching)', () => {
    const shown = [run('d', 4), run('c', 3), run('b', 2), run('a', 1)];
    expect(ids(mergeNewest(shown, [run('d', 4), run('b', 2)], false))).toEqual(['d', 'b', 'a']);
  });

  it('takes a complete page as the whole list', () => {
    expect(ids(mergeNewest([run('b', 2), run('a', 1)], [run('b', 2)], true))).toEqual(['b']);
    expect(ids(mergeNewest([run('a', 1)], [], true))).toEqual([]);
  });

  it('orders runs created in the same instant by id', () => {
    const shown = [run('y', 1), run('x', 1)];
    expect(ids(mergeNewest(shown, [run('z', 1), run('y', 1)], false))).toEqual(['z', 'y', 'x']);
  });
});

describe('appendOlder', () => {
  it('never repeats a run', () => {
    expect(ids(appendOlder([run('b', 2), run('a', 1)], [run('a', 1), run('z', 0)]))).toEqual(['b', 'a', 'z']);
  });
});

describe('shortCommit', () => {
  it('is 8 hex digits, starred when dirty, absent without git', () => {
    expect(shortCommit({ commit: '0123456789abcdef', branch: 'main', dirty: false })).toBe('01234567');
    expect(shortCommit({ commit: '0123456789abcdef', branch: null, dirty: true })).toBe('01234567*');
    expect(shortCommit(null)).toBeNull();
    expect(shortCommit(undefined)).toBeNull();
  });
});

describe('the metric column', () => {
  it('is kept in the address beside the filters, and dropped when empty', () => {
    const query = { statuses: ['failed' as const], tags: ['team:nlp'], q: '' };
    expect(runsAddress(query, 'val_loss')).toBe('/?status=failed&tag=team%3Anlp&metric=val_loss');
    expect(runsAddress(query, null)).toBe('/?status=failed&tag=team%3Anlp');
    expect(runsAddress({ statuses: [], tags: [], q: '' }, null)).toBe('/');
    expect(metricColumn('?status=failed&metric=loss')).toBe('loss');
    expect(metricColumn('?metric=%20')).toBeNull();
    expect(metricColumn('?status=failed')).toBeNull();
  });

  it('shows 4 significant digits, exponents only for very large or small values', () => {
    expect(formatMetric(0.41234567)).toBe('0.4123');
    expect(formatMetric(0.25)).toBe('0.25');
    expect(formatMetric(1200)).toBe('1200');
    expect(formatMetric(12345.678)).toBe('12350');
    expect(formatMetric(3e-4)).toBe('3e-4');
    expect(formatMetric(-25_000_000.5)).toBe('-2.5e+7');
    expect(formatMetric(-2.5e7)).toBe('-25000000');
    expect(formatMetric('nan')).toBe('nan');
    expect(formatMetric('-inf')).toBe('-inf');
  });
});
