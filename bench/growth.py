"""Growth: capture time must grow linearly with the log, and why the log is stored as chunks.

1. The capture medians at the two sizes (reused from the capture benchmark of the same run):
   time(4x bytes) <= 4.4 x time(x bytes).
2. The design's first store, one row per log rewritten by `data = data || chunk`, against
   trainlog's chunk store, both fed 4 KiB appends, one transaction each, at small sizes. The
   single-row table is bench-only; it shows the quadratic cost (and the table bloat).
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import Engine, text

from bench import capture
from bench.children import tqdm_text
from bench.harness import Config, MiB, Row, engine_for, fmt_s, fresh_db, verdict
from trainlog import runs, store
from trainlog.db import Database, migrate
from trainlog.models import RunSource

GROWTH_LIMIT = 4.4
APPEND_BYTES = 4096
# A single-row size that takes longer than this is cut short: its row says "> CAP".
SINGLE_ROW_CAP_SECONDS = 90.0


def run(config: Config) -> list[Row]:
    rows: list[Row] = []
    small, large = capture.sizes(config)
    factor = large / small
    limit = GROWTH_LIMIT * factor / 4
    for db in config.dbs:
        t_small = capture.trainlog_median(db, small, capture.repetitions(config))
        t_large = capture.trainlog_median(db, large, capture.repetitions(config))
        ratio = t_large / t_small
        rows.append(
            Row(
                "growth",
                db,
                f"capture {large // MiB} vs {small // MiB} MiB",
                f"{fmt_s(t_large)} / {fmt_s(t_small)} = {ratio:.2f}x",
                "",
                f"<= {limit:.1f}x",
                verdict(ratio <= limit),
                {"small_seconds": t_small, "large_seconds": t_large},
            )
        )
    append_sizes = [64 * 1024, 256 * 1024] if config.quick else [1 * MiB, 2 * MiB, 4 * MiB]
    for db in config.dbs:
        rows.extend(_append_rows(db, append_sizes))
    return rows


def _append_rows(db_kind: str, sizes: list[int]) -> list[Row]:
    rows: list[Row] = []
    chunks_first = single_first = None
    capped = False
    for size in sizes:
        data = tqdm_text(size)
        chunk_s, chunk_bytes = _chunk_store(db_kind, data)
        chunks_first = chunks_first or chunk_s
        single_s: float | None = None
        single_bytes = 0
        if not capped:
            single_s, single_bytes = _single_row(db_kind, data)
            capped = single_s is None
            single_first = single_first or single_s
        label = f"{size / MiB:g} MiB in 4 KiB appends"
        single_text = (
            f"> {SINGLE_ROW_CAP_SECONDS:.0f} s (cut short)"
            if single_s is None
            else f"{fmt_s(single_s)}, table {single_bytes / MiB:.0f} MiB"
        )
        growth = (
            ""
            if single_s is None or single_first is None
            else (
                f"bytes x{size / sizes[0]:g}: time single-row x{single_s / single_first:.1f},"
                f" chunks x{chunk_s / chunks_first:.1f}"
            )
        )
        rows.append(
            Row(
                "growth",
                db_kind,
                label,
                f"chunks {fmt_s(chunk_s)}, table {chunk_bytes / MiB:.1f} MiB",
                f"single row {single_text}",
                growth,
                "INFO",
                {
                    "bytes": size,
                    "chunk_seconds": chunk_s,
                    "chunk_table_bytes": chunk_bytes,
                    "single_row_seconds": single_s,
                    "single_row_table_bytes": single_bytes,
                },
            )
        )
    return rows


def _pieces(data: bytes) -> list[bytes]:
    return [data[i : i + APPEND_BYTES] for i in range(0, len(data), APPEND_BYTES)]


def _chunk_store(db_kind: str, data: bytes) -> tuple[float, int]:
    with fresh_db(db_kind) as fresh:
        db = Database.connect(fresh.url)
        migrate(db.engine)
        with db.write() as session:
            run_id = runs.create(session, ["bench"], None, RunSource.CLI).id
        started = time.monotonic()
        offset = 0
        for piece in _pieces(data):
            with db.write() as session:
                offset = store.append(session, run_id, offset, piece)
        seconds = time.monotonic() - started
        size = _table_bytes(db.engine, fresh.schema, "log_chunks")
        db.dispose()
    return seconds, size


def _single_row(db_kind: str, data: bytes) -> tuple[float | None, int]:
    with fresh_db(db_kind) as fresh:
        engine = engine_for(fresh.url)
        blob = "BYTEA" if db_kind == "postgresql" else "BLOB"
        with engine.begin() as c:
            c.execute(text(f"CREATE TABLE bench_single_row (run_id TEXT PRIMARY KEY, data {blob})"))
            c.execute(
                text("INSERT INTO bench_single_row VALUES (:id, :empty)"),
                {"id": str(uuid.uuid4()), "empty": b""},
            )
        # SQLite's || yields TEXT; the cast keeps the column a BLOB (the bench text has no NUL).
        concat = "data || :chunk" if db_kind == "postgresql" else "CAST(data || :chunk AS BLOB)"
        update = text(f"UPDATE bench_single_row SET data = {concat}")
        started = time.monotonic()
        seconds: float | None = None
        for piece in _pieces(data):
            with engine.begin() as c:
                c.execute(update, {"chunk": piece})
            if time.monotonic() - started > SINGLE_ROW_CAP_SECONDS:
                break
        else:
            seconds = time.monotonic() - started
        size = _table_bytes(engine, fresh.schema, "bench_single_row")
        engine.dispose()
    return seconds, size


def _table_bytes(engine: Engine, schema: str | None, table: str) -> int:
    """On-disk size of a table with its TOAST and indexes (PostgreSQL), or of the pages the
    SQLite file uses (the bench tables are nearly all of it)."""
    with engine.connect() as c:
        if schema is not None:
            return int(c.scalar(text(f"SELECT pg_total_relation_size('{schema}.{table}')")) or 0)
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = c.exec_driver_sql("PRAGMA page_count").scalar() or 0
        free = c.exec_driver_sql("PRAGMA freelist_count").scalar() or 0
        page = c.exec_driver_sql("PRAGMA page_size").scalar() or 0
        return int((pages - free) * page)
