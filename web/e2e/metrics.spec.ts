import { expect, test } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HAVE_CHROMIUM, SCREENSHOT_DIR, SKIP_MESSAGE } from './env';

test.skip(!HAVE_CHROMIUM, SKIP_MESSAGE);
mkdirSync(SCREENSHOT_DIR, { recursive: true });

test("a live run's loss chart grows, and clicking a point opens its line", async ({ page }) => {
  const seriesRequests: string[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/metrics/loss')) seriesRequests.push(r.url());
  });
  await page.goto('/');
  await page.getByLabel('Config').selectOption('e2e-slow.yaml');
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/runs') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Start run' }).click(),
  ]);
  expect(res.status()).toBe(201);
  const runId = ((await res.json()) as { id: string }).id;
  await page.waitForURL(new RegExp(`/runs/${runId}$`));

  // The emitter's bar prints [loss=...] on every redraw: the chart appears while the run goes.
  const chart = page.getByTestId('metric-chart-loss');
  await expect(chart).toBeVisible();
  const count = async () => Number(await chart.getAttribute('data-points'));
  await expect.poll(count).toBeGreaterThan(2);
  const before = await count();
  await expect.poll(count).toBeGreaterThan(before + 5);
  // It grew by fetching only the points after those it held, not the whole series again.
  expect(seriesRequests.filter((u) => /after_seq=\d+/.test(u)).length).toBeGreaterThan(0);
  expect(seriesRequests.filter((u) => !u.includes('after_seq=')).length).toBe(1);
  await page.screenshot({ path: join(SCREENSHOT_DIR, 'metrics-live.png') });

  // Hovering shows the point; clicking it asks the viewer for its line (#L<line>).
  const plot = chart.locator('.u-over');
  await plot.scrollIntoViewIfNeeded(); // the metrics are below the log viewer
  const box = await plot.boundingBox();
  if (!box) throw new Error('no plot area');
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
  await expect(chart.getByTestId('metric-readout')).toContainText('line ');
  const readout = (await chart.getByTestId('metric-readout').textContent()) ?? '';
  const line = Number(/line (\d+)/.exec(readout)?.[1]);
  await page.mouse.click(box.x + box.width * 0.6, box.y + box.height / 2);
  await expect(page).toHaveURL(new RegExp(`#L${line}$`));

  // The line is the one the point was printed on: it carries a loss value.
  const lines = await page.request.get(`/api/runs/${runId}/logs/raw`);
  const text = new TextDecoder().decode(await lines.body());
  expect(text.split('\n')[line - 1]).toContain('loss=');
  // The log is brought into view with the line highlighted.
  const viewer = page.getByTestId('training-log-viewer');
  const scroller = page.getByTestId('viewer-scroll');
  const inView = async (n: number) => {
    const from = Number(await viewer.getAttribute('data-view-from'));
    const to = Number(await viewer.getAttribute('data-view-to'));
    return from <= n && n <= to;
  };
  await expect(viewer).toHaveAttribute('data-highlight', `${line}-${line}`);
  await expect(scroller).toBeInViewport({ ratio: 0.95 });
  await expect.poll(() => inView(line)).toBe(true);
  await page.screenshot({ path: join(SCREENSHOT_DIR, 'metrics-clicked.png') });

  await page.getByRole('button', { name: 'Cancel run' }).click();
  await expect(page.getByText('cancelled').first()).toBeVisible();
  // Once more on the ended run's still chart, in a window too short for the log and the
  // chart at once: a click brings the log back into view, and so does a second click on the
  // same point after the log was scrolled away (the address names its line already).
  await page.setViewportSize({ width: 1280, height: 500 });
  const clickPoint = async () => {
    await plot.scrollIntoViewIfNeeded();
    await expect(scroller).not.toBeInViewport({ ratio: 0.95 });
    const still = await plot.boundingBox();
    if (!still) throw new Error('no plot area');
    await page.mouse.click(still.x + still.width * 0.6, still.y + still.height / 2);
    await expect(scroller).toBeInViewport({ ratio: 0.95 });
    return Number(/#L(\d+)$/.exec(page.url())?.[1]);
  };
  const shown = await clickPoint();
  await expect(viewer).toHaveAttribute('data-highlight', `${shown}-${shown}`);
  await expect.poll(() => inView(shown)).toBe(true);
  await page.getByRole('button', { name: 'Go to the first line' }).click();
  await expect.poll(() => inView(shown)).toBe(false);
  expect(await clickPoint()).toBe(shown);
  await expect.poll(() => inView(shown)).toBe(true);

  // Leave the server as this spec found it: the specs after it count the runs it lists.
  await expect
    .poll(async () => (await page.request.delete(`/api/runs/${runId}`)).status(), { timeout: 30_000 })
    .toBe(204);
});
