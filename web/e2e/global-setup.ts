/**
 * Starts two real `trainlog serve`s for the e2e tests, each with its own temporary database
 * and config directory, the e2e emitter as the training command, and the freshly built
 * web/dist:
 * - the main one (trainlog.spec.ts): children under a pseudo-terminal (the default), and a
 *   runner counted lost 10 s after its last heartbeat;
 * - the token one (auth.spec.ts): TRAINLOG_API_TOKEN set, children under a pipe;
 * - the tabs one (tabs.spec.ts): ten runs at once.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { HAVE_CHROMIUM, SKIP_MESSAGE, TRAINLOG_BIN, WEB_DIR, e2eAuthPort, e2ePort, e2eTabsPort, e2eToken } from './env';

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

interface Server {
  url: string;
  dir: string;
  stop: () => Promise<void>;
}

async function startServer(name: string, port: number, configs: Record<string, string>, env: Record<string, string>): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), `trainlog-e2e-${name}-`));
  const configDir = join(dir, 'configs');
  mkdirSync(configDir);
  for (const [file, text] of Object.entries(configs)) writeFileSync(join(configDir, file), text);
  const logFile = join(dir, 'server.log');
  const out = openSync(logFile, 'a');
  const emitter = resolve(WEB_DIR, 'e2e/emitter.py');
  const child = spawn(TRAINLOG_BIN, ['serve', '--host', '127.0.0.1', '--port', String(port)], {
    cwd: dir,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      TRAINLOG_DATABASE_URL: `sqlite:///${join(dir, 'trainlog.db')}`,
      TRAINLOG_CONFIG_DIR: configDir,
      // A bare python3 is trainlog's own interpreter (it has tqdm).
      TRAINLOG_TRAIN_COMMAND: `python3 ${emitter} --config {config}`,
      TRAINLOG_WEB_DIST: resolve(WEB_DIR, 'dist'),
      TRAINLOG_POLL_INTERVAL: '0.1',
      TRAINLOG_HEARTBEAT_INTERVAL: '2',
      TRAINLOG_CANCEL_GRACE: '2',
      ...env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, child, logFile);
  } catch (err) {
    if (child.exitCode === null) child.kill('SIGKILL');
    console.error(`[e2e] ${name} server log (${logFile}):\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
    throw err;
  }
  console.log(`[e2e] ${name}: trainlog serve on ${url} (data in ${dir})`);
  const stop = async () => {
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
  return { url, dir, stop };
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

  const started = await Promise.allSettled([
    startServer(
      'main',
      e2ePort(),
      {
        // A failing run long enough to navigate around mid-run, a quick passing one, a slow one to cancel.
        'e2e-fail.yaml': 'exit_code: 3\nepochs: 2\nsteps: 20\nstep_delay: 0.2\n',
        'e2e-ok.yaml': 'exit_code: 0\nepochs: 1\nsteps: 8\nstep_delay: 0.05\n',
        // Over 5 MiB and 160,000 lines, with one traceback in the middle: whole-log navigation.
        'e2e-big.yaml': 'exit_code: 0\nepochs: 1\nsteps: 2\nstep_delay: 0.05\npreamble_lines: 160000\ntraceback_at: 120000\n',
        'e2e-slow.yaml': 'exit_code: 0\nepochs: 50\nsteps: 50\nstep_delay: 0.2\npreamble_lines: 150\n',
        // Real tqdm bars, 119 columns wide in the run's 120-column terminal.
        'e2e-tqdm.yaml': 'program: tqdm\nepochs: 2\nsteps: 40\nstep_delay: 0.02\n',
      },
      // A runner killed with -9 is judged lost within about 10.5 s instead of 15 (not less: on a
      // busy machine a runner can take seconds to start, and a queued run is judged the same way).
      { TRAINLOG_RUNNER_HEARTBEAT_INTERVAL: '0.5', TRAINLOG_RUNNER_LOST_AFTER: '10' },
    ),
    startServer(
      'token',
      e2eAuthPort(),
      { 'e2e-auth.yaml': 'exit_code: 0\nepochs: 1\nsteps: 12\nstep_delay: 0.1\n' },
      { TRAINLOG_API_TOKEN: e2eToken(), TRAINLOG_PTY: '0' },
    ),
    startServer(
      'tabs',
      e2eTabsPort(),
      {
        // Redraws its bar every 0.2 s for 5 minutes (the test cancels it).
        'e2e-tabs.yaml': 'exit_code: 0\nepochs: 30\nsteps: 50\nstep_delay: 0.2\n',
        'e2e-quick.yaml': 'exit_code: 0\nepochs: 1\nsteps: 3\nstep_delay: 0.01\n',
      },
      // Ten runners starting at once on a busy machine may take a while to report.
      { TRAINLOG_MAX_ACTIVE_RUNS: '11', TRAINLOG_RUNNER_LOST_AFTER: '60', TRAINLOG_METRICS: '0' },
    ),
  ]);
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }
  return async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
}
