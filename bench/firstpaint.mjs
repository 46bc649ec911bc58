// The runs page's first paint in Chromium: `node bench/firstpaint.mjs URL TIMES`.
// Prints one JSON line: for each load, the page's own clock (ms since navigation start) when
// the first run row was on screen, and when the browser reported first contentful paint.
import { freshLoads } from './browser.mjs';

const [url, times] = [process.argv[2], Number(process.argv[3] ?? 5)];
await freshLoads(url, times, async (page) => {
  await page.waitForSelector('tr.run-row', { state: 'visible', timeout: 30_000 });
  // The next frame after the rows are in the DOM: when they were painted.
  const rows = await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(performance.now()))));
  const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
  return { rows_ms: rows, fcp_ms: fcp, rows: await page.locator('tr.run-row').count() };
});
