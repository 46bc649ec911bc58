/** Reading a terminal's buffer, the same way in the browser and in node (@xterm/headless). */
import headless from '@xterm/headless';
import type { Page } from '@playwright/test';

export interface Snapshot {
  cols: number;
  rows: number;
  /** One entry per buffer line: its text, then its colour/bold runs. Trailing blanks dropped. */
  lines: string[];
}

/**
 * The buffer as comparable strings. Runs in the page too (serialized by Playwright), so it
 * must be self-contained: no closures over module scope.
 */
export function snapshotOf(term: {
  cols: number;
  rows: number;
  buffer: { active: { length: number; getLine(i: number): any } };
}): Snapshot {
  const b = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < b.length; i++) {
    const line = b.getLine(i);
    if (!line) continue;
    const text = line.translateToString(true);
    const runs: string[] = [];
    let last = '';
    const cell = line.getCell(0);
    for (let x = 0; x < term.cols; x++) {
      const c = line.getCell(x, cell);
      if (!c) break;
      const attr = `${c.getFgColorMode()}:${c.getFgColor()}:${c.isBold() ? 'b' : ''}`;
      if (attr !== last && c.getChars() !== '') {
        runs.push(`${x}=${attr}`);
        last = attr;
      }
    }
    lines.push(`${text}  ⟦${runs.join(' ')}⟧${line.isWrapped ? ' (wrapped)' : ''}`);
  }
  while (lines.length && lines[lines.length - 1] === '  ⟦⟧') lines.pop();
  return { cols: term.cols, rows: term.rows, lines };
}

/** What the viewer's terminal shows. */
export async function browserSnapshot(page: Page): Promise<Snapshot> {
  return page.evaluate(`(${snapshotOf.toString()})(window.__trainlogTerm)`) as Promise<Snapshot>;
}

/** What a terminal emulator with the viewer's options computes from the stored bytes. */
export async function emulatorSnapshot(bytes: Uint8Array, cols: number, rows: number): Promise<Snapshot> {
  const term = new headless.Terminal({ cols, rows, convertEol: true, scrollback: 20_000, allowProposedApi: true });
  await new Promise<void>((r) => term.write(bytes, r));
  const snap = snapshotOf(term);
  term.dispose();
  return snap;
}
