import { describe, expect, it } from 'vitest';
import { runNotices, type RunFacts } from './runNotices';

const run = (over: Partial<RunFacts>): RunFacts => ({ status: 'succeeded', exit_code: 0, error: null, log_truncated: false, ...over });

describe('runNotices', () => {
  it('says nothing about a run that went fine', () => {
    expect(runNotices(run({}))).toEqual([]);
    expect(runNotices(run({ status: 'running', exit_code: null }))).toEqual([]);
    expect(runNotices(run({ status: 'failed', exit_code: 3 }))).toEqual([]);
  });
  it('a lost run: the runner died, the log is what was stored, and the server\'s reason', () => {
    const [n, ...rest] = runNotices(
      run({ status: 'lost', exit_code: null, error: 'the runner stopped reporting (killed, or its machine went down)' }),
    );
    expect(rest).toEqual([]);
    expect(n).toEqual({
      kind: 'error',
      id: 'lost',
      title: 'The runner died; the log below is everything stored before it stopped.',
      detail: 'the runner stopped reporting (killed, or its machine went down)',
    });
    expect(runNotices(run({ status: 'lost', exit_code: null }))[0]?.detail).toMatch(/stopped reporting/);
  });
  it('a run that could not start shows its error', () => {
    expect(runNotices(run({ status: 'failed', exit_code: null, error: "could not start 'nope': No such file or directory" }))).toEqual([
      { kind: 'error', id: 'not-started', title: 'The run could not start.', detail: "could not start 'nope': No such file or directory" },
    ]);
  });
  it('any other error is shown too; on a run that did not fail it is a warning', () => {
    expect(runNotices(run({ status: 'succeeded', error: 'output was lost: 12 bytes; see the log' }))).toMatchObject([
      { kind: 'warn', id: 'error', detail: 'output was lost: 12 bytes; see the log' },
    ]);
    expect(runNotices(run({ status: 'failed', exit_code: 1, error: 'boom' }))).toMatchObject([{ kind: 'error', id: 'error' }]);
    expect(runNotices(run({ error: '   ' }))).toEqual([]);
  });
  it('a truncated log says output past the limit was not stored, alongside any other notice', () => {
    expect(runNotices(run({ log_truncated: true })).map((n) => [n.id, n.kind])).toEqual([['truncated', 'warn']]);
    expect(runNotices(run({ log_truncated: true }))[0]?.title).toMatch(/not stored/);
    expect(runNotices(run({ status: 'lost', exit_code: null, log_truncated: true })).map((n) => n.id)).toEqual(['lost', 'truncated']);
  });
});
