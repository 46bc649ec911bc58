/**
 * The navigator on a real terminal emulator (@xterm/headless, the same parser as the browser's)
 * with the server's `/logs/lines` answered from an in-memory log (no server in a unit test;
 * the e2e tests run the real one). Floods: nothing dropped, the terminal shows the live end.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import headless from '@xterm/headless';
import type { Terminal } from '@xterm/xterm';
import { LogNavigator } from './logNavigator';
import { HELD_LINES, WINDOW_LINES, lineStarts } from './lineWindow';

const enc = new TextEncoder();

/** `/logs/lines` over `log()` (read at call time: the log grows). */
function linesServer(log: () => Uint8Array): typeof fetch {
  return (async (input: RequestInfo | URL) => {
    const url = new URL(String(input), 'http://x');
    const bytes = log();
    const starts = lineStarts(bytes);
    const count = Number(url.searchParams.get('count') ?? 1000);
    let start: number;
    if (url.searchParams.has('offset')) {
      const off = Number(url.searchParams.get('offset'));
      start = starts.filter((s) => s <= off).length || 1;
    } else start = Number(url.searchParams.get('start') ?? 1);
    const from = start <= starts.length ? starts[start - 1]! : bytes.length;
    const endLine = start + count;
    const to = endLine <= starts.length ? starts[endLine - 1]! : bytes.length;
    const n = Math.max(0, Math.min(count, starts.length - start + 1));
    const body = {
      start,
      offset: from,
      end_offset: to,
      total_lines: starts.length,
      size: bytes.length,
      data: Buffer.from(bytes.subarray(from, to)).toString('base64'),
      times: Array.from({ length: n }, () => 1.5),
    };
    return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
  }) as typeof fetch;
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('LogNavigator on a terminal', () => {
  let term: headless.Terminal;
  beforeEach(() => {
    globalThis.requestAnimationFrame ??= ((cb: FrameRequestCallback) => setTimeout(() => cb(0), 0) as unknown as number);
    globalThis.cancelAnimationFrame ??= ((h: number) => clearTimeout(h)) as typeof cancelAnimationFrame;
    term = new headless.Terminal({ cols: 80, rows: 10, scrollback: 50_000, convertEol: true, allowProposedApi: true });
  });
  afterEach(() => term.dispose());

  it('a flood faster than the terminal: no byte dropped, the terminal shows the live end, memory bounded', async () => {
    let log = new Uint8Array(0);
    const nav = new LogNavigator(term as unknown as Terminal, '/api', 'r', () => undefined, linesServer(() => log));
    nav.begin(0, null);
    const chunkOf = (c: number) => {
      let chunk = '';
      for (let i = 0; i < 100; i++) chunk += `line ${c * 100 + i + 1} ${'x'.repeat(60)}\n`;
      return enc.encode(chunk);
    };
    // The view opens on the live end and follows it...
    log = chunkOf(0);
    nav.pushLive(log);
    for (let i = 0; i < 400 && nav.view().to !== 100; i++) await tick();
    expect(nav.view()).toMatchObject({ to: 100, following: true });
    // ...then 29,900 more lines in 299 chunks, pushed without waiting for the terminal.
    for (let c = 1; c < 300; c++) {
      const bytes = chunkOf(c);
      log = Buffer.concat([log, bytes]);
      nav.pushLive(bytes);
    }
    for (let i = 0; i < 400 && nav.view().to !== 30_000; i++) await tick();
    const v = nav.view();
    expect({ ...v, rows: [] }).toMatchObject({ total: 30_000, to: 30_000, following: true });
    expect(v.heldNext - v.heldFirst).toBeLessThanOrEqual(HELD_LINES + WINDOW_LINES);
    // The terminal is exactly the held lines, the log's last ones, in order: none missing.
    const b = term.buffer.active;
    const last = b.baseY + b.cursorY - 1;
    expect(last + 1).toBe(v.heldNext - v.heldFirst);
    for (let r = 0; r <= last; r++) expect(b.getLine(r)?.translateToString(true)).toBe(`line ${v.heldFirst + r} ${'x'.repeat(60)}`);
    expect(v.heldNext).toBe(30_001);
    // What the terminal skipped is reachable: scrolling up to the top loads it, line by line.
    const before = v.heldFirst;
    await nav.loadEarlier();
    for (let i = 0; i < 100 && nav.view().loading; i++) await tick();
    expect(nav.view().error).toBeNull();
    expect(nav.view().heldFirst).toBe(Math.max(1, before - WINDOW_LINES));
    const top = nav.view().heldFirst;
    expect(term.buffer.active.getLine(0)?.translateToString(true)).toBe(`line ${top} ${'x'.repeat(60)}`);
    nav.dispose();
  }, 60_000);
});
