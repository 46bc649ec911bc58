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
    const q = new WriteQueue((data) => calls.push(dec(data)), 20);
    void q.push(enc.encode('first\n')); // in flight, never completes
    void q.push(enc.encode('old line 1\nold line 2\n'));
    void q.push(enc.encode('new line 3\n'));
    expect(q.dropped).toBeGreaterThan(0);
    expect(q.pending).toBeLessThan(200);
  });
});
