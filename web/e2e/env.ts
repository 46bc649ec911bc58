import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = resolve(WEB_DIR, '..');

/** Debian's chromium: Playwright's own browser downloads are not available here. */
export const CHROMIUM = process.env.TRAINLOG_E2E_CHROMIUM ?? '/usr/bin/chromium';
/** The flags Chromium needs here (no sandbox as root, no GPU); bench/browser.mjs reads them too. */
export const CHROMIUM_ARGS: string[] = JSON.parse(readFileSync(resolve(WEB_DIR, 'e2e/chromium-args.json'), 'utf8'));
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
export const SKIP_MESSAGE = `e2e skipped: no Chromium at ${CHROMIUM} (install Debian's chromium, or set TRAINLOG_E2E_CHROMIUM)`;

export const TRAINLOG_BIN = process.env.TRAINLOG_E2E_BIN ?? resolve(REPO_DIR, '.venv/bin/trainlog');

/** A port for this e2e run's server, chosen once and shared through the environment. */
export function e2ePort(): number {
  if (!process.env.TRAINLOG_E2E_PORT) {
    process.env.TRAINLOG_E2E_PORT = String(20_000 + (process.pid % 20_000));
  }
  return Number(process.env.TRAINLOG_E2E_PORT);
}

/** The second server's port: it has an API token (and runs its children under a pipe). */
export function e2eAuthPort(): number {
  if (!process.env.TRAINLOG_E2E_AUTH_PORT) {
    process.env.TRAINLOG_E2E_AUTH_PORT = String(e2ePort() + 1);
  }
  return Number(process.env.TRAINLOG_E2E_AUTH_PORT);
}

/** The third server's port: it runs ten runs at once (tabs.spec.ts). */
export function e2eTabsPort(): number {
  if (!process.env.TRAINLOG_E2E_TABS_PORT) {
    process.env.TRAINLOG_E2E_TABS_PORT = String(e2ePort() + 2);
  }
  return Number(process.env.TRAINLOG_E2E_TABS_PORT);
}

/** The second server's API token, chosen once per e2e run. */
export function e2eToken(): string {
  if (!process.env.TRAINLOG_E2E_TOKEN) {
    process.env.TRAINLOG_E2E_TOKEN = `e2e-${process.pid}-${Math.random().toString(36).slice(2, 12)}`;
  }
  return process.env.TRAINLOG_E2E_TOKEN;
}

export const SCREENSHOT_DIR = resolve(WEB_DIR, 'test-results/screenshots');
