"""Whole-log navigation: line windows, whole-log search against grep, the index's size.

A finished 1 GiB log of ~10 M lines (~100 bytes each: training lines between tqdm bars
redrawn with \\r) is built with store.append in 4 MiB transactions, as the runner's writer
batches them, with ~100 lines carrying a rare word, then compacted as a runner does when its
run ends (compact_ended: the chunks get their search summaries). Server time is measured in
this process (logread, no HTTP): a 1,000-line window at 100 random lines; a search for the
rare word, a full scan (continuing at next_after) side by side with ``LC_ALL=C grep -c`` over
the same bytes in a file; the first page of that search (the first match is early); and the
index's bytes (newlines_before, time marks and their B-tree index, and the chunks' search
summaries) over the raw bytes.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select, text

from bench.harness import Config, MiB, Row, fmt_s, fresh_db, percentile, settle, verdict
from trainlog import logread, runs, store
from trainlog.db import Database, migrate
from trainlog.logread import search
from trainlog.models import ChunkSummary, LogChunk, RunSource, RunStatus
from trainlog.runner.compactor import compact_ended

BATCH = 4 * MiB
BLOCK = 16 * MiB
WORD = "grad-overflow"
WINDOW_P99_SECONDS = 0.050
FIRST_PAGE_SECONDS = 0.300
GREP_RATIO = 3.0
INDEX_FRACTION = 0.02


def lines_text(size: int, seed: int = 0) -> bytes:
    """Training output of ~100-byte lines: a tqdm bar redrawn a few times per line, then a
    line of figures; one line in ~100,000 carries WORD (one of them near the start)."""
    rng = random.Random(seed)
    parts: list[bytes] = []
    length, step = 0, 0
    while length < size:
        step += 1
        if step % 4 == 0:
            bar = "".join(f"\r{pct:3d}%|{'#' * (pct // 10):<10}|" for pct in (10, 60, 100))
            line = f"{bar} step {step}\n"
        elif step == 40 or rng.random() < 1 / 100_000:
            line = f"step {step}: {WORD} in layer {rng.randint(1, 48)}, scale halved\n"
        else:
            line = f"step {step} loss={rng.uniform(0.05, 3):.4f} lr={rng.random():.2e} ok\n"
        data = line.encode()
        parts.append(data)
        length += len(data)
    return b"".join(parts)[:size]


def run(config: Config) -> list[Row]:
    size = 16 * MiB if config.quick else 1024 * MiB
    rows: list[Row] = []
    block = lines_text(BLOCK)
    with tempfile.TemporaryDirectory(prefix="trainlog-nav-") as directory:
        raw = Path(directory) / "log.raw"
        with raw.open("wb") as out:
            for offset in range(0, size, BLOCK):
                out.write(block[: size - offset])
        for db_kind in config.dbs:
            with fresh_db(db_kind) as fresh:
                db = Database.connect(fresh.url)
                migrate(db.engine)
                started = time.monotonic()
                run_id = build(db, block, size)
                mib = size / MiB
                rows.append(
                    Row(
                        "navigation",
                        db_kind,
                        f"build {mib:.0f} MiB via store.append",
                        fmt_s(time.monotonic() - started),
                    )
                )
                settle(db_kind)
                rows.extend(_measure(db, db_kind, run_id, size, raw))
                db.dispose()
    return rows


def build(db: Database, block: bytes, size: int) -> uuid.UUID:
    with db.write() as session:
        run_id = runs.create(session, ["bench-navigation"], None, RunSource.CLI).id
        runs.mark_running(session, run_id, "bench", 0)
    offset = 0
    while offset < size:
        at = offset % len(block)
        piece = block[at : at + min(BATCH, size - offset)]
        with db.write() as session:
            store.append(session, run_id, offset, piece)
        offset += len(piece)
    with db.write() as session:
        runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)
    compact_ended(db, run_id, 0, size)
    return run_id


def _measure(db: Database, kind: str, run_id: uuid.UUID, size: int, raw: Path) -> list[Row]:
    mib = size / MiB
    totals = logread.line_totals(db, run_id)
    rng = random.Random(1)
    times = []
    for _ in range(100):
        start = rng.randint(1, totals.lines)
        began = time.perf_counter()
        window = logread.lines_window(db, run_id, start, None, 1000)
        times.append(time.perf_counter() - began)
        assert window.start == start and window.data
    p99 = percentile(times, 99)
    rows = [
        Row(
            "navigation",
            kind,
            f"{mib:.0f} MiB, {totals.lines:,} lines: 1,000-line window at 100 random lines",
            f"p99 {fmt_s(p99)}",
            f"median {fmt_s(percentile(times, 50))}",
            f"p99 <= {WINDOW_P99_SECONDS * 1000:.0f} ms",
            verdict(p99 <= WINDOW_P99_SECONDS),
        )
    ]

    grep_started = time.perf_counter()
    grep = subprocess.run(
        ["grep", "-c", WORD, str(raw)],
        env={**os.environ, "LC_ALL": "C"},
        capture_output=True,
        check=True,
    )
    grep_seconds = time.perf_counter() - grep_started
    query = search.matcher(WORD, False, False)
    scan_started = time.perf_counter()
    matches, after, requests = 0, 0, 0
    while True:
        found = search.search(db, run_id, query, after, search.MAX_MATCHES)
        matches += len(found.matches)
        requests += 1
        if found.next_after is None:
            break
        after = found.next_after
    scan_seconds = time.perf_counter() - scan_started
    ratio = scan_seconds / grep_seconds
    rows.append(
        Row(
            "navigation",
            kind,
            f"search {WORD!r}: full scan ({matches} matches, {requests} requests)",
            f"{fmt_s(scan_seconds)} ({mib / scan_seconds:.0f} MiB/s)",
            f"grep -c {fmt_s(grep_seconds)} ({int(grep.stdout)} lines)",
            f"ratio {ratio:.1f} <= {GREP_RATIO:.0f}",
            verdict(ratio <= GREP_RATIO and matches == int(grep.stdout)),
        )
    )
    first_started = time.perf_counter()
    first = search.search(db, run_id, query, 0, 100)
    first_seconds = time.perf_counter() - first_started
    rows.append(
        Row(
            "navigation",
            kind,
            "search: first page (first match early)",
            fmt_s(first_seconds),
            f"{len(first.matches)} matches",
            f"<= {FIRST_PAGE_SECONDS * 1000:.0f} ms",
            verdict(first_seconds <= FIRST_PAGE_SECONDS),
        )
    )
    index_bytes, summary_bytes = _index_bytes(db, kind, run_id)
    fraction = (index_bytes + summary_bytes) / size
    rows.append(
        Row(
            "navigation",
            kind,
            "line index + search summaries size / raw bytes",
            f"{fraction:.5f} ({index_bytes + summary_bytes:,} bytes)",
            f"line index {index_bytes:,}, summaries {summary_bytes:,}",
            f"<= {INDEX_FRACTION}",
            verdict(fraction <= INDEX_FRACTION),
        )
    )
    return rows


def _index_bytes(db: Database, kind: str, run_id: uuid.UUID) -> tuple[int, int]:
    """The line index: newlines_before (8 bytes a chunk), the time marks, and the (run_id,
    newlines_before, start_offset) B-tree (the log is the only one in this database); and
    the chunks' search summaries."""
    with db.read() as session:
        chunks, marks = session.execute(
            select(func.count(), func.sum(func.length(LogChunk.times))).where(
                LogChunk.run_id == run_id
            )
        ).one()
        summaries = session.scalar(
            select(func.sum(func.length(ChunkSummary.trigrams))).where(
                ChunkSummary.run_id == run_id
            )
        )
        if kind == "postgresql":
            btree = session.scalar(text("SELECT pg_relation_size('ix_log_chunks_lines')"))
        else:
            btree = session.scalar(
                text("SELECT SUM(pgsize) FROM dbstat WHERE name = 'ix_log_chunks_lines'")
            )
    return int(chunks) * 8 + int(marks or 0) + int(btree or 0), int(summaries or 0)
