/**
 * A server with TRAINLOG_API_TOKEN (started by global-setup on its own port, with its own
 * database; its children run under a pipe): without the token cookie the page says how to get
 * one; `/?token=` sets it and everything works, the live stream included.
 */
import { expect, test } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { HAVE_CHROMIUM, SCREENSHOT_DIR, SKIP_MESSAGE, e2eAuthPort, e2eToken } from './env';
import { instrument, sseLogEvents, termText, viewer } from './helpers';

test.skip(!HAVE_CHROMIUM, SKIP_MESSAGE);
test.describe.configure({ mode: 'serial' });
test.use({ baseURL: `http://127.0.0.1:${e2eAuthPort()}` });
test.beforeEach(async ({ page }) => instrument(page));

mkdirSync(SCREENSHOT_DIR, { recursive: true });
const token = e2eToken();

test('no token: one clear page saying how to get in; /?token= lets the page in and the log streams', async ({ page, context }) => {
  // Without the cookie: the page loads (its files are open) and says what it needs.
  const refused = page.waitForResponse((r) => r.url().includes('/api/') && r.status() === 401);
  await page.goto('/');
  await refused;
  const needed = page.getByTestId('token-required');
  await expect(needed).toBeVisible();
  await expect(needed.getByRole('heading')).toHaveText('This trainlog server needs a token');
  await expect(needed).toContainText('/?token=…');
  await expect(page.getByRole('heading', { name: 'Runs' })).toHaveCount(0);
  await page.screenshot({ path: join(SCREENSHOT_DIR, 'token-required.png') });

  // A wrong token is caught on the page, without leaving it.
  await page.getByLabel('API token').fill('not-the-token');
  await page.getByRole('button', { name: 'Open' }).click();
  await expect(page.getByTestId('token-error')).toHaveText('That is not this server’s token.');
  await expect(page).toHaveURL(/\/$/);

  // Opened once with the token: an HttpOnly cookie, a redirect without it, the runs page.
  await page.goto(`/?token=${encodeURIComponent(token)}`);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'Runs' })).toBeVisible();
  await expect(page.getByTestId('token-required')).toHaveCount(0);
  const cookie = (await context.cookies()).find((c) => c.name === 'trainlog_token');
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });

  // A run streams live over the EventSource, which carries the cookie on its own.
  await page.getByLabel('Config').selectOption('e2e-auth.yaml');
  await page.getByRole('button', { name: 'Start run' }).click();
  await page.waitForURL(/\/runs\/[0-9a-f-]+$/);
  const runPath = new URL(page.url()).pathname;
  await expect(page.getByTestId('viewer-live')).toBeVisible();
  await expect.poll(() => termText(page)).toContain('epoch 1/1');
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done', { timeout: 30_000 });
  await expect(page.getByTestId('viewer-exit')).toHaveText('Exited with code 0');
  expect(await sseLogEvents(page)).toBeGreaterThan(0);
  expect(await termText(page)).toContain('training complete');

  // Under a pipe the run has no terminal size: the viewer fits its box, nothing to scroll.
  const run = (await (await page.request.get(`/api/runs${runPath.slice('/runs'.length)}`)).json()) as { pty: boolean; term_cols: number | null };
  expect(run).toMatchObject({ pty: false, term_cols: null });
  const fit = await page.getByTestId('viewer-scroll').evaluate((el) => ({ scrollWidth: el.scrollWidth, clientWidth: el.clientWidth }));
  expect(fit.scrollWidth).toBeLessThanOrEqual(fit.clientWidth);
  await expect(page.getByTestId('viewer-cols')).toHaveCount(0);

  // Cookie gone (another browser): the run page says what it needs; the token, pasted, brings
  // the same page back.
  await context.clearCookies();
  await page.reload();
  await expect(page.getByTestId('token-required')).toBeVisible();
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Open' }).click();
  await expect(viewer(page)).toHaveAttribute('data-phase', 'done');
  await expect(page).toHaveURL(new RegExp(`${runPath}$`));
  expect(await termText(page)).toContain('training complete');
});
