import { defineConfig } from '@playwright/test';
import { CHROMIUM, CHROMIUM_ARGS, e2eAuthPort, e2ePort, e2eTabsPort, e2eToken } from './e2e/env';

// The ports (and the second server's token) are fixed here, in the main process, so the
// workers (which inherit the environment) and the global setup (which starts the servers)
// agree on them. Three in a row below Linux's ephemeral range (32768-60999), where no outgoing
// connection can hold one (one did, 38552, on a busy machine: the server could not start).
process.env.TRAINLOG_E2E_PORT ??= String(20_000 + (process.pid % 4_000) * 3);
const port = e2ePort();
e2eAuthPort();
e2eTabsPort();
e2eToken();

export default defineConfig({
  testDir: './e2e',
  timeout: 60_000,
  expect: { timeout: 20_000 },
  workers: 1, // each server allows one active run at a time
  fullyParallel: false,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results/artifacts',
  globalSetup: './e2e/global-setup.ts',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    colorScheme: 'dark',
    screenshot: 'only-on-failure',
    trace: 'off',
    launchOptions: { executablePath: CHROMIUM, args: CHROMIUM_ARGS },
  },
  projects: [{ name: 'chromium', use: { browserName: 'chromium' } }],
});
