"""End-to-end latency: child write -> SSE client receipt, on one machine (one clock).

bench/children.py `ticker` writes `tick <CLOCK_MONOTONIC ns>` every 20 ms under a real
`trainlog run`; probe viewers of a real server note each line's arrival. Modes, by server
environment: polling only (TRAINLOG_WAKEUPS=0); wake-ups on (=1); wake-ups with the viewer
on a second server process of the same database (the runner is a process of its own, as for
a run started through either server); and wake-ups with 1,000 viewers, of which 10 are
probes and the rest only drain their stream (timestamping in all of them would measure this
client's CPU, not the server). Ticks written before every viewer is connected and caught up
are ignored.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass

from bench.harness import (
    CHILDREN,
    PYTHON,
    Config,
    Row,
    Server,
    await_metric_followers,
    fresh_db,
    median,
    percentile,
    run_error,
    server,
    settle,
    start_trainlog_run,
    verdict,
)
from bench.sse_client import Viewer, all_caught_up, watch

POLL_INTERVAL = 0.2
PROBES = 10
SETTLE_SECONDS = 0.5


@dataclass(frozen=True)
class Mode:
    name: str
    wakeups: bool
    viewers: int
    p50_ms: float | None
    p99_ms: float
    # Viewers on a second server process of the same database (scale-out).
    replica: bool = False


def modes(config: Config) -> list[Mode]:
    many = 50 if config.quick else 1000
    return [
        Mode("polling", False, 1, None, POLL_INTERVAL * 1000 + 25),
        Mode("wake-ups", True, 1, 5, 25),
        Mode("wake-ups, viewer on a second server", True, 1, 5, 25, replica=True),
        Mode(f"wake-ups, {many} viewers", True, many, None, 250),
    ]


def run(config: Config) -> list[Row]:
    rows: list[Row] = []
    seconds = 0.5 if config.quick else 8.0
    reps = 1 if config.quick else 3
    for db in config.dbs:
        # One server per wake-up setting; each repetition is a new run in the same database.
        for wakeups in (False, True):
            env = {
                "TRAINLOG_POLL_INTERVAL": str(POLL_INTERVAL),
                "TRAINLOG_WAKEUPS": "1" if wakeups else "0",
            }
            with (
                fresh_db(db) as fresh,
                server(fresh.url, **env) as srv,
                server(fresh.url, **env) as replica,
            ):
                for mode in modes(config):
                    if mode.wakeups == wakeups:
                        settle(db)
                        target = replica if mode.replica else srv
                        results = [measure(target, fresh.url, mode, seconds) for _ in range(reps)]
                        rows.append(_row(db, mode, results))
    return rows


@dataclass(frozen=True)
class Result:
    p50: float
    p99: float
    max: float
    samples: int
    errors: int


def _row(db: str, mode: Mode, results: list[Result]) -> Row:
    p50 = median([r.p50 for r in results])
    p99 = median([r.p99 for r in results])
    worst = median([r.max for r in results])
    errors = sum(r.errors for r in results)
    ok = p99 <= mode.p99_ms and (mode.p50_ms is None or p50 <= mode.p50_ms) and not errors
    target = f"p99 <= {mode.p99_ms:.0f} ms"
    if mode.p50_ms is not None:
        target = f"p50 <= {mode.p50_ms:.0f} ms, {target}"
    return Row(
        "latency",
        db,
        mode.name,
        f"p50 {p50:.1f} / p99 {p99:.1f} / max {worst:.1f} ms",
        f"{sum(r.samples for r in results)} samples"
        + (f", {errors} viewer errors" if errors else ""),
        target,
        verdict(ok),
        {"repetitions": [r.__dict__ for r in results], "poll_interval": POLL_INTERVAL},
    )


def measure(srv: Server, url: str, mode: Mode, seconds: float, **run_env: str) -> Result:
    """``run_env``: for ``trainlog run`` (TRAINLOG_SERVER: a remote runner, bench/ingest.py)."""
    child = [PYTHON, CHILDREN, "ticker", str(seconds + SETTLE_SECONDS + 1)]
    process, run_id = start_trainlog_run(url, child, **run_env)
    viewers = [Viewer(run_id, mode="probe" if i < PROBES else "drain") for i in range(mode.viewers)]
    # This client's own garbage collections (tens of ms with 1,000 viewers) would be counted
    # as the server's latency; nothing it allocates while measuring needs them.
    gc.disable()
    try:
        asyncio.run(_follow(srv.port, viewers, timeout=seconds + 60))
    finally:
        gc.enable()
    if process.wait(30) != 0:
        raise RuntimeError(run_error(process))
    # The next repetition's run shares this database: it starts once this run's follower has
    # extracted its few lines and ended (fresh_db ends any follower only with the database).
    await_metric_followers(url)
    samples = [ms for v in viewers for ms in v.latencies_ms]
    if not samples:
        raise RuntimeError(f"no samples; viewer errors: {[v.errors for v in viewers][:3]}")
    return Result(
        percentile(samples, 50),
        percentile(samples, 99),
        max(samples),
        len(samples),
        sum(1 for v in viewers if not v.ok),
    )


async def _follow(port: int, viewers: list[Viewer], timeout: float) -> None:
    tasks = [asyncio.create_task(watch(port, v)) for v in viewers]
    await all_caught_up(viewers)
    # Count only ticks written once the server has settled into following the run (setting
    # up 1,000 streams at once keeps it busy for a while).
    record_after = time.monotonic_ns() + int(SETTLE_SECONDS * 1e9)
    for v in viewers:
        v.record_after_ns = record_after
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    for v in viewers:
        if v.done is None and not v.errors:
            v.errors.append("timed out")
