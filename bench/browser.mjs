// Chromium for the bench's browser scripts (firstpaint, chart, viewer), through the web app's
// own Playwright, with the machine's Chromium and the flags the e2e tests use.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const web = resolve(dirname(fileURLToPath(import.meta.url)), '../web');
const { chromium } = createRequire(resolve(web, 'package.json'))('@playwright/test');

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: JSON.parse(readFileSync(resolve(web, 'e2e/chromium-args.json'), 'utf8')),
  });
}

/**
 * `times` loads of `url`, each in a fresh context (nothing cached), at the e2e tests' viewport;
 * prints the JSON list of what `measure(page)` returned for each, as the Python side reads it.
 */
export async function freshLoads(url, times, measure) {
  const browser = await launchChromium();
  const loads = [];
  try {
    for (let i = 0; i < times; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      await page.goto(url, { waitUntil: 'commit' });
      loads.push(await measure(page));
      await context.close();
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(loads));
}
