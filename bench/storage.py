"""Storage: bytes on disk per byte of log, for tqdm-heavy text and for random bytes.

Captured through a real `trainlog run` (so whatever the runner does to a finished log, such
as compressing its chunks, is included), on a fresh database. On disk means:
- SQLite: pages in use in the file after a WAL checkpoint, minus those of an empty database
  (freed pages are not counted: a VACUUM would give them back);
- PostgreSQL: pg_total_relation_size (heap, TOAST, indexes) of log_chunks and training_logs
  after a VACUUM of them, so dead rows from compaction do not count.
PostgreSQL already compresses large bytea values (TOAST, pglz), so its raw figure is lower.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import Engine, text

from bench.capture import _flood
from bench.harness import (
    Config,
    MiB,
    Row,
    engine_for,
    fresh_db,
    run_error,
    start_trainlog_run,
    verdict,
)

LIMITS = {"tqdm": 0.35, "random": 1.1}


def run(config: Config) -> list[Row]:
    size = 2 * MiB if config.quick else 64 * MiB
    rows: list[Row] = []
    for db_kind in config.dbs:
        for kind, limit in LIMITS.items():
            used = measure(db_kind, kind, size)
            ratio = used / size
            rows.append(
                Row(
                    "storage",
                    db_kind,
                    f"{size // MiB} MiB {kind}",
                    f"{ratio:.3f} bytes/byte",
                    f"{used / MiB:.1f} MiB on disk",
                    f"<= {limit}",
                    verdict(ratio <= limit),
                    {"log_bytes": size, "disk_bytes": used},
                )
            )
    return rows


def measure(db_kind: str, kind: str, size: int) -> int:
    with fresh_db(db_kind) as fresh, tempfile.TemporaryDirectory() as tmp:
        engine = engine_for(fresh.url)
        process, _ = start_trainlog_run(fresh.url, _flood(kind, size, Path(tmp) / "t0"))
        if process.wait() != 0:
            raise RuntimeError(run_error(process))
        used = _used(engine, fresh.schema)
        if fresh.schema is None:
            used -= _empty_sqlite_bytes()
        engine.dispose()
    return used


def _used(engine: Engine, schema: str | None) -> int:
    if schema is None:
        with engine.connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = c.exec_driver_sql("PRAGMA page_count").scalar() or 0
            free = c.exec_driver_sql("PRAGMA freelist_count").scalar() or 0
            page = c.exec_driver_sql("PRAGMA page_size").scalar() or 0
            return int((pages - free) * page)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        total = 0
        for table in ("log_chunks", "training_logs"):
            c.exec_driver_sql(f"VACUUM {schema}.{table}")
            total += int(c.scalar(text(f"SELECT pg_total_relation_size('{schema}.{table}')")))
        return total


def _empty_sqlite_bytes() -> int:
    from trainlog.db import Database, migrate

    with fresh_db("sqlite") as fresh:
        db = Database.connect(fresh.url)
        migrate(db.engine)
        used = _used(db.engine, None)
        db.dispose()
    return used
