/**
 * The runs page over many runs: filters kept in the URL, deleting a run from its page, and a
 * run page that stays open while its run is deleted. Every run made here is deleted again, so
 * the other specs find the server as they expect it (no runs).
 */
import { expect, test, type APIRequestContext } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HAVE_CHROMIUM, SCREENSHOT_DIR, SKIP_MESSAGE } from './env';

test.skip(!HAVE_CHROMIUM, SKIP_MESSAGE);
test.describe.configure({ mode: 'serial' });

mkdirSync(SCREENSHOT_DIR, { recursive: true });
const shot = (name: string) => join(SCREENSHOT_DIR, name);

interface RunJson {
  id: string;
  status: string;
}

async function waitEnded(request: APIRequestContext, id: string): Promise<RunJson> {
  let run: RunJson = { id, status: 'queued' };
  await expect
    .poll(async () => {
      run = (await (await request.get(`/api/runs/${id}`)).json()) as RunJson;
      return run.status === 'queued' || run.status === 'running';
    })
    .toBe(false);
  return run;
}

async function makeRun(request: APIRequestContext, config: string, name: string, tags: Record<string, string>) {
  const res = await request.post('/api/runs', { data: { config, name, tags } });
  expect(res.status(), await res.text()).toBe(201);
  const { id } = (await res.json()) as RunJson;
  return waitEnded(request, id);
}

const made: string[] = [];
let alpha = '';
let beta = '';
let gamma = '';
// gamma's end: failed (exit 3), or lost when a loaded machine starts its runner too slowly.
let gammaStatus = '';

test.beforeAll(async ({ request }) => {
  const a = await makeRun(request, 'e2e-ok.yaml', 'alpha', { team: 'vision' });
  const b = await makeRun(request, 'e2e-ok.yaml', 'beta', { team: 'nlp' });
  const g = await makeRun(request, 'e2e-fail.yaml', 'gamma', { team: 'vision' });
  [alpha, beta, gamma, gammaStatus] = [a.id, b.id, g.id, g.status];
  made.push(alpha, beta, gamma);
  expect([a.status, b.status]).toEqual(['succeeded', 'succeeded']);
  expect(['failed', 'lost']).toContain(gammaStatus);
});

test.afterAll(async ({ request }) => {
  for (const id of made) await request.delete(`/api/runs/${id}`);
});

const rows = (page: import('@playwright/test').Page) => page.locator('tr.run-row');

test('filter by status and tag via the URL, and through the filter bar', async ({ page }) => {
  await page.goto(`/?status=${gammaStatus}`);
  await expect(rows(page)).toHaveCount(1);
  await expect(page.locator(`tr[data-run-id="${gamma}"]`)).toBeVisible();
  await expect(page.getByRole('button', { name: gammaStatus })).toHaveAttribute('aria-pressed', 'true');

  await page.goto('/?tag=team:vision');
  await expect(rows(page)).toHaveCount(2);
  await expect(page.locator(`tr[data-run-id="${alpha}"]`)).toContainText('team:vision');
  await expect(page.locator(`tr[data-run-id="${gamma}"]`)).toBeVisible();

  await page.goto('/?tag=team:vision&status=succeeded');
  await expect(rows(page)).toHaveCount(1);
  await expect(page.locator(`tr[data-run-id="${alpha}"]`)).toContainText('alpha');

  // The bar writes the URL, so the filtered view can be shared.
  await page.goto('/');
  await expect(rows(page)).toHaveCount(3);
  await page.getByLabel('Add tag filter').fill('team:nlp');
  await page.getByLabel('Add tag filter').press('Enter');
  await expect(page).toHaveURL(/\?tag=team%3Anlp$/);
  await expect(rows(page)).toHaveCount(1);
  await expect(page.locator(`tr[data-run-id="${beta}"]`)).toBeVisible();
  await page.getByRole('button', { name: 'cancelled' }).click();
  await expect(page).toHaveURL(/status=cancelled/);
  await expect(page.getByText('No runs match these filters')).toBeVisible();
  await page.getByRole('button', { name: 'cancelled' }).click();
  await page.getByLabel('Search runs').fill('ALPH');
  await expect(page).toHaveURL(/q=ALPH/);
  await expect(page.getByText('No runs match these filters')).toBeVisible(); // alpha is not team:nlp
  await page.getByRole('button', { name: 'team:nlp ×' }).click();
  await expect(rows(page)).toHaveCount(1);
  await expect(page.locator(`tr[data-run-id="${alpha}"]`)).toBeVisible();
  await page.goto('/');
  await expect(rows(page)).toHaveCount(3);
  // Followed live with conditional requests: while nothing changes, the answer is a bodiless 304.
  const unchanged = await page.waitForResponse((r) => new URL(r.url()).pathname === '/api/runs' && r.status() === 304);
  expect(await unchanged.request().headerValue('if-none-match')).toMatch(/^"[0-9a-f]+"$/);
  await expect(rows(page)).toHaveCount(3);
  await page.screenshot({ path: shot('runs-page-filters.png') });
});

test("a chosen metric's latest value is a column, kept in the URL", async ({ page, request }) => {
  // The emitter's last bar says loss=0.5556 for e2e-ok (0.2500 for e2e-fail); read it from
  // the API, so this checks the column, not the extraction.
  const last = async (id: string) => {
    const res = await request.get(`/api/metrics/latest?name=loss&run=${id}`);
    return ((await res.json()) as { runs: Record<string, { value: number }> }).runs[id]?.value;
  };
  await expect.poll(() => last(alpha)).toBe(0.5556);
  await expect.poll(() => last(beta)).toBe(0.5556);

  await page.goto('/?tag=team:vision');
  await expect(rows(page)).toHaveCount(2);
  await expect(page.getByTestId('metric-column')).toHaveCount(0);
  const picker = page.getByLabel('Metric column');
  await picker.fill('loss');
  await picker.press('Enter');
  await expect(page).toHaveURL(/\?tag=team%3Avision&metric=loss$/);
  await expect(page.getByTestId('metric-column')).toHaveText('loss');
  await expect(page.locator(`tr[data-run-id="${alpha}"] .metric-value`)).toHaveText('0.5556');
  await page.screenshot({ path: shot('runs-page-metric-column.png') });

  // Shared as a link: the column and the filters come back with it; filtering keeps it.
  await page.goto('/?metric=loss');
  await expect(rows(page)).toHaveCount(3);
  await expect(page.getByLabel('Metric column')).toHaveValue('loss');
  await expect(page.locator(`tr[data-run-id="${beta}"] .metric-value`)).toHaveText('0.5556');
  await page.getByRole('button', { name: 'succeeded' }).click();
  await expect(page).toHaveURL(/status=succeeded/);
  await expect(page).toHaveURL(/metric=loss/);
  await expect(rows(page)).toHaveCount(2);
  await expect(page.locator('tr.run-row .metric-value')).toHaveText(['0.5556', '0.5556']);

  // A series no run has: a dash, not an error.
  await page.goto('/?metric=no_such_metric');
  await expect(page.getByTestId('metric-column')).toHaveText('no_such_metric');
  await expect(page.locator(`tr[data-run-id="${alpha}"] .metric-value`)).toHaveText('—');
  // Cleared: the column goes, and so does the parameter.
  await page.getByLabel('Metric column').fill('');
  await page.getByLabel('Metric column').press('Enter');
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('metric-column')).toHaveCount(0);
});

test('delete from the run page, after a confirmation', async ({ page, request }) => {
  await page.goto(`/runs/${beta}`);
  await expect(page.getByTestId('run-tags')).toHaveText('team:nlp');
  // Every fact (tags, host and the long command included) is inside the facts box at 1280 px.
  const facts = page.locator('dl.facts');
  const box = (await facts.boundingBox())!;
  for (const fact of await facts.locator('> div').all()) {
    const b = (await fact.boundingBox())!;
    expect(b.x + b.width, await fact.innerText()).toBeLessThanOrEqual(box.x + box.width);
  }
  expect(await facts.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
  await page.screenshot({ path: shot('run-page-facts.png') });
  const button = page.getByRole('button', { name: 'Delete run' });
  // Dismissed: nothing happens.
  page.once('dialog', (d) => void d.dismiss());
  await button.click();
  await expect(button).toBeEnabled();
  expect((await request.get(`/api/runs/${beta}`)).status()).toBe(200);
  // Accepted: the run is gone, and the list no longer has it.
  page.once('dialog', (d) => {
    expect(d.message()).toContain('cannot be undone');
    void d.accept();
  });
  await button.click();
  await expect(page).toHaveURL(/\/$/);
  await expect(rows(page)).toHaveCount(2);
  await expect(page.locator(`tr[data-run-id="${beta}"]`)).toHaveCount(0);
  expect((await request.get(`/api/runs/${beta}`)).status()).toBe(404);
});

test("a deleted run's open page says so", async ({ page, request }) => {
  await page.goto(`/runs/${alpha}`);
  await expect(page.getByRole('button', { name: 'Delete run' })).toBeVisible();
  expect((await request.delete(`/api/runs/${alpha}`)).status()).toBe(204);
  await expect(page.getByTestId('run-deleted')).toContainText('deleted');
  await page.screenshot({ path: shot('run-page-deleted.png') });
});
