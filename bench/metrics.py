"""Metric extraction: what it costs capture, how soon it is done, and a huge series' read.

- Capture of a metrics-heavy flood (every line a step and three metrics) with extraction on
  (TRAINLOG_METRICS=1, the runner's niced follower process) and off, alternating, five times
  each, timed as the capture benchmark times it (child's first write to the run's recorded
  end). 64 MiB (about 0.35 s here): long enough that the follower is up and would be
  extracting well inside the window (at 16 MiB the flood was over in ~0.1 s, about as long
  as the follower takes to look twice). Each "on" repetition's follower is stopped once the
  run's end is recorded, so what it still has to do does not run into the next repetition
  (it would take minutes: extraction is resumable, nothing else depends on it). Target:
  extraction costs at most 10% of capture throughput (median time off / median time on >= 0.9).
- How long after the child's first write every point of a 16 MiB flood is stored, its
  follower left to finish (INFO; the size the figure had before).
- A finished run's series of 1,000,000 points (stored directly with their block summaries,
  not extracted), read through the API downsampled to 1,000 points (INFO), and its chart on
  the run page in Chromium (bench/chart.mjs): from the page's request for the series to the
  chart painted with it. Target: 500 ms.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.capture import _flood, _wall_t0, stored_size
from bench.harness import (
    Config,
    MiB,
    Row,
    browser_script,
    fmt_s,
    fresh_db,
    median,
    run_error,
    server,
    settle,
    start_trainlog_run,
    stop_followers,
    verdict,
    wait_followers_gone,
)
from trainlog import runs
from trainlog.db import Database, migrate
from trainlog.metrics.extract import Point
from trainlog.metrics.patterns import Rules
from trainlog.metrics.store import add_points, extraction_complete, open_cursor
from trainlog.models import MetricCursor, MetricPoint, RunSource, RunStatus

COST_TARGET = 0.9  # capture throughput with extraction, as a fraction of without
SERIES_POINTS = 1_000_000
CHART_POINTS = 1000
CHART_MS = 500  # the chart's data arrives and draws within this


def size(config: Config) -> int:
    """The flood whose capture is timed with and without extraction."""
    return 4 * MiB if config.quick else 64 * MiB


def extracted_size(config: Config) -> int:
    """The flood whose every point is waited for."""
    return 1 * MiB if config.quick else 16 * MiB


def capture(db_kind: str, nbytes: int, extract: bool, wait_extracted: bool = False) -> Captured:
    """Capture a metrics flood; with ``wait_extracted``, also wait until every point is
    stored and the follower has ended, else stop the follower once the run has ended."""
    settle(db_kind)
    with fresh_db(db_kind) as fresh, tempfile.TemporaryDirectory() as tmp:
        t0 = Path(tmp) / "t0"
        child = _flood("metrics", nbytes, t0)
        process, run_id = start_trainlog_run(
            fresh.url, child, TRAINLOG_METRICS="1" if extract else "0"
        )
        if process.wait() != 0:
            raise RuntimeError(run_error(process))
        stored, _, finished_at = stored_size(fresh.url, run_id)
        if stored != nbytes:
            raise RuntimeError(f"stored {stored} bytes of {nbytes}")
        seconds = (finished_at - _wall_t0(t0)).total_seconds()
        if not extract:
            return Captured(seconds, None, 0)
        if not wait_extracted:
            stop_followers(t0)
            return Captured(seconds, None, 0)
        db = Database.connect(fresh.url)
        try:
            while True:
                with db.read() as session:
                    if extraction_complete(session, run_id):
                        break
                time.sleep(0.05)
            done = time.time() - _wall_t0(t0).timestamp()
            with db.read() as session:
                points = session.scalar(select(func.count()).select_from(MetricPoint)) or 0
        finally:
            db.dispose()
        wait_followers_gone(t0)
    return Captured(seconds, done, points)


@dataclass(frozen=True)
class Captured:
    seconds: float  # to capture
    done: float | None  # until every point was stored, if waited for
    points: int


def _capture_rows(config: Config) -> list[Row]:
    nbytes, stored_bytes = size(config), extracted_size(config)
    repetitions = 1 if config.quick else 5
    rows: list[Row] = []
    for db_kind in config.dbs:
        off: list[float] = []
        on: list[float] = []
        for _ in range(repetitions):
            off.append(capture(db_kind, nbytes, extract=False).seconds)
            on.append(capture(db_kind, nbytes, extract=True).seconds)
        took_off, took_on = median(off), median(on)
        ratio = took_off / took_on
        mb = nbytes / MiB
        rows.append(
            Row(
                "metrics",
                db_kind,
                f"{mb:.0f} MiB metrics-heavy, pipe, extraction on",
                f"{fmt_s(took_on)} ({mb / took_on:.0f} MiB/s)",
                f"extraction off {fmt_s(took_off)} ({mb / took_off:.0f} MiB/s)",
                f"throughput ratio {ratio:.2f} >= {COST_TARGET}",
                verdict(ratio >= COST_TARGET),
                {"seconds_on": on, "seconds_off": off, "bytes": nbytes},
            )
        )
        extracted = capture(db_kind, stored_bytes, extract=True, wait_extracted=True)
        assert extracted.done is not None
        rows.append(
            Row(
                "metrics",
                db_kind,
                f"{stored_bytes / MiB:.0f} MiB metrics-heavy: every point stored",
                f"{fmt_s(extracted.done)} after the first write "
                f"({extracted.points / extracted.done:,.0f} points/s)",
                f"{extracted.points:,} points",
                "",
                "INFO",
                {"seconds": extracted.done, "capture_seconds": extracted.seconds},
            )
        )
    return rows


def _series_row(config: Config, db_kind: str) -> list[Row]:
    count = 100_000 if config.quick else SERIES_POINTS
    with fresh_db(db_kind) as fresh:
        db = Database.connect(fresh.url)
        migrate(db.engine)
        with db.write() as session:
            run_id = runs.create(session, ["true"], None, RunSource.CLI).id
            open_cursor(session, run_id, Rules())
            runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)
        batch = 50_000
        for start in range(0, count, batch):
            with db.write() as session:
                add_points(
                    session,
                    run_id,
                    start,
                    {"loss": start},
                    [
                        Point(
                            "loss",
                            float(seq),
                            2 * math.exp(-seq / count) + (seq % 97) / 1000,
                            seq + 1,
                            seq * 40,
                        )
                        for seq in range(start, min(count, start + batch))
                    ],
                    None,
                )
        with db.write() as session:
            cursor = session.get(MetricCursor, run_id)
            assert cursor is not None
            cursor.counts, cursor.last = {"loss": count}, {"loss": count - 1}
        db.dispose()
        with server(fresh.url) as running:
            url = f"{running.base}/api/runs/{run_id}/metrics/loss"
            seconds = []
            for _ in range(3):
                began = time.perf_counter()
                response = httpx.get(url, params={"max_points": CHART_POINTS}, timeout=60)
                seconds.append(time.perf_counter() - began)
                assert response.status_code == 200 and len(response.json()["points"]) <= 1000
            loads = _chart_loads(f"{running.base}/runs/{run_id}", 1 if config.quick else 5)
    drawn = [load["chart_ms"] for load in loads]
    return [
        Row(
            "metrics",
            db_kind,
            f"{count:,}-point series, downsampled to {CHART_POINTS}",
            f"{fmt_s(median(seconds))} (median of 3, HTTP)",
            "",
            "",
            "INFO",
            {"seconds": seconds},
        ),
        Row(
            "metrics",
            db_kind,
            f"{count:,}-point series: chart data arrives and draws (Chromium)",
            f"median {median(drawn):.0f} / max {max(drawn):.0f} ms",
            f"{len(loads)} loads, {loads[0]['points']} points drawn",
            f"max <= {CHART_MS} ms",
            verdict(max(drawn) <= CHART_MS),
            {"loads": loads},
        ),
    ]


def _chart_loads(run_page: str, loads: int) -> list[dict[str, Any]]:
    """The run page in Chromium (bench/chart.mjs): from the series' request to its chart
    painted, on the page's clock."""
    measured: list[dict[str, Any]] = browser_script("chart.mjs", run_page, "loss", str(loads))
    return measured


def run(config: Config) -> list[Row]:
    return [*_capture_rows(config), *(row for db in config.dbs for row in _series_row(config, db))]
