"""Huge log: a finished 1 GiB log served by every endpoint, with the server's peak RSS.

The log is built in this process with trainlog.store.append (4 MiB transactions of 1 MiB
chunks, as the runner's writer batches them) from tqdm-style text, and the run is marked
finished; going through a child and the runner would only add minutes of setup. Its 1 MiB
chunks are zstd-compressed on the way in, as a flood's are, so every endpoint decompresses.
Peak RSS growth is the server's RSS high water mark during the request minus its RSS just
before.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from collections.abc import Callable
from functools import partial

import httpx

from bench.children import tqdm_text
from bench.harness import (
    Config,
    MiB,
    Row,
    Server,
    fmt_s,
    fresh_db,
    median,
    server,
    settle,
    verdict,
)
from bench.sse_client import Viewer, watch
from trainlog import runs, store
from trainlog.db import Database, migrate
from trainlog.models import RunSource, RunStatus

RSS_GROWTH_LIMIT = 64 * MiB
RAW_MB_S = 200
TAIL_BYTES = 5 * MiB
TAIL_SECONDS = 0.1
BATCH = 4 * MiB


def run(config: Config) -> list[Row]:
    size = 8 * MiB if config.quick else 1024 * MiB
    # Passes over the whole log take seconds each; the tails, milliseconds.
    reps = 1 if config.quick else 3
    rows: list[Row] = []
    for db_kind in config.dbs:
        with fresh_db(db_kind) as fresh:
            started = time.monotonic()
            run_id, crc = build(fresh.url, size)
            built = time.monotonic() - started
            settle(db_kind)
            # One client for all requests, as a browser keeps one: a new httpx client loads
            # TLS certificates even for plain HTTP (25-55 ms here), no part of serving a log.
            with server(fresh.url) as srv, httpx.Client(timeout=300) as client:
                rows.extend(_measure(srv, client, db_kind, run_id, size, crc, built, reps))
    return rows


def build(url: str, size: int) -> tuple[uuid.UUID, int]:
    db = Database.connect(url)
    migrate(db.engine)
    with db.write() as session:
        run_id = runs.create(session, ["bench-huge-log"], None, RunSource.CLI).id
        runs.mark_running(session, run_id, "bench", 0)
    block = tqdm_text(16 * MiB)
    crc, offset = 0, 0
    while offset < size:
        at = offset % len(block)
        piece = block[at : at + min(BATCH, size - offset)]
        with db.write() as session:
            store.append(session, run_id, offset, piece)
        crc = zlib.crc32(piece, crc)
        offset += len(piece)
    with db.write() as session:
        runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)
    db.dispose()
    return run_id, crc


def _measure(
    srv: Server,
    client: httpx.Client,
    db: str,
    run_id: uuid.UUID,
    size: int,
    crc: int,
    built: float,
    reps: int,
) -> list[Row]:
    mib = size / MiB
    rows = [
        Row(
            "hugelog",
            db,
            f"build {mib:.0f} MiB via store.append",
            fmt_s(built),
            f"{mib / built:.0f} MiB/s",
        )
    ]
    base = f"{srv.base}/api/runs/{run_id}/logs"
    download = partial(_download, client)
    cases: dict[str, Callable[[], None]] = {
        "GET logs/raw": lambda: download(f"{base}/raw", size),
        "GET logs (JSON)": lambda: download(base, 4 * -(-size // 3)),
        "SSE replay from 0": lambda: _sse(srv.port, run_id, 0, size, crc),
        "SSE tail (size-5MiB)": lambda: _sse(srv.port, run_id, size - TAIL_BYTES, size, None),
        # What the web viewer loads first for a big log.
        "JSON tail (offset=size-5MiB)": lambda: download(
            f"{base}?offset={size - TAIL_BYTES}", 4 * -(-TAIL_BYTES // 3)
        ),
    }
    for name, action in cases.items():
        times, growths = [], []
        for _ in range(reps if "tail" not in name else max(reps, 5)):
            with srv.watch(every=0.01) as usage:
                started = time.monotonic()
                action()
                times.append(time.monotonic() - started)
            growths.append(usage.rss_peak - usage.rss_start)
        took, growth = median(times), max(growths)
        ok = growth <= RSS_GROWTH_LIMIT
        target = "RSS growth <= 64 MiB"
        if "raw" in name:
            ok = ok and mib / took >= RAW_MB_S
            target += f", >= {RAW_MB_S} MiB/s"
        if "tail" in name:
            ok = ok and took <= TAIL_SECONDS
            target += f", <= {TAIL_SECONDS * 1000:.0f} ms"
        rate = "" if "tail" in name else f" ({mib / took:.0f} MiB/s)"
        rows.append(
            Row(
                "hugelog",
                db,
                f"{mib:.0f} MiB: {name}",
                f"{fmt_s(took)}{rate}",
                f"peak RSS +{growth / MiB:.0f} MiB (worst rep)",
                target,
                verdict(ok),
                {"seconds": times, "rss_growth": growths, "log_bytes": size},
            )
        )
    return rows


def _download(client: httpx.Client, url: str, at_least: int) -> None:
    received = 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for piece in response.iter_raw(1 << 20):
            received += len(piece)
    if received < at_least:
        raise RuntimeError(f"{url}: {received} bytes, expected at least {at_least}")


def _sse(port: int, run_id: uuid.UUID, offset: int, size: int, crc: int | None) -> None:
    viewer = asyncio.run(watch(port, Viewer(run_id, offset=offset)))
    if not viewer.ok or viewer.position != size or (crc is not None and viewer.crc != crc):
        raise RuntimeError(f"SSE from {offset}: {viewer.errors[:2]} at {viewer.position}")
