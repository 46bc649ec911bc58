import { expect, test, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HAVE_CHROMIUM, SCREENSHOT_DIR, SKIP_MESSAGE } from './env';
import { instrument, startRun, termText, viewer } from './helpers';
import { browserSnapshot, emulatorSnapshot } from './terminal';

test.skip(!HAVE_CHROMIUM, SKIP_MESSAGE);
test.describe.configure({ mode: 'serial' });

mkdirSync(SCREENSHOT_DIR, { recursive: true });
const shot = (name: string) => join(SCREENSHOT_DIR, name);

test.beforeEach(async ({ page }) => instrument(page));

/** The viewer's terminal equals a terminal emulator fed the stored bytes. */
async function expectTerminalMatchesStoredLog(page: Page, runId: string, from = 0): Promise<Uint8Array> {
  const res = await page.request.get(`/api/runs/${runId}/logs/raw`);
  expect(res.status()).toBe(200);
  const bytes = new Uint8Array(await res.body());
  // The viewer loads a finished run's lines after it knows the run's end: wait for them.
  await expect(viewer(page)).toHaveAttribute('data-loading', 'no');
  const seen = await browserSnapshot(page);
  // A run recorded at a fixed terminal width is shown at that width.
  const run = (await (await page.request.get(`/api/runs/${runId}`)).json()) as { term_cols?: number | null };
  if (typeof run.term_cols === 'number') expect(seen.cols).toBe(run.term_cols);
  const expected = await emulatorSnapshot(bytes.subarray(from), seen.cols, seen.rows);
  expect(seen.lines).toEqual(expected.lines);
  return bytes;
}

test('before any run: the runs page has a friendly empty state and lists the configs', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Runs' })).toBeVisible();
  await expect(page.getByText('No runs yet')).toBeVisible();
  await expect(page.getByLabel('Config').locator('option')).toHaveText([
    'e2e-big.yaml',
    'e2e-fail.yaml',
    'e2e-ok.yaml',
    'e2e-slow.yaml',
    'e2e-tqdm.yaml',
  ]);
  await page.screenshot({ path: shot('runs-page-empty.png') });
});

test('a live run: history + stream, navigation mid-run, done, reload — the terminal matches the stored bytes', async ({ page }) => {
  const runId = await startRun(page, 'e2e-fail.yaml');

  // Live: the indicator shows and output streams in.
  await expect(page.getByTestId('viewer-live')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Cancel run' })).toBeVisible();
  await expect.poll(() => termText(page)).toContain('split char: loss → ok ✓');
  await expect.poll(() => termText(page)).toContain('epoch 1/2');
  await page.screenshot({ path: shot('run-page-live.png') });

  // Away mid-run: the runs page shows it running; a second run is refused with a clear message.
  await page.getByRole('link', { name: '← All runs' }).click();
  await expect(page).toHaveURL(/\/$/);
  const row = page.locator(`tr[data-run-id="${runId}"]`);
  await expect(row.getByTestId('status-badge')).toHaveAttribute('data-status', 'running');
  await page.getByLabel('Config').selectOption('e2e-ok.yaml');
  await page.getByRole('button', { name: 'Start run' }).click();
  await expect(page.getByTestId('newrun-error')).toContainText('still active');
  await expect(page.getByRole('link', { name: 'Open the active run →' })).toBeVisible();
  await page.screenshot({ path: shot('runs-page-live.png') });
  await page.waitForTimeout(1500); // the run writes more while we're away

  // Back (browser history) to the run page, mid-run: it reloads history then streams.
  await page.goBack();
  await expect(page).toHaveURL(new RegExp(`/runs/${runId}$`));
  await expect(viewer(page)).toHaveAttribute('data-phase', /live|done/);

  // Done: the exit code shows, in the viewer and in the header.
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done', { timeout: 30_000 });
  await expect(page.getByTestId('viewer-exit')).toHaveText('Exited with code 3');
  await expect(page.getByTestId('run-exit-code')).toHaveText('3');
  await expect(page.getByTestId('status-badge').first()).toHaveAttribute('data-status', 'failed');
  await expect(page.getByRole('button', { name: 'Cancel run' })).toHaveCount(0);

  const bytes = await expectTerminalMatchesStoredLog(page, runId);
  const text = await termText(page);
  // Each tqdm bar redrew in place: one line per epoch, showing its final state.
  expect(text.match(/^train: .*$/gm)).toEqual([
    'train: 100%|██████████████████████████████| 20/20 [loss=0.3333]',
    'train: 100%|██████████████████████████████| 20/20 [loss=0.2500]',
  ]);
  expect(text).toContain('split char: loss → ok ✓');
  expect(text).toMatch(/error: exiting with code 3/);
  // ANSI colours reached the DOM renderer.
  await expect(page.locator('.xterm-rows span.xterm-fg-1').first()).toBeVisible(); // red
  await expect(page.locator('.xterm-rows span.xterm-fg-2').first()).toBeVisible(); // green
  // The multi-byte arrow really arrived split across two SSE events in this page.
  const arrowAt = Buffer.from(bytes).indexOf(Buffer.from('→'));
  const ids = await page.evaluate(() => (window as unknown as { __sseIds: number[] }).__sseIds);
  expect(ids).toContain(arrowAt + 1);

  await page.screenshot({ path: shot('run-page-finished.png') });

  // A hard reload of the run page shows the same.
  await page.reload();
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done');
  await expectTerminalMatchesStoredLog(page, runId);

  // Back to the list and forward again with the browser's buttons.
  await page.goBack();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.locator(`tr[data-run-id="${runId}"]`)).toBeVisible();
  await page.goForward();
  await expect(page).toHaveURL(new RegExp(`/runs/${runId}$`));
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done');
  await expectTerminalMatchesStoredLog(page, runId);
});

test('a passing run and a cancelled one; the runs page lists them newest first', async ({ page }) => {
  const okId = await startRun(page, 'e2e-ok.yaml');
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done', { timeout: 30_000 });
  await expect(page.getByTestId('viewer-exit')).toHaveText('Exited with code 0');
  await expectTerminalMatchesStoredLog(page, okId);

  const slowId = await startRun(page, 'e2e-slow.yaml');
  await expect.poll(() => termText(page)).toContain('epoch 1/50');
  // Follow: on by default, off when scrolling up, back on with the button.
  await expect.poll(() => termText(page)).toContain('warmup 0149');
  await expect(viewer(page)).toHaveAttribute('data-follow', 'on');
  await page.locator('.tlv-term').hover();
  await page.mouse.wheel(0, -600);
  await expect(viewer(page)).toHaveAttribute('data-follow', 'off');
  await page.waitForTimeout(600); // output keeps coming; the view must stay put
  const top = await page.evaluate(() => {
    const b = (window as unknown as { __trainlogTerm: { buffer: { active: { viewportY: number; baseY: number } } } }).__trainlogTerm.buffer.active;
    return b.baseY - b.viewportY;
  });
  expect(top).toBeGreaterThan(0);
  await page.getByRole('button', { name: '↓ Follow output' }).click();
  await expect(viewer(page)).toHaveAttribute('data-follow', 'on');

  // A dropped connection: the viewer says so, reconnects by itself and resumes where it was.
  // New stream requests fail for a while; the open one is cut the way a network drop looks
  // to the page (closed, with an error event).
  await page.route('**/api/streams**', (route) => route.abort('connectionreset'));
  await page.evaluate(() => {
    const sources = (window as unknown as { __sseSources: EventSource[] }).__sseSources;
    const es = sources[sources.length - 1]!;
    es.close();
    es.dispatchEvent(new Event('error'));
  });
  await expect(viewer(page)).toHaveAttribute('data-phase', 'reconnecting');
  await expect(viewer(page).getByText('Reconnecting…')).toBeVisible();
  await page.screenshot({ path: shot('run-page-reconnecting.png') });
  await page.waitForTimeout(1500); // the run keeps writing meanwhile; retries fail
  await page.unroute('**/api/streams**');
  await expect(viewer(page)).toHaveAttribute('data-phase', 'live', { timeout: 15_000 });
  const resumedAt = Number(await viewer(page).getAttribute('data-offset'));
  await expect.poll(async () => Number(await viewer(page).getAttribute('data-offset'))).toBeGreaterThan(resumedAt);
  await page.getByRole('button', { name: 'Cancel run' }).click();
  await expect(page.getByTestId('status-badge').first()).toHaveAttribute('data-status', 'cancelled', { timeout: 20_000 });
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done', { timeout: 20_000 });
  await expectTerminalMatchesStoredLog(page, slowId);

  // Search finds text in the log.
  await page.getByLabel('Search log').fill('epoch 1');
  await expect(viewer(page).locator('.tlv-count')).toHaveText(/^\d+\/\d+$/);

  await page.goto('/');
  const rows = page.locator('tr.run-row');
  await expect(rows.nth(0)).toHaveAttribute('data-run-id', slowId);
  await expect(rows.nth(1)).toHaveAttribute('data-run-id', okId);
  await expect(rows.nth(0).getByTestId('status-badge')).toHaveAttribute('data-status', 'cancelled');
  await expect(rows.nth(1).getByTestId('status-badge')).toHaveAttribute('data-status', 'succeeded');
});

test('unknown run and unknown page show friendly states', async ({ page }) => {
  await page.goto('/runs/00000000-0000-0000-0000-000000000000');
  await expect(page.getByText('Run not found')).toBeVisible();
  await page.goto('/nowhere');
  await expect(page.getByText('Page not found')).toBeVisible();
});

/** The viewer's terminal: its size, and each buffer line's text and whether it is a wrap. */
async function termLines(page: Page): Promise<{ cols: number; rows: number; lines: Array<{ text: string; wrapped: boolean }> }> {
  return page.evaluate(() => {
    type Line = { translateToString(trim: boolean): string; isWrapped: boolean };
    const t = (window as unknown as { __trainlogTerm: { cols: number; rows: number; buffer: { active: { length: number; getLine(i: number): Line | undefined } } } }).__trainlogTerm;
    const b = t.buffer.active;
    const lines: Array<{ text: string; wrapped: boolean }> = [];
    for (let i = 0; i < b.length; i++) {
      const l = b.getLine(i);
      if (l) lines.push({ text: l.translateToString(true), wrapped: l.isWrapped });
    }
    return { cols: t.cols, rows: t.rows, lines };
  });
}

test('a real tqdm run under a pty, at 900 px: 120 columns kept, bars on one line, the box scrolls sideways; downloads', async ({ page }) => {
  await page.setViewportSize({ width: 900, height: 720 });
  const id = await startRun(page, 'e2e-tqdm.yaml');
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done', { timeout: 30_000 });
  await expect(page.getByTestId('viewer-exit')).toHaveText('Exited with code 0');
  // The header catches up with the viewer at once.
  await expect(page.getByTestId('status-badge').first()).toHaveAttribute('data-status', 'succeeded', { timeout: 2_000 });
  const run = (await (await page.request.get(`/api/runs/${id}`)).json()) as { pty: boolean; term_cols: number };
  expect(run).toMatchObject({ pty: true, term_cols: 120 });

  // The terminal has the run's 120 columns, not the box's width: each finished bar is one
  // unwrapped 119-column line, as tqdm drew it for a 120-column terminal.
  const term = await termLines(page);
  expect(term.cols).toBe(120);
  expect(term.lines.some((l) => l.wrapped)).toBe(false);
  const bars = term.lines.filter((l) => /^epoch \d: /.test(l.text));
  expect(bars.map((l) => l.text.replace(/\|.*\|/, '|…|').replace(/\[.*\]$/, '[…]'))).toEqual([
    'epoch 1: 100%|…| 40/40 […]',
    'epoch 2: 100%|…| 40/40 […]',
  ]);
  for (const bar of bars) expect(bar.text).toHaveLength(119);
  expect(await termText(page)).toContain('isatty=True');
  await expectTerminalMatchesStoredLog(page, id);

  // The box is narrower than 120 columns: it scrolls sideways, and no row hides under the scrollbar.
  const scroller = page.getByTestId('viewer-scroll');
  const box = await scroller.evaluate((el) => {
    const screen = el.querySelector('.xterm-screen') as HTMLElement;
    return { scrollWidth: el.scrollWidth, clientWidth: el.clientWidth, clientHeight: el.clientHeight, screenHeight: screen.offsetHeight, screenWidth: screen.offsetWidth };
  });
  expect(box.scrollWidth).toBeGreaterThan(box.clientWidth);
  expect(box.screenWidth).toBeGreaterThan(box.clientWidth);
  expect(box.screenHeight).toBeLessThanOrEqual(box.clientHeight);
  // It says so: the run's width in the toolbar, a fade at the edge with more text beyond.
  await expect(page.getByTestId('viewer-cols')).toHaveText('120 cols ↔');
  const body = viewer(page).locator('.tlv-body');
  await expect(body).toHaveClass(/tlv-more-right/);
  await expect(body).not.toHaveClass(/tlv-more-left/);
  await page.screenshot({ path: shot('run-page-pty-narrow.png') });
  await scroller.evaluate((el) => el.scrollTo({ left: el.scrollWidth }));
  await expect.poll(() => scroller.evaluate((el) => el.scrollLeft)).toBeGreaterThan(0);
  await expect(body).toHaveClass(/tlv-more-left/);
  await expect(body).not.toHaveClass(/tlv-more-right/);
  await page.screenshot({ path: shot('run-page-pty-narrow-scrolled.png') });

  // Downloads, from the run page's menu: the raw bytes, and the text a terminal would leave.
  const raw = await page.request.get(`/api/runs/${id}/logs/raw`);
  expect(raw.status()).toBe(200);
  expect(raw.headers()['content-type']).toBe('application/octet-stream');
  const rawBytes = await raw.body();
  expect(rawBytes.includes(Buffer.from('\x1b[32m'))).toBe(true);

  const menu = page.getByTestId('download-menu');
  await menu.getByRole('button', { name: /Download log/ }).click();
  await expect(menu.getByRole('menuitem')).toHaveCount(2);
  await page.screenshot({ path: shot('run-page-download-menu.png') });
  const [rawDl] = await Promise.all([page.waitForEvent('download'), menu.getByRole('menuitem', { name: /Raw log/ }).click()]);
  expect(rawDl.suggestedFilename()).toBe(`trainlog-${id}.log`);
  expect(readFileSync(await rawDl.path()).equals(rawBytes)).toBe(true);
  await expect(menu.getByRole('menuitem')).toHaveCount(0); // the menu closed

  const text = await page.request.get(`/api/runs/${id}/logs/text`);
  expect(text.status()).toBe(200);
  expect(text.headers()['content-type']).toBe('text/plain; charset=utf-8');
  await menu.getByRole('button', { name: /Download log/ }).click();
  const [textDl] = await Promise.all([page.waitForEvent('download'), menu.getByRole('menuitem', { name: /Plain text/ }).click()]);
  expect(textDl.suggestedFilename()).toBe(`trainlog-${id}.txt`);
  const plain = readFileSync(await textDl.path());
  expect(plain.equals(await text.body())).toBe(true);
  expect(plain.includes(0x1b)).toBe(false); // no ESC: colours and escapes stripped
  expect(plain.includes(0x0d)).toBe(false); // no \r: redraws collapsed
  const lines = plain.toString('utf8').split('\n');
  // Each bar once, in its final state (it was redrawn 41 times in the raw log).
  expect(lines.filter((l) => l.startsWith('epoch 1: '))).toHaveLength(1);
  expect(lines.filter((l) => l.startsWith('epoch 2: '))).toHaveLength(1);
  expect(lines.find((l) => l.startsWith('epoch 1: '))).toMatch(/^epoch 1: 100%\|█+\| 40\/40 \[/);
  expect(rawBytes.toString('utf8').split('epoch 1: ').length - 1).toBeGreaterThan(20);
  expect(lines).toContain('training complete');

  // Closed with Escape too; the viewer's toolbar does not repeat the menu (one is enough).
  await menu.getByRole('button', { name: /Download log/ }).click();
  await expect(menu.getByRole('menuitem', { name: /Plain text/ })).toHaveAttribute('href', `/api/runs/${id}/logs/text`);
  await page.keyboard.press('Escape');
  await expect(menu.getByRole('menuitem')).toHaveCount(0);
  await expect(page.getByRole('button', { name: /Download/ })).toHaveCount(1);
});

test('a runner killed with -9: the run becomes lost and the page says so plainly', async ({ page }) => {
  const id = await startRun(page, 'e2e-slow.yaml');
  await expect.poll(() => termText(page)).toContain('epoch 1/50');
  const pid = execFileSync('pgrep', ['-f', `trainlog.runner ${id}`], { encoding: 'utf8' }).trim().split('\n')[0]!;
  expect(Number(pid)).toBeGreaterThan(1);
  process.kill(Number(pid), 'SIGKILL');

  await expect(page.getByTestId('status-badge').first()).toHaveAttribute('data-status', 'lost', { timeout: 40_000 });
  await expect(page.getByTestId('run-notice-lost')).toContainText(
    'The runner died; the log below is everything stored before it stopped.',
  );
  await expect(page.getByTestId('run-notice-lost')).toContainText('the runner stopped reporting');
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done', { timeout: 20_000 });
  await expect(page.getByTestId('viewer-exit')).toHaveText('Runner lost');
  await expect(page.getByTestId('run-exit-code')).toHaveText('—');
  await expect(page.getByRole('button', { name: 'Cancel run' })).toHaveCount(0);
  await expectTerminalMatchesStoredLog(page, id);
  await page.screenshot({ path: shot('run-page-lost.png') });

  // The runs page, every kind of end so far; a lost run's reason is on its badge.
  await page.goto('/');
  const row = page.locator(`tr[data-run-id="${id}"]`);
  await expect(row.getByTestId('status-badge')).toHaveAttribute('data-status', 'lost');
  await expect(row.locator('td').first()).toHaveAttribute('title', /stopped reporting/);
  // This file's five runs (the specs before it delete theirs, or use other servers).
  await expect(page.locator('tr.run-row')).toHaveCount(5);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: shot('runs-page.png') });
});
