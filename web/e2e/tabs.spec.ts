/**
 * Ten live runs in ten tabs of one browser: every terminal advances, and the runs page and a
 * finished run's page still load meanwhile. A browser opens six HTTP/1.1 connections per
 * host; with a stream per tab the seventh tab stayed empty and every other page hung.
 */
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HAVE_CHROMIUM, SCREENSHOT_DIR, SKIP_MESSAGE, e2eAuthPort, e2eTabsPort, e2eToken } from './env';
import { instrument, termText, viewer } from './helpers';

test.skip(!HAVE_CHROMIUM, SKIP_MESSAGE);
mkdirSync(SCREENSHOT_DIR, { recursive: true });

const base = `http://127.0.0.1:${e2eTabsPort()}`;
const TABS = 10;

async function startRun(page: Page, config: string, on = base): Promise<string> {
  const res = await page.request.post(`${on}/api/runs`, { data: { config } });
  expect(res.status(), await res.text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const offsetOf = async (page: Page) => Number(await viewer(page).getAttribute('data-offset'));

test('ten live runs in ten tabs all advance, and other pages still load at once', async ({ page, context }) => {
  test.setTimeout(420_000);
  // A finished run, to open while the ten are live.
  const finished = await startRun(page, 'e2e-quick.yaml');
  await expect
    .poll(async () => ((await (await page.request.get(`${base}/api/runs/${finished}`)).json()) as { status: string }).status, { timeout: 30_000 })
    .toBe('succeeded');

  const runs = await Promise.all(Array.from({ length: TABS }, () => startRun(page, 'e2e-tabs.yaml')));
  try {
    await tenTabs(page, context, runs, finished);
  } finally {
    // The runs last minutes: never leave them running past the test.
    for (const runId of runs) await page.request.post(`${base}/api/runs/${runId}/cancel`);
  }
});

async function tenTabs(page: Page, context: BrowserContext, runs: string[], finished: string): Promise<void> {
  const tabs: Page[] = [];
  for (const runId of runs) {
    const tab = await context.newPage();
    await instrument(tab, { sharedWorker: true });
    await tab.goto(`${base}/runs/${runId}`);
    tabs.push(tab);
  }
  // Every tab streams: live, its terminal showing the run's output, its offset growing.
  for (const tab of tabs) {
    await expect(viewer(tab)).toHaveAttribute('data-phase', 'live', { timeout: 60_000 });
    await expect.poll(() => termText(tab), { timeout: 60_000 }).toContain('epoch 1/30');
  }
  const before = await Promise.all(tabs.map(offsetOf));
  for (const [i, tab] of tabs.entries()) {
    await expect.poll(() => offsetOf(tab), { timeout: 20_000 }).toBeGreaterThan(before[i]!);
  }

  // Meanwhile the runs page and a finished run's page load (their requests are not queued
  // behind the streams): within the tests' usual wait, without any stream ending.
  const other = await context.newPage();
  await other.goto(`${base}/`);
  await expect(other.getByRole('heading', { name: 'Runs' })).toBeVisible();
  await expect(other.locator(`tr[data-run-id="${runs[TABS - 1]}"]`)).toBeVisible();
  await instrument(other, { sharedWorker: true });
  await other.goto(`${base}/runs/${finished}`);
  await expect(viewer(other)).toHaveAttribute('data-phase', 'done');
  await expect.poll(() => termText(other)).toContain('training complete');
  await tabs[TABS - 1]!.screenshot({ path: join(SCREENSHOT_DIR, 'tenth-live-tab.png') });

  // A tab closed (its run leaves the shared stream) takes nothing from the others.
  await tabs[0]!.close();
  const after = await Promise.all(tabs.slice(1).map(offsetOf));
  for (const [i, tab] of tabs.slice(1).entries()) {
    await expect.poll(() => offsetOf(tab), { timeout: 20_000 }).toBeGreaterThan(after[i]!);
  }
  for (const runId of runs) await page.request.post(`${base}/api/runs/${runId}/cancel`);
  for (const [i, tab] of tabs.slice(1).entries()) {
    await expect(viewer(tab)).toHaveAttribute('data-phase', 'done', { timeout: 30_000 });
    // Every byte arrived, once: the tab's offset is the log's size.
    const run = (await (await page.request.get(`${base}/api/runs/${runs[i + 1]}`)).json()) as { log_size: number };
    expect(await offsetOf(tab)).toBe(run.log_size);
  }
}

test('behind a token, the shared stream carries the cookie: two tabs stream a run to its end', async ({ page, context }) => {
  const authBase = `http://127.0.0.1:${e2eAuthPort()}`;
  await page.goto(`${authBase}/?token=${encodeURIComponent(e2eToken())}`);
  await expect(page.getByRole('heading', { name: 'Runs' })).toBeVisible();
  const runId = await startRun(page, 'e2e-auth.yaml', authBase);
  const tabs = [page, await context.newPage()];
  for (const tab of tabs) {
    await instrument(tab, { sharedWorker: true });
    await tab.goto(`${authBase}/runs/${runId}`);
  }
  for (const tab of tabs) {
    await expect(viewer(tab)).toHaveAttribute('data-phase', 'done', { timeout: 30_000 });
    await expect(tab.getByTestId('viewer-exit')).toHaveText('Exited with code 0');
    expect(await termText(tab)).toContain('training complete');
  }
});
