/** What both specs share: the page hooks the tests read, and reading the viewer's terminal. */
import { expect, type Page } from '@playwright/test';

/**
 * Before the app loads: have the viewer expose its terminal, and record the SSE `log` events'
 * ids and the EventSources, to prove chunk boundaries and streams the tests care about.
 * Those are the page's own: unless `sharedWorker` is set, the page goes without SharedWorker,
 * so its live streams share a connection of the page's instead of the browser's worker.
 */
export async function instrument(page: Page, { sharedWorker = false } = {}): Promise<void> {
  await page.addInitScript((keepWorker) => {
    const w = window as unknown as Record<string, unknown>;
    w.__TRAINLOG_EXPOSE_TERM__ = true;
    if (!keepWorker) Object.defineProperty(window, 'SharedWorker', { value: undefined });
    const Native = window.EventSource;
    const seen: number[] = [];
    const sources: EventSource[] = [];
    w.__sseIds = seen;
    w.__sseSources = sources;
    class Recording extends Native {
      constructor(url: string | URL, init?: EventSourceInit) {
        super(url, init);
        sources.push(this);
        this.addEventListener('log', (ev) => seen.push(Number((ev as MessageEvent).lastEventId)));
      }
    }
    window.EventSource = Recording;
  }, sharedWorker);
}

export const viewer = (page: Page) => page.getByTestId('training-log-viewer');

/** Starts a run of `config` from the runs page, as a user does; the browser is then on its page. */
export async function startRun(page: Page, config: string): Promise<string> {
  await page.goto('/');
  await page.getByLabel('Config').selectOption(config);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/runs') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Start run' }).click(),
  ]);
  expect(res.status(), await res.text()).toBe(201);
  const run = (await res.json()) as { id: string; config: string };
  expect(run.config).toBe(config);
  await page.waitForURL(new RegExp(`/runs/${run.id}$`));
  return run.id;
}

/** The terminal buffer's text, one line per buffer line, trailing blanks trimmed. */
export async function termText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const t = (window as unknown as { __trainlogTerm?: { buffer: { active: { length: number; getLine(i: number): { translateToString(trim: boolean): string } | undefined } } } }).__trainlogTerm;
    if (!t) return '';
    const b = t.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? '');
    return out.join('\n');
  });
}

/** How many SSE `log` events this page has received. */
export async function sseLogEvents(page: Page): Promise<number> {
  return page.evaluate(() => (window as unknown as { __sseIds: number[] }).__sseIds.length);
}
