import { describe, expect, it } from 'vitest';
import { WriteQueue } from './writeQueue';

const enc = new TextEncoder();
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('WriteQueue', () => {
  it('keeps one write in flight and coalesces what arrives meanwhile', async () => {
    const calls: string[] = [];
    let release: (() => void) | null = null;
    const q = new WriteQueue((data, done) => {
      calls.push(dec(data));
      release = done;
    });
    const p1 = q.push(enc.encode('a'));
    void q.push(enc.encode('b'));
    const p3 = q.push(enc.encode('c'));
    expect(calls).toEqual(['a']);
    release!();
    await p1;
    expect(calls).toEqual(['a', 'bc']);
    release!();
    await p3;
    expect(q.pending).toBe(0);
  });

  it('sheds the oldest queued bytes at a newline when the terminal falls far behind', () => {
    const calls: string[] = [];
    let release: (() => void) | null = null;
    const q = new WriteQueue((data, done) => {
      calls.push(dec(data));
      release = done;
    }, 1000);
    const line = (i: number) => `line ${String(i).padStart(3, '0')}\n`; // 9 bytes
    const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => line(from + i)).join('');
    void q.push(enc.encode('first\n')); // in flight until released
    void q.push(enc.encode(lines(0, 100))); // 900 bytes queued: under the limit
    expect(q.dropped).toBe(0);
    void q.push(enc.encode(lines(100, 120))); // 1080 > 1000: shed down to 500, at a newline
    // 1080 - 500 = 580 falls inside line 64 (bytes 576-584): the cut is after its newline.
    expect(q.dropped).toBe(65 * 9);
    release!();
    const notice = `\r\n\x1b[2m[trainlog: 585 bytes skipped here to keep up; download the log for all of it]\x1b[0m\r\n`;
    expect(calls).toEqual(['first\n', notice + lines(65, 120)]);
  });
});
