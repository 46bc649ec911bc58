"""Deleting runs, one or by age, without stalling the runs still being captured.

A delete first marks the run (one short transaction: from then on it is gone to every
reader, and its open streams end with ``deleted``), then removes its metric points and its
log's chunks in bounded batches from the end backwards, each batch its own short
transaction, and last the run's row: ON DELETE CASCADE takes its log row, its tags and
whatever else (a few rows) hangs off the run or its log. A delete cut short (a crash)
leaves a marked run; the next delete, gc or retention sweep finishes it.

Space: on SQLite the freed pages are given back to the file system after each batch (a file
created by trainlog uses incremental auto-vacuum); on PostgreSQL the rows are deleted and
autovacuum makes their space reusable (the files do not shrink by themselves).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from anyio import to_thread
from sqlalchemy import Connection, delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from trainlog import runs
from trainlog.db import Database
from trainlog.metrics import store as metrics_store
from trainlog.models import (
    ACTIVE_STATUSES,
    ChunkSummary,
    ExperimentRun,
    LogChunk,
    MetricPoint,
    RunStatus,
    utcnow,
)

log = logging.getLogger(__name__)

# Log bytes whose chunks one transaction removes (one compacted chunk): on SQLite the whole
# database waits for each (its write lock), so they stay short.
DELETE_WINDOW_BYTES = 1024 * 1024
# Metric points one transaction removes (about as many bytes of rows and index as a window).
DELETE_WINDOW_POINTS = 10_000
# A pause between batches at least as long as the batch took, so a delete holds the write lock
# half the time at most and other runs' appends never queue behind several batches in a row
# (at 4 MiB windows and 2 ms pauses, a 1 GiB delete on a loaded machine took SQLite's wake-up
# p99 from 62 ms to 2.2 s).
MIN_PAUSE_SECONDS = 0.002
# SQLite pages given back per step, each step under the write lock (a batch's pages are a
# step or two: a 1 MiB chunk of log, compressed, is about 40).
RELEASE_PAGES = 64

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w``."""
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 90m (a number and s/m/h/d/w)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def delete_run(db: Database, run_id: uuid.UUID) -> None:
    """Delete a finished run and everything stored for it; RunNotFound, RunIsActive."""
    with db.write() as session:
        runs.begin_delete(session, run_id)
    purge(db, run_id)


def purge(db: Database, run_id: uuid.UUID) -> None:
    """Remove the rows of a run marked deleted, in bounded batches, then give space back."""
    with db.read() as session:
        last_seq = session.scalar(
            select(func.max(MetricPoint.seq)).where(MetricPoint.run_id == run_id)
        )
        end = session.scalar(
            select(func.max(LogChunk.start_offset + LogChunk.length)).where(
                LogChunk.run_id == run_id
            )
        )
    # Each batch one statement, a transaction of its own (Database.deleting), and its pages
    # given back before the next: SQLite searches the free list for each page it moves, so a
    # step's time grows with the list (32 pages took 4 ms a step with a whole 1 GiB log's
    # pages on it), where one batch's pages take a few hundredths of a millisecond.
    with db.deleting() as connection:
        # Points are numbered from 0 without gaps, so a window of seqs is a batch of rows.
        upper = last_seq + 1 if last_seq is not None else 0
        while upper > 0:
            lower = max(0, upper - DELETE_WINDOW_POINTS)
            with _paced():
                metrics_store.delete_points(connection, run_id, lower, upper)
            _give_back(db, connection)
            upper = lower
        # From the end backwards: a reader still inside the log meanwhile finds it shorter,
        # never with a hole in it.
        upper = end or 0
        while upper > 0:
            lower = max(0, upper - DELETE_WINDOW_BYTES)
            for table in (ChunkSummary, LogChunk):  # the summaries too, not all at the end
                with _paced():
                    connection.execute(
                        delete(table).where(
                            table.run_id == run_id,
                            table.start_offset >= lower,
                            table.start_offset < upper,
                        )
                    )
            _give_back(db, connection)
            upper = lower
        connection.execute(delete(ExperimentRun).where(ExperimentRun.id == run_id))
        _give_back(db, connection)
    # What the last batches wrote, into the file now: it has shrunk when the delete returns.
    db.checkpoint()


def _give_back(db: Database, connection: Connection) -> None:
    """Return SQLite's free pages to the file system, RELEASE_PAGES a step, each step paced
    (PostgreSQL: autovacuum's)."""
    if db.engine.dialect.name != "sqlite":
        return
    left = True
    while left:
        with _paced():
            left = db.release_free_space(RELEASE_PAGES, connection) > 0


@contextmanager
def _paced() -> Iterator[None]:
    """Run the block, then wait as long as it took (MIN_PAUSE_SECONDS at least)."""
    started = time.monotonic()
    yield
    time.sleep(max(MIN_PAUSE_SECONDS, time.monotonic() - started))


@dataclass(frozen=True)
class Doomed:
    """A run gc would delete, with what a person deciding needs to see."""

    run_id: uuid.UUID
    status: str
    created_at: datetime
    label: str


def select_expired(
    db: Database, before: datetime, statuses: Iterable[RunStatus] = ()
) -> list[Doomed]:
    """Finished runs created before ``before`` (of the given statuses, if any), oldest first."""
    wanted = [str(s) for s in statuses] or [str(s) for s in RunStatus if s not in ACTIVE_STATUSES]
    query = (
        select(ExperimentRun)
        .where(
            ExperimentRun.deleted_at.is_(None),
            ExperimentRun.created_at < before,
            ExperimentRun.status.in_(wanted),
            ExperimentRun.status.not_in([str(s) for s in ACTIVE_STATUSES]),
        )
        .order_by(ExperimentRun.created_at)
    )
    with db.read() as session:
        return [
            Doomed(
                run.id, run.status, run.created_at, run.name or run.config or " ".join(run.command)
            )
            for run in session.scalars(query)
        ]


def unfinished_deletes(db: Database) -> list[uuid.UUID]:
    """Runs marked deleted whose rows are still there (a delete was cut short)."""
    with db.read() as session:
        return list(
            session.scalars(select(ExperimentRun.id).where(ExperimentRun.deleted_at.is_not(None)))
        )


def collect(db: Database, before: datetime, statuses: Iterable[RunStatus] = ()) -> Iterator[Doomed]:
    """Finish cut-short deletes, then delete what select_expired finds, yielding each run as
    it goes. A run that went meanwhile (deleted by someone else) is skipped."""
    for run_id in unfinished_deletes(db):
        purge(db, run_id)
    for doomed in select_expired(db, before, statuses):
        try:
            delete_run(db, doomed.run_id)
        except (runs.RunNotFound, runs.RunIsActive):
            continue
        yield doomed


def _sweep(db: Database, keep: timedelta) -> None:
    for doomed in collect(db, utcnow() - keep):
        log.info(
            "retention: deleted run %s (%s, created %s)",
            doomed.run_id,
            doomed.status,
            doomed.created_at.isoformat(),
        )


# How often the server applies TRAINLOG_RETENTION.
RETENTION_INTERVAL_SECONDS = 3600.0


async def apply_retention(db: Database, keep: timedelta, interval: float) -> None:
    """Delete finished runs older than ``keep`` every ``interval`` seconds, for as long as the
    server lives (several replicas may do it at once: each run is deleted once)."""
    while True:
        try:
            await to_thread.run_sync(_sweep, db, keep)
        except SQLAlchemyError as exc:
            # The type only: an error's text may carry SQL, parameters or where the database is.
            log.warning(
                "retention: database unavailable (%s); trying again later", type(exc).__name__
            )
        await asyncio.sleep(interval)
