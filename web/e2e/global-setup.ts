/**
 * Starts a real `trainlog serve` for the e2e tests: its own temporary database and config
 * directory, the e2e emitter as the training command, and the freshly built web/dist.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { HAVE_CHROMIUM, SKIP_MESSAGE, TRAINLOG_BIN, WEB_DIR, e2ePort } from './env';

/** Newest mtime under a directory (files only). */
function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((n) => newest(join(path, n))));
}

function ensureBuilt(): void {
  const index = resolve(WEB_DIR, 'dist/index.html');
  const sources = Math.max(newest(resolve(WEB_DIR, 'src')), newest(resolve(WEB_DIR, 'index.html')));
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  console.log('[e2e] building web/dist (vite build)…');
  const r = spawnSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: WEB_DIR, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('vite build failed');
}

async function waitHealthy(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`trainlog serve exited with ${child.exitCode}; see ${logFile}`);
    try {
      const res = await fetch(`${url}/api/health`);
      if (res.ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`trainlog serve did not become healthy in 30 s; see ${logFile}`);
}

export default async function globalSetup(): Promise<(() => Promise<void>) | void> {
  if (!HAVE_CHROMIUM) {
    console.log(`\n[e2e] ${SKIP_MESSAGE}\n`);
    return;
  }
  if (!existsSync(TRAINLOG_BIN)) {
    throw new Error(`[e2e] no trainlog at ${TRAINLOG_BIN}: create the venv (pip install -e .) or set TRAINLOG_E2E_BIN`);
  }
  ensureBuilt();

  const port = e2ePort();
  const dir = mkdtempSync(join(tmpdir(), 'trainlog-e2e-'));
  const configs = join(dir, 'configs');
  mkdirSync(configs);
  // A failing run long enough to navigate around mid-run, a quick passing one, a slow one to cancel.
  writeFileSync(join(configs, 'e2e-fail.yaml'), 'exit_code: 3\nepochs: 2\nsteps: 20\nstep_delay: 0.2\n');
  writeFileSync(join(configs, 'e2e-ok.yaml'), 'exit_code: 0\nepochs: 1\nsteps: 8\nstep_delay: 0.05\n');
  // Over the viewer's 5 MiB threshold: it loads only the tail.
  writeFileSync(join(configs, 'e2e-big.yaml'), 'exit_code: 0\nepochs: 1\nsteps: 2\nstep_delay: 0.05\npreamble_lines: 160000\n');
  writeFileSync(join(configs, 'e2e-slow.yaml'), 'exit_code: 0\nepochs: 50\nsteps: 50\nstep_delay: 0.2\npreamble_lines: 150\n');

  const logFile = join(dir, 'server.log');
  const out = openSync(logFile, 'a');
  const emitter = resolve(WEB_DIR, 'e2e/emitter.py');
  const child = spawn(TRAINLOG_BIN, ['serve', '--host', '127.0.0.1', '--port', String(port)], {
    cwd: dir,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      TRAINLOG_DATABASE_URL: `sqlite:///${join(dir, 'trainlog.db')}`,
      TRAINLOG_CONFIG_DIR: configs,
      TRAINLOG_TRAIN_COMMAND: `python3 ${emitter} --config {config}`,
      TRAINLOG_WEB_DIST: resolve(WEB_DIR, 'dist'),
      TRAINLOG_POLL_INTERVAL: '0.1',
      TRAINLOG_HEARTBEAT_INTERVAL: '2',
      TRAINLOG_CANCEL_GRACE: '2',
    },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, child, logFile);
  } catch (err) {
    if (child.exitCode === null) child.kill('SIGKILL');
    console.error(`[e2e] server log (${logFile}):\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
    throw err;
  }
  console.log(`[e2e] trainlog serve on ${url} (data in ${dir})`);

  return async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          r();
        }, 5000);
        child.once('exit', () => {
          clearTimeout(t);
          r();
        });
      });
    }
    if (!process.env.TRAINLOG_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
  };
}
