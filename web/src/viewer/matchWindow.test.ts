import { describe, expect, it } from 'vitest';
import type { SearchPage } from './logNavigator';
import { COUNTED_MATCHES, MatchWalker, countMatches, describeCount, type MatchCount } from './matchWindow';

/**
 * `/logs/search` over a log whose line n (from 1) starts at byte 10 * (n - 1) and matches when
 * `hit(n)`. Like the server, a page may end early (here: every 3rd request stops after 1,000
 * lines scanned, with no match or a few) and `after` may fall inside a line.
 */
function server(size: number | (() => number), hit: (n: number) => boolean) {
  let calls = 0;
  const search = async (after: number, limit: number): Promise<SearchPage> => {
    calls++;
    const lines = typeof size === 'number' ? size : size();
    const short = calls % 3 === 0;
    let n = Math.ceil(after / 10) + 1;
    const matches: SearchPage['matches'] = [];
    const stop = short ? n + 1000 : Infinity;
    for (; n <= lines && matches.length < limit && n < stop; n++)
      if (hit(n)) matches.push({ line: n, offset: 10 * (n - 1), time: null, text: `line ${n}` });
    return { matches, next_after: n > lines ? null : 10 * (n - 1), scanned_to: 10 * (n - 1) };
  };
  return { search, calls: () => calls };
}

const every7 = (n: number) => n % 7 === 6; // lines 6, 13, 20, ... like "shard 3" in the e2e log

describe('MatchWalker', () => {
  it('starts at the first match at or after the view, not at the log\'s first', async () => {
    const s = server(160_010, every7);
    const w = new MatchWalker(s.search, 100, 300);
    expect((await w.start(10 * 1496))?.line).toBe(1497 + ((6 - (1497 % 7) + 7) % 7)); // line 1497 onwards
    expect((await w.start(10 * (1504 - 1)))?.line).toBe(1504); // a match on the view's line is taken
  });

  it('wraps to the log\'s first match when there is none after the view', async () => {
    const s = server(1000, (n) => n === 40 || n === 900);
    const w = new MatchWalker(s.search);
    expect((await w.start(10 * 950))?.line).toBe(40);
    expect(await new MatchWalker(server(1000, () => false).search).start(500)).toBeNull();
  });

  it('walks every match of a log with many more than it keeps, forwards and back, in bounded memory', async () => {
    const lines = 100_000;
    const all: number[] = [];
    for (let n = 1; n <= lines; n++) if (every7(n)) all.push(n);
    expect(all.length).toBeGreaterThan(COUNTED_MATCHES * 2);
    const s = server(lines, every7);
    const w = new MatchWalker(s.search, 100, 300);
    const seen = [(await w.start(0))!.line];
    for (let k = 1; k < all.length; k++) {
      seen.push((await w.next())!.line);
      expect(w.held).toBeLessThanOrEqual(300);
    }
    expect(seen).toEqual(all);
    expect((await w.next())?.line).toBe(all[0]); // past the last: the first
    expect((await w.previous())?.line).toBe(all[all.length - 1]); // before the first: the last
    // Back from the last through every one (the kept ones, then rescans for those before them).
    const back = [all[all.length - 1]!];
    for (let k = 1; k < all.length; k++) {
      back.push((await w.previous())!.line);
      expect(w.held).toBeLessThanOrEqual(300);
    }
    expect(back).toEqual([...all].reverse());
  });

  it('goes back before where it started (a rescan), then forwards across that seam', async () => {
    const s = server(50_000, every7);
    const w = new MatchWalker(s.search, 100, 300);
    const start = (await w.start(10 * 30_000))!.line;
    const prev = (await w.previous())!.line;
    expect(prev).toBe(start - 7);
    expect((await w.previous())!.line).toBe(start - 14);
    expect((await w.next())!.line).toBe(start - 7);
    expect((await w.next())!.line).toBe(start);
    expect((await w.next())!.line).toBe(start + 7);
  });

  it('at the end of a live log, goes on to matches written since before wrapping round', async () => {
    let lines = 999;
    const s = server(() => lines, every7);
    const w = new MatchWalker(s.search, 100, 300);
    expect((await w.start(10 * 990))?.line).toBe(993);
    lines = 1002; // the run printed more
    expect((await w.next())?.line).toBe(1000);
    expect((await w.next())?.line).toBe(6); // none newer: the first
    lines = 1200;
    expect((await w.previous())?.line).toBe(1196); // before the first: the last, as it is now
  });

  it('runs steps asked for at once one after another', async () => {
    const w = new MatchWalker(server(10_000, every7).search, 100, 300);
    await w.start(0);
    const lines = await Promise.all([w.next(), w.next(), w.next()]);
    expect(lines.map((m) => m?.line)).toEqual([13, 20, 27]);
  });
});

describe('the count', () => {
  const count = async (lines: number, hit: (n: number) => boolean): Promise<MatchCount[]> => {
    const reports: MatchCount[] = [];
    await countMatches(server(lines, hit).search, (c) => reports.push(c), () => false);
    return reports;
  };
  const match = (line: number) => ({ line, offset: 10 * (line - 1), time: null, text: '' });

  it('is exact for a log with fewer matches than it counts', async () => {
    const reports = await count(10_000, every7);
    const last = reports[reports.length - 1]!;
    expect(last).toMatchObject({ complete: true, capped: false });
    expect(last.offsets).toHaveLength(1428);
    expect(describeCount(last, match(13)).text).toBe('2/1428');
    expect(describeCount(reports[0]!, null).text).toMatch(/^\d+\+…$/);
  });

  it('says "5000+" past its cap and numbers only the matches it counted', async () => {
    const reports = await count(160_010, every7);
    const last = reports[reports.length - 1]!;
    expect(last).toMatchObject({ complete: false, capped: true });
    expect(last.offsets).toHaveLength(COUNTED_MATCHES);
    expect(describeCount(last, match(6)).text).toBe('1/5000+');
    expect(describeCount(last, match(6 + 7 * 4999)).text).toBe('5000/5000+');
    const past = describeCount(last, match(150_005));
    expect(past.text).toBe('?/5000+');
    expect(past.title).toMatch(/number is not known/);
  });

  it('is not capped at exactly the cap', async () => {
    const reports = await count(COUNTED_MATCHES * 7, every7);
    expect(reports[reports.length - 1]).toMatchObject({ complete: true, capped: false });
    expect(describeCount(reports[reports.length - 1]!, null).text).toBe(String(COUNTED_MATCHES));
  });

  it('says when nothing matches', () => {
    expect(describeCount({ offsets: [], complete: true, capped: false }, null).text).toBe('no matches');
    expect(describeCount({ offsets: [], complete: false, capped: false }, null).text).toBe('searching…');
  });
});
