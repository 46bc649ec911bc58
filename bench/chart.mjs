// A metric chart's arrival and draw in Chromium: `node bench/chart.mjs RUN_PAGE_URL SERIES TIMES`.
// Prints one JSON line: for each load, on the page's own clock, when the request for the
// series' chart data began, when its answer had arrived, and when the chart was painted with
// it (the next frame after the chart holds its points), and how many points it drew.
import { freshLoads } from './browser.mjs';

const [url, name, times] = [process.argv[2], process.argv[3], Number(process.argv[4] ?? 5)];
await freshLoads(url, times, async (page) => {
  const chart = page.getByTestId(`metric-chart-${name}`);
  await page.waitForFunction(
    (testId) => Number(document.querySelector(`[data-testid="${testId}"]`)?.getAttribute('data-points')) > 0,
    `metric-chart-${name}`,
    { timeout: 60_000, polling: 'raf' },
  );
  const drawn = await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(performance.now()))));
  const request = await page.evaluate(
    (path) => performance.getEntriesByType('resource').find((e) => e.name.includes(path) && e.name.includes('max_points')),
    `/metrics/${name}`,
  );
  return {
    request_start_ms: request?.startTime ?? null,
    response_end_ms: request?.responseEnd ?? null,
    drawn_ms: drawn,
    chart_ms: request ? drawn - request.startTime : null,
    points: Number(await chart.getAttribute('data-points')),
  };
});
