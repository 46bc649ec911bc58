import { expect, test, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HAVE_CHROMIUM, SCREENSHOT_DIR, SKIP_MESSAGE } from './env';
import { browserSnapshot, emulatorSnapshot } from './terminal';

test.skip(!HAVE_CHROMIUM, SKIP_MESSAGE);
test.describe.configure({ mode: 'serial' });

mkdirSync(SCREENSHOT_DIR, { recursive: true });
const shot = (name: string) => join(SCREENSHOT_DIR, name);

test.beforeEach(async ({ page }) => {
  await page.addInitScript(() => {
    const w = window as unknown as Record<string, unknown>;
    w.__TRAINLOG_EXPOSE_TERM__ = true;
    // Record the SSE log events' ids, to prove chunk boundaries the test cares about happened.
    const Native = window.EventSource;
    const seen: number[] = [];
    const sources: EventSource[] = [];
    w.__sseIds = seen;
    w.__sseSources = sources;
    class Recording extends Native {
      constructor(url: string | URL, init?: EventSourceInit) {
        super(url, init);
        sources.push(this);
        this.addEventListener('log', (ev) => seen.push(Number((ev as MessageEvent).lastEventId)));
      }
    }
    window.EventSource = Recording;
  });
});

const viewer = (page: Page) => page.getByTestId('training-log-viewer');

async function startRun(page: Page, config: string): Promise<string> {
  await page.goto('/');
  await page.getByLabel('Config').selectOption(config);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/runs') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Start run' }).click(),
  ]);
  expect(res.status(), await res.text()).toBe(201);
  const run = (await res.json()) as { id: string; config: string };
  expect(run.config).toBe(config);
  await page.waitForURL(new RegExp(`/runs/${run.id}$`));
  return run.id;
}

async function termText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const t = (window as unknown as { __trainlogTerm?: { buffer: { active: { length: number; getLine(i: number): { translateToString(trim: boolean): string } | undefined } } } }).__trainlogTerm;
    if (!t) return '';
    const b = t.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? '');
    return out.join('\n');
  });
}

/** The viewer's terminal equals a terminal emulator fed the stored bytes. */
async function expectTerminalMatchesStoredLog(page: Page, runId: string, from = 0): Promise<Uint8Array> {
  const res = await page.request.get(`/api/runs/${runId}/logs/raw`);
  expect(res.status()).toBe(200);
  const bytes = new Uint8Array(await res.body());
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
  await expect(page.getByLabel('Config').locator('option')).toHaveText(['e2e-big.yaml', 'e2e-fail.yaml', 'e2e-ok.yaml', 'e2e-slow.yaml']);
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
  await page.route('**/logs/stream**', (route) => route.abort('connectionreset'));
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
  await page.unroute('**/logs/stream**');
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
  await page.screenshot({ path: shot('runs-page.png') });
});

test('a log over 5 MiB: only its tail is loaded, and the viewer says so', async ({ page }) => {
  const id = await startRun(page, 'e2e-big.yaml');
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done', { timeout: 30_000 });
  // Open it afresh now that it is big: history is the tail only.
  await page.reload();
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done');
  const notice = page.getByTestId('viewer-tail-notice');
  await expect(notice).toContainText('showing its last');
  await expect(notice.getByRole('link', { name: 'Download the full log' })).toHaveAttribute('href', `/api/runs/${id}/logs/raw`);
  const from = Number(await viewer(page).getAttribute('data-shown-from'));
  const size = Number(await viewer(page).getAttribute('data-offset'));
  expect(size).toBeGreaterThan(5 * 1024 * 1024);
  expect(from).toBeGreaterThan(size - 1024 * 1024 - 1);
  await expectTerminalMatchesStoredLog(page, id, from);
  expect(await termText(page)).toContain('training complete');
  await page.screenshot({ path: shot('run-page-big-log-tail.png') });
});

test('unknown run and unknown page show friendly states', async ({ page }) => {
  await page.goto('/runs/00000000-0000-0000-0000-000000000000');
  await expect(page.getByText('Run not found')).toBeVisible();
  await page.goto('/nowhere');
  await expect(page.getByText('Page not found')).toBeVisible();
});
