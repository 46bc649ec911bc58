/**
 * The whole log within reach, in a real Chromium against a real server: a 160,000-line
 * (> 5 MiB) log opened at a permalink, scrolled back across several windows, searched near
 * its first line, its traceback found, its line times shown. Every shown line is checked
 * against the stored bytes. Then the run page's toolbar: one line at common screen sizes, live
 * and finished, and what "the end" means once a run is over. (After trainlog.spec.ts: that one
 * starts from an empty server.)
 */
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HAVE_CHROMIUM, SCREENSHOT_DIR, SKIP_MESSAGE } from './env';
import { instrument, startRun, termText, viewer } from './helpers';
import { browserSnapshot, emulatorSnapshot } from './terminal';

test.skip(!HAVE_CHROMIUM, SKIP_MESSAGE);
test.describe.configure({ mode: 'serial' });

mkdirSync(SCREENSHOT_DIR, { recursive: true });
const shot = (name: string) => join(SCREENSHOT_DIR, name);

test.beforeEach(async ({ page }) => instrument(page));

/** The stored log and where each of its lines starts (lines numbered from 1). */
interface Stored {
  id: string;
  bytes: Uint8Array;
  starts: number[];
}

let big: Stored | null = null;

/** The e2e-big run (started once, finished): > 5 MiB, 160,000 warmup lines, one traceback. */
async function bigRun(page: Page): Promise<Stored> {
  if (big) return big;
  const id = await startRun(page, 'e2e-big.yaml');
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done', { timeout: 60_000 });
  const raw = await page.request.get(`/api/runs/${id}/logs/raw`);
  const bytes = new Uint8Array(await raw.body());
  expect(bytes.length).toBeGreaterThan(5 * 1024 * 1024);
  const starts = [0];
  for (let i = bytes.indexOf(0x0a); i >= 0 && i + 1 < bytes.length; i = bytes.indexOf(0x0a, i + 1)) starts.push(i + 1);
  big = { id, bytes, starts };
  return big;
}

/** Stored line `n`'s bytes. */
function lineOf(s: Stored, n: number): Uint8Array {
  return s.bytes.subarray(s.starts[n - 1]!, n < s.starts.length ? s.starts[n]! : s.bytes.length);
}

/** A stored line as the terminal shows it: escapes gone, no newline (a pty's is \r\n). */
function plain(s: Stored, n: number): string {
  const text = new TextDecoder()
    .decode(lineOf(s, n))
    .replace(/\x1b\[[0-9;]*m/g, '')
    .replace(/\r?\n$/, '');
  return text.slice(text.lastIndexOf('\r') + 1).trimEnd(); // these lines never redraw shorter
}

async function attr(page: Page, name: string): Promise<number> {
  return Number(await viewer(page).getAttribute(name));
}

/** Waits for the viewer to be still: no window loading, the gutter drawn for this scroll. */
async function settled(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const v = document.querySelector<HTMLElement>('[data-testid="training-log-viewer"]');
    const t = (window as unknown as { __trainlogTerm?: { buffer: { active: { viewportY: number } } } }).__trainlogTerm;
    return v?.dataset.loading === 'no' && t !== undefined && v.dataset.viewTop === String(t.buffer.active.viewportY);
  });
}

/**
 * The terminal holds exactly the stored lines [held-first, held-next): a terminal emulator fed
 * those bytes shows the same buffer. So nothing is missing, repeated or changed.
 */
async function expectHeldMatchesStored(page: Page, s: Stored): Promise<void> {
  const first = await attr(page, 'data-held-first');
  const next = await attr(page, 'data-held-next');
  expect(await attr(page, 'data-held-offset')).toBe(s.starts[first - 1]);
  const end = next - 1 < s.starts.length ? s.starts[next - 1]! : s.bytes.length;
  const seen = await browserSnapshot(page);
  const expected = await emulatorSnapshot(s.bytes.subarray(s.starts[first - 1]!, end), seen.cols, seen.rows);
  expect(seen.lines).toEqual(expected.lines);
}

/** The gutter's rows in view: line number and the terminal row's text beside it. */
async function visibleLines(page: Page): Promise<Array<{ line: number; text: string }>> {
  return page.evaluate(() => {
    type Buf = { viewportY: number; getLine(i: number): { translateToString(t: boolean): string } | undefined };
    const t = (window as unknown as { __trainlogTerm: { rows: number; buffer: { active: Buf } } }).__trainlogTerm;
    const b = t.buffer.active;
    const rows = Array.from(document.querySelectorAll<HTMLElement>('[data-testid="viewer-gutter"] .tlv-gutter-row'));
    const out: Array<{ line: number; text: string }> = [];
    rows.forEach((el, i) => {
      const line = el.dataset.line;
      if (line) out.push({ line: Number(line), text: b.getLine(b.viewportY + i)?.translateToString(true) ?? '' });
    });
    return out;
  });
}

test('a permalink into the middle of a > 5 MiB log shows that line, highlighted', async ({ page }) => {
  const s = await bigRun(page);
  await page.goto(`/runs/${s.id}#L80000`);
  await expect(viewer(page)).toHaveAttribute('data-highlight', '80000-80000');
  await settled(page);
  const from = await attr(page, 'data-view-from');
  const to = await attr(page, 'data-view-to');
  expect(from).toBeLessThanOrEqual(80000);
  expect(to).toBeGreaterThanOrEqual(80000);
  await expect(page.getByTestId('viewer-where')).toHaveText(
    `lines ${from.toLocaleString('en-US')}-${to.toLocaleString('en-US')} of ${(s.starts.length).toLocaleString('en-US')}`,
  );
  const row = page.locator('.tlv-gutter-row[data-line="80000"]');
  await expect(row).toHaveClass(/tlv-hl/);
  await expect(row).toBeVisible();
  // The line beside its number is the stored line 80,000.
  const shown = await visibleLines(page);
  expect(shown.find((r) => r.line === 80000)?.text).toBe(plain(s, 80000));
  for (const r of shown) expect(r.text).toBe(plain(s, r.line));
  await expectHeldMatchesStored(page, s);
  // The highlight is drawn in the terminal too (an xterm decoration).
  await expect(page.locator('.xterm-decoration-container .xterm-decoration').first()).toBeVisible();
  await page.screenshot({ path: shot('whole-log-permalink.png') });

  // A range, by changing the hash: in view and highlighted.
  await page.evaluate(() => (window.location.hash = '#L150000-150004'));
  await expect(viewer(page)).toHaveAttribute('data-highlight', '150000-150004');
  await settled(page);
  for (let n = 150000; n <= 150004; n++) await expect(page.locator(`.tlv-gutter-row[data-line="${n}"]`)).toHaveClass(/tlv-hl/);
  await expectHeldMatchesStored(page, s);
});

test('scrolling up across several windows: consecutive lines, no gap, no repeat, as stored', async ({ page }) => {
  test.setTimeout(300_000); // a few minutes when the machine is busy
  const s = await bigRun(page);
  await page.goto(`/runs/${s.id}#L3200`);
  await expect(viewer(page)).toHaveAttribute('data-highlight', '3200-3200');
  await settled(page);
  // Scroll up a screen at a time (as the scrollbar or keys do: xterm's wheel moves 3 rows a
  // notch, too slow for a test) until line 1 is in view: window boundaries at 2700, 1700, 700.
  // In the page, one round trip: each view's lines, how far the terminal scrolled to reach it
  // (a screen, or less at the top of what is held), and the whole buffer at each seam.
  const trip = await page.evaluate(async () => {
    type Line = { translateToString(t: boolean): string };
    const t = (window as unknown as {
      __trainlogTerm: { rows: number; scrollLines(n: number): void; buffer: { active: { viewportY: number; length: number; getLine(i: number): Line | undefined } } };
    }).__trainlogTerm;
    const b = () => t.buffer.active;
    const v = document.querySelector<HTMLElement>('[data-testid="training-log-viewer"]')!;
    const still = () =>
      new Promise<void>((resolve) => {
        const check = () =>
          v.dataset.loading === 'no' &&
          v.dataset.viewTop === String(b().viewportY) &&
          v.querySelectorAll('.tlv-gutter-row').length === t.rows // the gutter drawn for this height
            ? resolve()
            : requestAnimationFrame(check);
        requestAnimationFrame(check);
      });
    const shown = () => {
      const rows = Array.from(v.querySelectorAll<HTMLElement>('[data-testid="viewer-gutter"] .tlv-gutter-row'));
      const view: Array<{ line: number; text: string }> = [];
      rows.forEach((el, k) => {
        if (el.dataset.line) view.push({ line: Number(el.dataset.line), text: b().getLine(b().viewportY + k)?.translateToString(true) ?? '' });
      });
      return view;
    };
    const views: Array<{ moved: number; screen: number; rows: number; lines: Array<{ line: number; text: string }> }> = [
      { moved: 0, screen: t.rows, rows: t.rows, lines: shown() },
    ];
    const seams: Array<{ first: number; next: number; texts: string[] }> = [];
    let held = v.dataset.heldFirst;
    for (let i = 0; i < 400; i++) {
      // A whole screen: the next view should end on the line just above this one's first.
      const before = b().viewportY;
      const screen = t.rows;
      t.scrollLines(-screen);
      const moved = before - b().viewportY;
      // Then the viewer sees the top of what it holds, joins the window before on and
      // rewrites the terminal: the view must stay on the same lines through that.
      await still();
      const view = shown();
      views.push({ moved, screen, rows: t.rows, lines: view });
      if (v.dataset.heldFirst !== held) {
        held = v.dataset.heldFirst;
        const texts: string[] = [];
        for (let r = 0; r < b().length; r++) texts.push(b().getLine(r)?.translateToString(true) ?? '');
        seams.push({ first: Number(v.dataset.heldFirst), next: Number(v.dataset.heldNext), texts });
      }
      if (view[0]?.line === 1) break;
    }
    return { views, seams };
  });
  // This log's lines are shorter than the terminal: one row each, so a view is `rows` lines
  // (the page around the viewer may resize it meanwhile: the line at the top stays).
  let prev = trip.views[0]!.lines;
  for (const { moved, screen, rows, lines: now } of trip.views.slice(1)) {
    // Each view is consecutive lines, each the stored one.
    expect(now).toHaveLength(rows);
    now.forEach((r, k) => {
      if (k > 0) expect(r.line).toBe(now[k - 1]!.line + 1);
      expect(r.text).toBe(plain(s, r.line));
    });
    // And it is where the scroll took it, window joined on or not: a whole screen up, its
    // last line just before the last view's first (they meet: no gap, no line twice); less
    // at the top of the held lines, overlapping the last view by what was not scrolled.
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThanOrEqual(screen);
    expect(now[0]!.line, `a view after scrolling ${moved} rows up from line ${prev[0]!.line}`).toBe(prev[0]!.line - moved);
    if (moved === rows && screen === rows) expect(now[now.length - 1]!.line + 1).toBe(prev[0]!.line);
    prev = now;
  }
  const top = prev[0]!.line;
  // At each seam (a window joined on), the terminal held exactly the stored lines: none
  // missing, none repeated.
  for (const seam of trip.seams) {
    const want: string[] = [];
    for (let n = seam.first; n < seam.next; n++) want.push(plain(s, n));
    expect(seam.texts.slice(0, want.length)).toEqual(want);
  }
  const firstHeld = new Set(trip.seams.map((x) => x.first));
  expect(top).toBe(1);
  expect(firstHeld.size).toBeGreaterThanOrEqual(3); // three windows were joined on the way
  // The wheel at the very top (no scroll event there) changes nothing and breaks nothing.
  const box = (await page.getByTestId('viewer-scroll').boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.wheel(0, -300);
  await settled(page);
  expect(await attr(page, 'data-view-from')).toBe(1);
  await expectHeldMatchesStored(page, s);
  // The browser holds a few windows, never the whole log.
  expect((await attr(page, 'data-held-next')) - (await attr(page, 'data-held-first'))).toBeLessThanOrEqual(3000);
  await page.screenshot({ path: shot('whole-log-line-1.png') });
  // Where the last window joined on (line 700 starts the one loaded before it): one view
  // across the seam, every line the stored one.
  await page.evaluate(() => {
    const t = (window as unknown as { __trainlogTerm: { scrollLines(n: number): void; buffer: { active: { viewportY: number } } } }).__trainlogTerm;
    t.scrollLines(694 - t.buffer.active.viewportY);
  });
  await settled(page);
  expect(await attr(page, 'data-view-from')).toBe(695);
  const seamView = await visibleLines(page);
  expect(seamView.some((r) => r.line === 700)).toBe(true);
  for (const r of seamView) expect(r.text).toBe(plain(s, r.line));
  await page.screenshot({ path: shot('whole-log-seam.png') });

  // The end: the last window.
  await viewer(page).getByRole('button', { name: 'Go to the last line' }).click();
  await settled(page);
  await expect(viewer(page)).toHaveAttribute('data-view-to', String(s.starts.length));
  for (const r of await visibleLines(page)) expect(r.text).toBe(plain(s, r.line));
});

test('whole-log search finds a line near line 1 of a > 5 MiB log and highlights it; next error finds the traceback', async ({ page }) => {
  const s = await bigRun(page);
  await page.goto(`/runs/${s.id}`);
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done');
  await settled(page);
  // The view opens at the end, 160,000 lines below the match.
  expect(await attr(page, 'data-view-to')).toBe(s.starts.length);
  await page.getByLabel('Search log').fill('warmup 0007 data');
  await expect(page.getByTestId('viewer-search-count')).toHaveText('1/1');
  // "warmup 0007" is preamble line 7: log line 10 (after the two header lines; 0-based).
  expect(plain(s, 10)).toContain('warmup 0007 data');
  await expect(viewer(page)).toHaveAttribute('data-highlight', '10-10');
  await settled(page);
  const row = page.locator('.tlv-gutter-row[data-line="10"]');
  await expect(row).toHaveClass(/tlv-hl/);
  await expect(row).toBeVisible();
  expect((await visibleLines(page)).find((r) => r.line === 10)?.text).toBe(plain(s, 10));
  await expectHeldMatchesStored(page, s);
  await page.screenshot({ path: shot('whole-log-search-near-line-1.png') });

  // Next error: the traceback's first line, 120,000 lines further.
  const tb = s.starts.findIndex((_, i) => plain(s, i + 1).startsWith('Traceback (most recent call last):')) + 1;
  expect(tb).toBeGreaterThan(100_000);
  await page.getByTestId('viewer-next-error').click();
  await expect(viewer(page)).toHaveAttribute('data-highlight', `${tb}-${tb}`);
  await settled(page);
  expect((await visibleLines(page)).find((r) => r.line === tb)?.text).toBe('Traceback (most recent call last):');
});

test('search starts from the view and walks every match, past the first 5,000, wrapping both ways', async ({ page }) => {
  test.setTimeout(120_000);
  const s = await bigRun(page);
  // "data shard 3": every 7th warmup line, about 22,900 of them (lines 6, 13, ...).
  const hits: number[] = [];
  for (let n = 1; n <= s.starts.length; n++) if (plain(s, n).includes('shard 3')) hits.push(n);
  expect(hits.length).toBeGreaterThan(20_000);
  // Near the end of the log: far past the first 5,000 matches.
  await page.goto(`/runs/${s.id}#L159950`);
  await expect(viewer(page)).toHaveAttribute('data-highlight', '159950-159950');
  await settled(page);
  const from = await attr(page, 'data-view-from');
  let k = hits.findIndex((n) => n >= from);
  expect(k).toBeGreaterThan(5000);
  const count = page.getByTestId('viewer-search-count');
  const search = page.getByLabel('Search log');
  await search.fill('shard 3');
  // The first match at or after the top of the view, not the log's first (line 6).
  await expect(viewer(page)).toHaveAttribute('data-highlight', `${hits[k]}-${hits[k]}`);
  // Counted up to 5,000: this one is past them, and the count says so.
  await expect(count).toHaveText('?/5000+');
  await settled(page);
  expect((await visibleLines(page)).find((r) => r.line === hits[k])?.text).toBe(plain(s, hits[k]!));
  await page.screenshot({ path: shot('whole-log-search-from-view.png') });
  // Enter to the log's last match, then on: the first.
  for (k++; k < hits.length; k++) {
    await search.press('Enter');
    await expect(viewer(page)).toHaveAttribute('data-highlight', `${hits[k]}-${hits[k]}`);
  }
  await search.press('Enter');
  await expect(viewer(page)).toHaveAttribute('data-highlight', `${hits[0]}-${hits[0]}`);
  await expect(count).toHaveText('1/5000+');
  // Back from the first: the last again (found by reading on to the end), then the one before.
  await search.press('Shift+Enter');
  const last = hits[hits.length - 1]!;
  await expect(viewer(page)).toHaveAttribute('data-highlight', `${last}-${last}`);
  await page.getByRole('button', { name: 'Previous match' }).click();
  const before = hits[hits.length - 2]!;
  await expect(viewer(page)).toHaveAttribute('data-highlight', `${before}-${before}`);
  await settled(page);
  expect((await visibleLines(page)).find((r) => r.line === before)?.text).toBe(plain(s, before));
});

test('the address bar names the line shown: a search hit, next error, a jump; none at the end', async ({ page }) => {
  const s = await bigRun(page);
  await page.goto(`/runs/${s.id}#L500`);
  await expect(viewer(page)).toHaveAttribute('data-highlight', '500-500');
  const hash = () => new URL(page.url()).hash;
  const entries = await page.evaluate(() => window.history.length);
  await page.getByLabel('Search log').fill('warmup 0007 data');
  await expect(viewer(page)).toHaveAttribute('data-highlight', '10-10');
  expect(hash()).toBe('#L10');
  await page.getByTestId('viewer-next-error').click();
  await expect(viewer(page)).toHaveAttribute('data-highlight', /^1[0-9]{5}-/);
  const tb = (await viewer(page).getAttribute('data-highlight'))!.split('-')[0];
  expect(hash()).toBe(`#L${tb}`);
  const jump = page.getByLabel('Go to line or time');
  await jump.fill('12');
  await jump.press('Enter');
  await expect(viewer(page)).toHaveAttribute('data-highlight', '12-12');
  expect(hash()).toBe('#L12');
  // Replaced, not added: Back still leaves the page.
  expect(await page.evaluate(() => window.history.length)).toBe(entries);
  // The copied address opens there, as any permalink does.
  await page.reload();
  await expect(viewer(page)).toHaveAttribute('data-highlight', '12-12');
  await settled(page);
  await expect(page.locator('.tlv-gutter-row[data-line="12"]')).toHaveClass(/tlv-hl/);
  // At the end nothing is highlighted: no line in the address either.
  await viewer(page).getByRole('button', { name: 'Go to the last line' }).click();
  await expect(viewer(page)).toHaveAttribute('data-highlight', '');
  expect(hash()).toBe('');
});

test('the timestamp gutter shows the times the API has for each line', async ({ page }) => {
  const s = await bigRun(page);
  await page.goto(`/runs/${s.id}#L120000`);
  await settled(page);
  await expect(viewer(page)).toHaveAttribute('data-highlight', '120000-120000');
  await page.getByTestId('viewer-times').click(); // UTC clock times
  await expect(page.getByTestId('viewer-times')).toHaveText('Times: UTC');
  const rows = page.locator('.tlv-gutter-row[data-line]');
  await expect(rows.first().locator('.tlv-time')).not.toHaveText('');
  const shown = await rows.evaluateAll((els) =>
    els.map((el) => ({
      line: Number((el as HTMLElement).dataset.line),
      time: (el as HTMLElement).dataset.time ?? '',
      text: el.querySelector('.tlv-time')?.textContent ?? '',
    })),
  );
  const from = shown[0]!.line;
  const api = (await (await page.request.get(`/api/runs/${s.id}/logs/lines?start=${from}&count=${shown.length}`)).json()) as {
    start: number;
    times: Array<number | null>;
  };
  expect(api.start).toBe(from);
  for (const r of shown) {
    const t = api.times[r.line - from];
    expect(typeof t).toBe('number');
    expect(Number(r.time)).toBe(t);
    expect(r.text).toBe(new Date(t! * 1000).toISOString().slice(11, 23));
  }
  await page.screenshot({ path: shot('whole-log-times.png') });
  // Remembered across visits.
  await page.reload();
  await expect(page.getByTestId('viewer-times')).toHaveText('Times: UTC');
  await page.getByTestId('viewer-times').click();
  await page.getByTestId('viewer-times').click(); // back to off, for the next visit
  await expect(page.getByTestId('viewer-times')).toHaveText('Times');
});

test('a finished run has nothing to follow: no Follow control, the end is a jump', async ({ page }) => {
  const s = await bigRun(page);
  await page.goto(`/runs/${s.id}#L500`);
  await expect(viewer(page)).toHaveAttribute('data-highlight', '500-500');
  await settled(page);
  // Away from the end of a log that will not grow: nothing offers to follow it.
  await expect(viewer(page).getByRole('button', { name: /follow/i })).toHaveCount(0);
  await viewer(page).getByRole('button', { name: 'Go to the last line' }).click();
  await settled(page);
  await expect(viewer(page)).toHaveAttribute('data-view-to', String(s.starts.length));
  await expect(viewer(page).getByRole('button', { name: /follow/i })).toHaveCount(0);
});

test('a jump the viewer cannot read says so until its text changes or the reader goes elsewhere', async ({ page }) => {
  const s = await bigRun(page);
  await page.goto(`/runs/${s.id}`);
  await settled(page);
  const jump = page.getByLabel('Go to line or time');
  const notice = page.getByTestId('viewer-nav-notice');
  await jump.fill('abc');
  await jump.press('Enter');
  await expect(notice).toHaveText(/^Type a line number/);
  await jump.fill('12');
  await expect(notice).toHaveCount(0);
  await jump.press('Enter');
  await expect(viewer(page)).toHaveAttribute('data-highlight', '12-12');
  await jump.fill('tomorrow');
  await jump.press('Enter');
  await expect(notice).toHaveText(/^Type a line number/);
  await page.getByTestId('viewer-next-error').click();
  await expect(viewer(page)).not.toHaveAttribute('data-highlight', '12-12');
  await expect(notice).toHaveCount(0);
});

/** The toolbar's items below its first row or sticking out of it (none when it fits). */
async function offToolbarRow(page: Page): Promise<string[]> {
  return viewer(page)
    .locator('.tlv-toolbar')
    .evaluate((bar) => {
      const box = bar.getBoundingClientRect();
      const items = Array.from(bar.children)
        .map((el) => ({ el, r: el.getBoundingClientRect() }))
        .filter(({ r }) => r.width > 0 && r.height > 0);
      const firstRowBottom = Math.min(...items.map(({ r }) => r.bottom));
      return items
        .filter(({ r }) => r.top >= firstRowBottom || r.left < box.left || r.right > box.right)
        .map(({ el }) => el.textContent || el.className);
    });
}

/** The accessible names met tabbing from the jump box, one per control. */
async function tabWalk(page: Page, steps: number): Promise<string[]> {
  await page.getByLabel('Go to line or time').focus();
  const names: string[] = [];
  for (let i = 0; i < steps; i++) {
    names.push(
      await page.evaluate(() => {
        const el = document.activeElement as HTMLElement;
        return el.getAttribute('aria-label') ?? el.textContent ?? '';
      }),
    );
    await page.keyboard.press('Tab');
  }
  return names;
}

/** The toolbar at both sizes: one row, every control in it; a screenshot of each. */
async function toolbarFits(page: Page, name: string, end: RegExp): Promise<void> {
  for (const [width, height] of [
    [1280, 800],
    [1920, 1080],
  ] as const) {
    await page.setViewportSize({ width, height });
    await expect.poll(() => offToolbarRow(page), `the toolbar at ${width}x${height}`).toEqual([]);
    await page.screenshot({ path: shot(`run-page-toolbar-${name}-${width}.png`) });
  }
  const controls = [/^Go to line or time$/, /^Go to the first line$/, end, /^Search log$/, /^Regular expression$/, /^Match case$/];
  const rest = [/^Previous match$/, /^Next match$/, /^Next error$/, /^Times/];
  const names = await tabWalk(page, controls.length + rest.length);
  [...controls, ...rest].forEach((want, i) => expect(names[i]).toMatch(want));
}

test('the toolbar fits one line at 1280x800 and 1920x1080, live and finished, every control reachable by keyboard; a run that ends while open trades Follow for a jump', async ({ page }) => {
  test.setTimeout(180_000);
  const s = await bigRun(page);
  await startRun(page, 'e2e-slow.yaml');
  await expect(page.getByTestId('viewer-live')).toBeVisible();
  await expect.poll(() => termText(page)).toContain('epoch 1/50');
  // At its widest: line times since the start, a search and its count, following.
  await page.getByTestId('viewer-times').click();
  await page.getByTestId('viewer-times').click();
  await expect(page.getByTestId('viewer-times')).toHaveText(/\+run/);
  await page.getByLabel('Search log').fill('data shard');
  await expect(page.getByTestId('viewer-search-count')).toHaveText(/^\d+\/150$/);
  const toolbar = viewer(page).locator('.tlv-toolbar');
  await toolbar.getByRole('button', { name: 'Follow', exact: true }).click();
  await expect(toolbar.getByRole('button', { name: 'Following', exact: true })).toBeVisible();
  await toolbarFits(page, 'live', /^Following$/);

  // Scrolled up, then the run ends while the page is open: nothing is left to follow.
  await page.locator('.tlv-term').hover();
  await page.mouse.wheel(0, -600);
  await expect(viewer(page)).toHaveAttribute('data-follow', 'off');
  await expect(page.getByRole('button', { name: '↓ Follow output' })).toBeVisible();
  // At 1280x800 the log has most of the window, under the run's header: its end and the
  // Follow button are in view without scrolling the page (the metrics are below it).
  await page.setViewportSize({ width: 1280, height: 800 });
  await expect(page.getByRole('button', { name: '↓ Follow output' })).toBeInViewport({ ratio: 1 });
  const box = (await viewer(page).boundingBox())!;
  expect(box.y + box.height).toBeLessThanOrEqual(800);
  expect(box.height).toBeGreaterThanOrEqual(450);
  expect(await page.evaluate(() => window.scrollY)).toBe(0);
  await page.screenshot({ path: shot('run-page-1280x800-live.png') });
  await page.getByRole('button', { name: 'Cancel run' }).click();
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done', { timeout: 20_000 });
  await expect(viewer(page).getByRole('button', { name: /follow/i })).toHaveCount(0);
  await viewer(page).getByRole('button', { name: 'Go to the last line' }).click();
  await expect.poll(async () => (await attr(page, 'data-view-to')) === (await attr(page, 'data-total'))).toBe(true);
  await toolbarFits(page, 'cancelled', /^Go to the last line$/);

  // The > 5 MiB log: six-digit line numbers.
  await page.goto(`/runs/${s.id}`);
  await settled(page);
  await page.getByLabel('Search log').fill('warmup 0007 data');
  await expect(page.getByTestId('viewer-search-count')).toHaveText('1/1');
  await toolbarFits(page, 'finished', /^Go to the last line$/);
});
