"""Run records: creating, listing and moving runs through their lifecycle."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from trainlog import store
from trainlog.lineindex import line_count
from trainlog.models import (
    ACTIVE_STATUSES,
    ExperimentRun,
    RunSource,
    RunStatus,
    TrainingLog,
    utcnow,
)
from trainlog.notify import announce

# Serializes "count active runs, then insert" across server replicas on PostgreSQL.
_ADMISSION_LOCK_KEY = 7_341_001


class RunNotFound(LookupError):
    pass


class TooManyActiveRuns(Exception):
    def __init__(self, active: Sequence[ExperimentRun]) -> None:
        self.active = list(active)
        ids = ", ".join(str(run.id) for run in self.active)
        super().__init__(f"run {ids} is already active; wait for it to finish or cancel it")


class RunNotActive(Exception):
    def __init__(self, run: ExperimentRun) -> None:
        super().__init__(f"run {run.id} is not active (status {run.status})")


@dataclass(frozen=True)
class RunView:
    """A run with the size of its log, as the API and CLI show it."""

    run: ExperimentRun
    log_size: int
    line_count: int | None = None  # None: a log stored before the line index, not indexed yet


def get(session: Session, run_id: uuid.UUID) -> ExperimentRun:
    run = session.get(ExperimentRun, run_id)
    if run is None:
        raise RunNotFound(f"run {run_id} not found")
    return run


def view(session: Session, run_id: uuid.UUID) -> RunView:
    run = get(session, run_id)
    return RunView(run, *store.log_size_and_lines(session, run_id))


def list_views(session: Session, limit: int = 200) -> list[RunView]:
    rows = session.execute(
        select(ExperimentRun, TrainingLog.size, TrainingLog.newlines, TrainingLog.last_line_start)
        .join(TrainingLog, TrainingLog.run_id == ExperimentRun.id)
        .order_by(ExperimentRun.created_at.desc())
        .limit(limit)
    )
    return [RunView(run, size, line_count(size, *lines)) for run, size, *lines in rows]


def active(session: Session, source: RunSource | None = None) -> list[ExperimentRun]:
    query = select(ExperimentRun).where(ExperimentRun.status.in_(ACTIVE_STATUSES))
    if source is not None:
        query = query.where(ExperimentRun.source == source)
    return list(session.scalars(query.order_by(ExperimentRun.created_at)))


def create(
    session: Session,
    command: list[str],
    config: str | None,
    source: RunSource,
    max_active: int | None = None,
) -> ExperimentRun:
    """Insert a queued run and its empty log.

    With ``max_active``, refuse when that many runs of the same source are already active
    (the limit protects the server's machine; ``trainlog run`` elsewhere does not count).
    """
    if max_active is not None:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADMISSION_LOCK_KEY})
        running = active(session, source)
        if len(running) >= max_active:
            raise TooManyActiveRuns(running)
    now = utcnow()
    run = ExperimentRun(
        id=uuid.uuid4(),
        command=command,
        config=config,
        status=RunStatus.QUEUED,
        source=source,
        created_at=now,
        cancel_requested=False,
        pty=False,
        log_truncated=False,
    )
    session.add(run)
    session.flush()
    store.create_log(session, run.id)
    return run


def mark_running(
    session: Session,
    run_id: uuid.UUID,
    host: str,
    pid: int,
    terminal: tuple[int, int] | None = None,
) -> None:
    """Record the runner, and the child's terminal: (columns, rows) of its pty, None for a pipe."""
    cols, rows = terminal if terminal is not None else (None, None)
    session.execute(
        update(ExperimentRun)
        .where(ExperimentRun.id == run_id)
        .values(
            status=RunStatus.RUNNING,
            started_at=func.coalesce(ExperimentRun.started_at, utcnow()),
            heartbeat_at=utcnow(),
            runner_host=host,
            runner_pid=pid,
            pty=terminal is not None,
            term_cols=cols,
            term_rows=rows,
        )
    )


def finish(
    session: Session,
    run_id: uuid.UUID,
    status: RunStatus,
    exit_code: int | None,
    error: str | None = None,
) -> None:
    """Record a run's end. Callers store the last log bytes before this, never after.

    Without an ``error`` of its own, an error noted while the run was going (lost output) stays.
    """
    session.execute(
        update(ExperimentRun)
        .where(ExperimentRun.id == run_id)
        .values(
            status=status,
            exit_code=exit_code,
            error=ExperimentRun.error if error is None else error,
            finished_at=utcnow(),
        )
    )
    announce(session, run_id)


def note_error(session: Session, run_id: uuid.UUID, error: str | None) -> None:
    """Record a problem while the run goes on (it keeps its status; the end keeps the note).

    None withdraws a note about a problem that has passed.
    """
    session.execute(update(ExperimentRun).where(ExperimentRun.id == run_id).values(error=error))


def mark_truncated(session: Session, run_id: uuid.UUID) -> None:
    session.execute(
        update(ExperimentRun).where(ExperimentRun.id == run_id).values(log_truncated=True)
    )


def heartbeat(session: Session, run_id: uuid.UUID) -> bool:
    """Note that the runner is alive; return whether a cancel was asked for."""
    session.execute(
        update(ExperimentRun).where(ExperimentRun.id == run_id).values(heartbeat_at=utcnow())
    )
    return bool(
        session.scalar(select(ExperimentRun.cancel_requested).where(ExperimentRun.id == run_id))
    )


def request_cancel(session: Session, run_id: uuid.UUID) -> ExperimentRun:
    run = get(session, run_id)
    if not RunStatus(run.status).is_active:
        raise RunNotActive(run)
    run.cancel_requested = True
    return run


def mark_lost(session: Session, older_than: datetime) -> list[uuid.UUID]:
    """End the active runs whose runner has not been heard from since ``older_than``.

    A queued run counts from its creation: its runner died before it could report at all.
    """
    last_sign_of_life = func.coalesce(ExperimentRun.heartbeat_at, ExperimentRun.created_at)
    lost = list(
        session.scalars(
            select(ExperimentRun.id).where(
                ExperimentRun.status.in_(ACTIVE_STATUSES), last_sign_of_life < older_than
            )
        )
    )
    for run_id in lost:
        announce(session, run_id)
    if lost:
        session.execute(
            update(ExperimentRun)
            .where(ExperimentRun.id.in_(lost))
            .values(
                status=RunStatus.LOST,
                exit_code=None,
                finished_at=utcnow(),
                error="the runner stopped reporting (killed, or its machine went down)",
            )
        )
    return lost
