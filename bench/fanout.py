"""Fan-out: 1, 100 and 1,000 concurrent SSE viewers of one live run.

Every viewer checks that it got every byte exactly once (event ids are offsets, so each must
follow the last; a CRC of what it got must match the stored log). Over a steady window,
after every viewer has connected and caught up, we count the server's SQL statements
(bench/served.py), its CPU and peak RSS, and the runner's appends in the window (new chunk
rows). The store-read budget is one size check plus one chunk read per wake-up or poll
interval, per run, per server process: it must not grow with the number of viewers.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib

from sqlalchemy import func, select

from bench.harness import (
    CHILDREN,
    PYTHON,
    Config,
    MiB,
    Row,
    Server,
    fresh_db,
    run_error,
    server,
    start_trainlog_run,
    verdict,
)
from bench.sse_client import Viewer, all_caught_up, watch
from trainlog import logread, store
from trainlog.db import Database
from trainlog.models import LogChunk

POLL_INTERVAL = 0.2
RSS_LIMIT = 300 * MiB
SETTLE_SECONDS = 1.0
# A trainer-like trickle: a ~250-byte line every 20 ms.
TICK_SECONDS, PAD = 0.02, 200


def run(config: Config) -> list[Row]:
    counts = (1, 10) if config.quick else (1, 100, 1000)
    window = 0.5 if config.quick else 10.0
    rows = []
    for db_kind in config.dbs:
        # One server for every count: each count watches a new run in the same database.
        with (
            fresh_db(db_kind) as fresh,
            server(
                fresh.url, TRAINLOG_POLL_INTERVAL=str(POLL_INTERVAL), TRAINLOG_WAKEUPS="1"
            ) as srv,
        ):
            db = Database.connect(fresh.url)
            for n in counts:
                rows.append(measure(srv, db, fresh.url, n, window))
            db.dispose()
    return rows


def measure(srv: Server, db: Database, url: str, viewers_n: int, window: float) -> Row:
    duration = window + SETTLE_SECONDS + 2 + viewers_n / 200
    child = [PYTHON, CHILDREN, "ticker", f"{duration:.1f}", str(TICK_SECONDS), str(PAD)]
    process, run_id = start_trainlog_run(url, child)
    viewers = [Viewer(run_id) for _ in range(viewers_n)]
    stats = asyncio.run(_observe(srv, db, run_id, viewers, window))
    if process.wait(60) != 0:
        raise RuntimeError(run_error(process))
    expected_crc, size = _stored_crc(db, run_id)
    wrong = [v for v in viewers if not v.ok or v.crc != expected_crc or v.position != size]
    reads_per_s = stats["store_reads"] / window
    appends_per_s = stats["appends"] / window
    budget = 2 * (1 / POLL_INTERVAL + appends_per_s)
    rss_ok = viewers_n < 1000 or stats["rss_peak"] <= RSS_LIMIT
    target = f"store reads/s <= {budget:.0f}" + (", RSS <= 300 MiB" if viewers_n >= 1000 else "")
    sample_error = next((v.errors[:1] for v in wrong), [])
    return Row(
        "fanout",
        db_kind_of(url),
        f"{viewers_n} viewers",
        f"{reads_per_s:.0f} store reads/s ({stats['statements'] / window:.0f} stmts/s), "
        f"CPU {stats['cpu_percent']:.0f}%, RSS {stats['rss_peak'] / MiB:.0f} MiB",
        f"{appends_per_s:.0f} appends/s; {viewers_n - len(wrong)}/{viewers_n} exact",
        target,
        verdict(not wrong and reads_per_s <= budget and rss_ok),
        {
            **stats,
            "window_seconds": window,
            "viewers_wrong": len(wrong),
            "log_bytes": size,
            "first_error": sample_error,
        },
    )


def db_kind_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


async def _observe(
    srv: Server, db: Database, run_id: uuid.UUID, viewers: list[Viewer], window: float
) -> dict[str, float]:
    tasks = [asyncio.create_task(watch(srv.port, v)) for v in viewers]
    await all_caught_up(viewers)
    await asyncio.sleep(SETTLE_SECONDS)
    q0, chunks0 = srv.queries(), _chunks(db, run_id)
    with srv.watch() as usage:
        await asyncio.sleep(window)
    q1, chunks1 = srv.queries(), _chunks(db, run_id)
    await asyncio.wait(tasks, timeout=120)
    for v in viewers:
        if v.done is None and not v.errors:
            v.errors.append("timed out")
    return {
        "store_reads": q1.get("store_reads", 0) - q0.get("store_reads", 0),
        "statements": q1.get("statements", 0) - q0.get("statements", 0),
        "appends": chunks1 - chunks0,
        "cpu_percent": usage.cpu_percent,
        "rss_start": usage.rss_start,
        "rss_peak": usage.rss_peak,
    }


def _chunks(db: Database, run_id: uuid.UUID) -> int:
    # Each small append stores exactly one chunk row, so new rows = the runner's appends.
    with db.read() as session:
        return int(session.scalar(select(func.count()).where(LogChunk.run_id == run_id)) or 0)


def _stored_crc(db: Database, run_id: uuid.UUID) -> tuple[int, int]:
    with db.read() as session:
        size = store.log_size(session, run_id)
    crc = 0
    for page in logread.iter_bytes(db, run_id, 0, size):
        crc = zlib.crc32(page, crc)
    return crc, size
