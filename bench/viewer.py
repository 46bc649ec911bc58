"""The run page's viewer in Chromium: a permalink deep into a huge log, and the tab's memory.

A finished log of >= 5 M lines (bench.navigation's training text, ~45 bytes a line, built
with store.append in 4 MiB transactions) behind a real `trainlog serve` (web/dist, as `make
web` builds it). bench/viewer.mjs (the repository's Playwright) opens ``/runs/{id}#L5000000``
in fresh pages and takes the page's own clock when that line is in view, highlighted, and
the terminal shows the stored line beside its number; then, in one page, scrolls back from
there across 50,000 lines, window by window, noting the JS heap in use (CDP) after each.
"""

from __future__ import annotations

from bench.harness import (
    REPO,
    Config,
    MiB,
    Row,
    browser_script,
    fmt_s,
    fresh_db,
    median,
    server,
    settle,
    verdict,
)
from bench.navigation import BLOCK, build, lines_text
from trainlog.db import Database, migrate

PERMALINK_SECONDS = 2.0
HEAP_BYTES = 300 * 1000 * 1000


def run(config: Config) -> list[Row]:
    # ~45 bytes a line: 240 MiB is ~5.6 M lines; --quick, 16 MiB (~370,000).
    size = 16 * MiB if config.quick else 240 * MiB
    line = 200_000 if config.quick else 5_000_000
    back = 10_000 if config.quick else 50_000
    loads = 1 if config.quick else 3
    if not (REPO / "web" / "dist" / "index.html").exists():
        raise RuntimeError("web/dist is not built: run `make web` first")
    block = lines_text(BLOCK)
    rows: list[Row] = []
    for db_kind in config.dbs:
        with fresh_db(db_kind) as fresh:
            db = Database.connect(fresh.url)
            migrate(db.engine)
            run_id = build(db, block, size)
            db.dispose()
            settle(db_kind)
            with server(fresh.url) as srv:
                rows.extend(_measure(srv.base, str(run_id), db_kind, size, line, loads, back))
    return rows


def _measure(
    base: str, run_id: str, db: str, size: int, line: int, loads: int, back: int
) -> list[Row]:
    measured = browser_script(
        "viewer.mjs", base, run_id, str(line), str(loads), str(back), timeout=900
    )
    shown = [load["ms"] / 1000 for load in measured["permalink"]]
    right = all(load["ok"] for load in measured["permalink"])
    worst = max(shown)
    heap = measured["heap"]
    crossed = heap["from"] - heap["to"]
    mib = size / MiB
    return [
        Row(
            "viewer",
            db,
            f"{mib:.0f} MiB log: permalink #L{line:,} in view, highlighted (Chromium)",
            f"median {fmt_s(median(shown))} / max {fmt_s(worst)}",
            f"{loads} fresh loads{'' if right else '; WRONG LINE SHOWN'}",
            f"max <= {PERMALINK_SECONDS:.0f} s",
            verdict(worst <= PERMALINK_SECONDS and right),
            {"loads": measured["permalink"]},
        ),
        Row(
            "viewer",
            db,
            f"scroll back {crossed:,} lines from line {heap['from']:,}: tab's JS heap",
            f"peak {heap['peak_bytes'] / 1e6:.0f} MB",
            f"{heap['windows']} windows loaded; {heap['after_gc_bytes'] / 1e6:.0f} MB after GC",
            f"<= {HEAP_BYTES / 1e6:.0f} MB over >= {back:,} lines",
            verdict(heap["peak_bytes"] <= HEAP_BYTES and crossed >= back),
            {"heap": heap},
        ),
    ]
