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

  it('never drops bytes however far the terminal falls behind; clear() forgets what is queued', async () => {
    const calls: string[] = [];
    let release: (() => void) | null = null;
    const q = new WriteQueue((data, done) => {
      calls.push(dec(data));
      release = done;
    }, 64);
    void q.push(enc.encode('first\n')); // in flight
    const big = 'x'.repeat(50) + '\n';
    for (let i = 0; i < 1000; i++) void q.push(enc.encode(big));
    expect(q.pending).toBe(1000 * big.length);
    const cleared = q.push(enc.encode('last\n'));
    q.clear();
    await cleared; // a cleared push still resolves
    expect(q.pending).toBe(0);
    const after = q.push(enc.encode('rewrite\n'));
    release!();
    release!();
    await after;
    expect(calls).toEqual(['first\n', 'rewrite\n']);
  });
});
