// The run page's viewer in Chromium, against a real `trainlog serve`:
// `node bench/viewer.mjs BASE_URL RUN_ID LINE LOADS BACK_LINES`. Prints one JSON line:
// - permalink: for each of LOADS fresh loads of /runs/RUN_ID#LLINE, the page's own clock (ms
//   since navigation start) at the first frame where line LINE is in the terminal's view,
//   highlighted, and the terminal's text beside its number is the stored line;
// - heap: from LINE, scroll back (to the top of what is held, again and again, so each step
//   loads the window before) across BACK_LINES lines; the JS heap in use (CDP
//   Runtime.getHeapUsage) after each step, its peak, and after a garbage collection at the end.
import { launchChromium } from './browser.mjs';

const [base, runId, lineArg, loadsArg, backArg] = process.argv.slice(2);
const line = Number(lineArg);
const loads = Number(loadsArg ?? 3);
const back = Number(backArg ?? 50_000);
const browser = await launchChromium();
const url = `${base}/runs/${runId}#L${line}`;

/** A new page whose viewer exposes its terminal (as the e2e tests have it). */
async function open(context) {
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__TRAINLOG_EXPOSE_TERM__ = true;
  });
  return page;
}

/** In the page: the line shown beside gutter row `line`, and the stored line, as text. */
async function check(page, n) {
  return page.evaluate(async (n) => {
    const t = window.__trainlogTerm;
    const rows = Array.from(document.querySelectorAll('[data-testid="viewer-gutter"] .tlv-gutter-row'));
    const i = rows.findIndex((el) => el.dataset.line === String(n));
    const shown = i < 0 ? null : (t.buffer.active.getLine(t.buffer.active.viewportY + i)?.translateToString(true) ?? '');
    const id = location.pathname.split('/').pop();
    const j = await (await fetch(`/api/runs/${id}/logs/lines?start=${n}&count=1`)).json();
    const raw = new TextDecoder().decode(Uint8Array.from(atob(j.data), (c) => c.charCodeAt(0)));
    const text = raw.replace(/\r?\n$/, '').replace(/\x1b\[[0-9;]*m/g, '');
    return { shown, stored: text.slice(text.lastIndexOf('\r') + 1).trimEnd() };
  }, n);
}

const permalink = [];
const heap = { steps: [], peak_bytes: 0, after_gc_bytes: 0, from: 0, to: 0, windows: 0 };
try {
  for (let k = 0; k < loads; k++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await open(context);
    await page.goto(url, { waitUntil: 'commit' });
    const shownAt = await page.waitForFunction(
      (n) => {
        const row = document.querySelector(`.tlv-gutter-row.tlv-hl[data-line="${n}"]`);
        const box = document.querySelector('[data-testid="viewer-scroll"]')?.getBoundingClientRect();
        if (!row || !box || !document.querySelector('.xterm-decoration')) return false;
        const r = row.getBoundingClientRect();
        return r.top >= box.top && r.bottom <= box.bottom + 1 && r.bottom <= window.innerHeight ? performance.now() : false;
      },
      line,
      { polling: 'raf', timeout: 60_000 },
    );
    const ms = await shownAt.jsonValue();
    const { shown, stored } = await check(page, line);
    permalink.push({ ms, ok: shown === stored, shown, stored });
    await context.close();
  }

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await open(context);
  const cdp = await context.newCDPSession(page);
  await page.goto(url);
  await page.waitForFunction((n) => document.querySelector(`.tlv-gutter-row.tlv-hl[data-line="${n}"]`), line, { timeout: 60_000 });
  const viewFrom = () => page.evaluate(() => Number(document.querySelector('[data-testid="training-log-viewer"]').dataset.viewFrom));
  heap.from = await viewFrom();
  for (let i = 0; i < back / 500 + 10; i++) {
    // To the top of the held lines: the viewer loads the window before and keeps the view.
    const moved = await page.evaluate(async () => {
      const t = window.__trainlogTerm;
      const v = document.querySelector('[data-testid="training-log-viewer"]');
      const held = v.dataset.heldFirst;
      t.scrollLines(-t.buffer.active.viewportY);
      const t0 = performance.now();
      await new Promise((r) => {
        const check = () =>
          (v.dataset.heldFirst !== held && v.dataset.loading === 'no') || performance.now() - t0 > 30_000 ? r() : requestAnimationFrame(check);
        requestAnimationFrame(check);
      });
      return v.dataset.heldFirst !== held;
    });
    if (moved) heap.windows++;
    const { usedSize } = await cdp.send('Runtime.getHeapUsage');
    heap.steps.push(usedSize);
    heap.peak_bytes = Math.max(heap.peak_bytes, usedSize);
    heap.to = await viewFrom();
    if (!moved || heap.from - heap.to >= back) break;
  }
  await cdp.send('HeapProfiler.collectGarbage');
  heap.after_gc_bytes = (await cdp.send('Runtime.getHeapUsage')).usedSize;
  await context.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify({ permalink, heap }));
