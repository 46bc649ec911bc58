import { describe, expect, it } from 'vitest';
import {
  advanceCount,
  appendLive,
  describeView,
  hashFor,
  endOffset,
  heldFromPage,
  join,
  lineBytes,
  lineCount,
  lineHash,
  lineIndexAtRow,
  lineStarts,
  nextLine,
  parseJump,
  parseLineHash,
  rowStarts,
  slice,
  windowAround,
  windowBefore,
  type LinesPage,
} from './lineWindow';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A log of `n` lines `line k\n` (one tqdm-like line with `\r` redraws at k = 3). */
function log(n: number): { bytes: Uint8Array; offsets: number[] } {
  const parts: string[] = [];
  for (let k = 1; k <= n; k++) parts.push(k === 3 ? 'bar 1%\rbar 50%\rbar 100%\n' : `line ${k}\n`);
  const offsets: number[] = [];
  let at = 0;
  for (const p of parts) {
    offsets.push(at);
    at += enc.encode(p).length;
  }
  return { bytes: enc.encode(parts.join('')), offsets };
}

/** What the server answers for lines [start, start+count) of `l`. */
function page(l: ReturnType<typeof log>, start: number, count: number): LinesPage {
  const n = l.offsets.length;
  const end = Math.min(n + 1, start + count);
  const offset = start <= n ? l.offsets[start - 1]! : l.bytes.length;
  const endOffset = end <= n ? l.offsets[end - 1]! : l.bytes.length;
  return {
    start,
    offset,
    endOffset,
    totalLines: n,
    size: l.bytes.length,
    data: l.bytes.subarray(offset, endOffset),
    times: Array.from({ length: Math.max(0, end - start) }, (_, i) => 1000 + start + i),
  };
}

describe('lineStarts', () => {
  it('counts a \\r-redrawn line once and an unterminated last line', () => {
    expect(lineStarts(enc.encode('a\rb\rc\nd\ne'))).toEqual([0, 6, 8]);
    expect(lineStarts(enc.encode('a\n'))).toEqual([0]);
    expect(lineStarts(new Uint8Array(0))).toEqual([]);
  });
});

describe('joining windows', () => {
  const l = log(2500);
  it('windows joined backwards are exactly the stored bytes, each line once', () => {
    let h = heldFromPage(page(l, 1501, 1000));
    while (h.first > 1) {
      const w = windowBefore(h.first);
      const joined = join(heldFromPage(page(l, w.start, w.count)), h);
      expect(joined).not.toBeNull();
      h = joined!;
    }
    expect(h.first).toBe(1);
    expect(lineCount(h)).toBe(2500);
    expect(h.bytes).toEqual(l.bytes);
    expect(dec.decode(lineBytes(h, 3))).toBe('bar 1%\rbar 50%\rbar 100%\n');
    expect(h.times[0]).toBe(1001);
    expect(h.times[2499]).toBe(3500);
  });
  it('refuses a gap or an overlap', () => {
    const a = heldFromPage(page(l, 1, 100));
    expect(join(a, heldFromPage(page(l, 102, 100)))).toBeNull();
    expect(join(a, heldFromPage(page(l, 100, 100)))).toBeNull();
    expect(join(a, heldFromPage(page(l, 101, 100)))?.starts.length).toBe(200);
  });
  it('slices to whole lines with their offsets', () => {
    const h = heldFromPage(page(l, 1, 1000));
    const s = slice(h, 500, 700);
    expect(s.first).toBe(500);
    expect(s.offset).toBe(l.offsets[499]);
    expect(endOffset(s)).toBe(l.offsets[699]);
    expect(nextLine(s)).toBe(700);
    expect(dec.decode(lineBytes(s, 500))).toBe('line 500\n');
    expect(s.times[0]).toBe(1500);
  });
});

describe('live bytes', () => {
  it('finish the unterminated last line before starting new ones', () => {
    let h = heldFromPage({ start: 7, offset: 70, endOffset: 74, totalLines: 7, size: 74, data: enc.encode('ab\nc'), times: [1, 2] });
    expect(lineCount(h)).toBe(2);
    h = appendLive(h, enc.encode('d\ne'));
    expect(lineCount(h)).toBe(3);
    expect(dec.decode(lineBytes(h, 8))).toBe('cd\n');
    expect(h.times).toEqual([1, 2, null]);
    h = appendLive(h, enc.encode('\n'));
    expect(lineCount(h)).toBe(3);
    h = appendLive(h, enc.encode('f'));
    expect(lineCount(h)).toBe(4);
    expect(endOffset(h)).toBe(70 + 'ab\ncd\ne\nf'.length);
  });
  it('counting lines chunk by chunk agrees with counting them at once', () => {
    const text = 'a\nbb\r\rc\n\nd';
    for (let cut = 0; cut <= text.length; cut++) {
      let c = { end: 0, lines: 0, whole: true };
      c = advanceCount(c, enc.encode(text.slice(0, cut)));
      c = advanceCount(c, enc.encode(text.slice(cut)));
      expect(c).toEqual({ end: text.length, lines: lineStarts(enc.encode(text)).length, whole: false });
    }
  });
});

describe('rows to lines', () => {
  it('a wrapped line takes several rows and is one line', () => {
    // line A: 1 row; B: 3 rows; C: 1 row; then the empty screen
    const wrapped = [false, false, true, true, false, false, false];
    const starts = rowStarts(wrapped, 3);
    expect(starts).toEqual([0, 1, 4]);
    expect(lineIndexAtRow(starts, 0)).toBe(0);
    expect(lineIndexAtRow(starts, 2)).toBe(1);
    expect(lineIndexAtRow(starts, 3)).toBe(1);
    expect(lineIndexAtRow(starts, 6)).toBe(2);
  });
});

describe('windows', () => {
  it('a window around a line keeps it inside and within the log', () => {
    expect(windowAround(5, 10_000)).toEqual({ start: 1, count: 1000 });
    expect(windowAround(5000, 10_000)).toEqual({ start: 4500, count: 1000 });
    expect(windowAround(9999, 10_000)).toEqual({ start: 9001, count: 1000 });
    expect(windowBefore(300)).toEqual({ start: 1, count: 299 });
    expect(windowBefore(5001)).toEqual({ start: 4001, count: 1000 });
  });
});

describe('permalinks and the toolbar', () => {
  it('reads #L and #L-L hashes', () => {
    expect(parseLineHash('#L48213')).toEqual({ from: 48213, to: 48213 });
    expect(parseLineHash('#L48230-48213')).toEqual({ from: 48213, to: 48230 });
    expect(parseLineHash('#L5-L9')).toEqual({ from: 5, to: 9 });
    expect(parseLineHash('#L0')).toBeNull();
    expect(parseLineHash('#top')).toBeNull();
    expect(lineHash(4, 4)).toBe('#L4');
    expect(lineHash(4, 9)).toBe('#L4-9');
  });
  it('says where the view is', () => {
    expect(describeView(48100, 48140, 2310552)).toBe('lines 48,100-48,140 of 2,310,552');
  });
  it('reads a line or a time to jump to', () => {
    const start = Date.parse('2026-12-06T22:00:00Z') / 1000;
    expect(parseJump('48,213', start)).toEqual({ line: 48213 });
    expect(parseJump('#L12', start)).toEqual({ line: 12 });
    expect(parseJump('23:10', start)).toEqual({ time: start + 70 * 60 });
    expect(parseJump('01:00', start)).toEqual({ time: start + 3 * 3600 });
    expect(parseJump('2026-12-06T22:00:30Z', start)).toEqual({ time: start + 30 });
    expect(parseJump('2026-12-06 22:00:30', start)).toEqual({ time: start + 30 });
    expect(parseJump('soon', start)).toBeNull();
    expect(parseJump('0', start)).toBeNull();
  });
});

describe('the address bar', () => {
  it('names the highlighted lines as a permalink reads them, and drops a line hash with none', () => {
    expect(hashFor({ from: 48213, to: 48213 }, '#L12')).toBe('#L48213');
    expect(parseLineHash(hashFor({ from: 1, to: 5 }, ''))).toEqual({ from: 1, to: 5 });
    expect(hashFor(null, '#L12-14')).toBe('');
    expect(hashFor(null, '#metrics')).toBe('#metrics');
  });
});
