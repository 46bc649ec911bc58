import { defineConfig } from '@playwright/test';
import { CHROMIUM, CHROMIUM_ARGS, e2ePort } from './e2e/env';

// The port is fixed here, in the main process, so the workers (which inherit the environment)
// and the global setup (which starts the server) agree on it.
const port = e2ePort();

export default defineConfig({
  testDir: './e2e',
  timeout: 60_000,
  expect: { timeout: 20_000 },
  workers: 1, // one server, and it allows one active run at a time
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
