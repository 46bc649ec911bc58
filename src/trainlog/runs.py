"""Run records: creating, listing and moving runs through their lifecycle."""

from __future__ import annotations

import base64
import binascii
import shlex
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    bindparam,
    column,
    exists,
    func,
    literal_column,
    select,
    table,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import BindParameter

from trainlog import store
from trainlog.lineindex import line_count
from trainlog.models import (
    ACTIVE_STATUSES,
    ExperimentRun,
    RunSource,
    RunStatus,
    RunTag,
    TrainingLog,
    utcnow,
)
from trainlog.notify import announce
from trainlog.provenance import Provenance

# Serializes "count active runs, then insert" across server replicas on PostgreSQL.
_ADMISSION_LOCK_KEY = 7_341_001

# SQLite's trigram index of search_text (migration 0006: FTS5, rows keyed by the run's rowid).
_RUN_SEARCH = table("run_search", column("rowid"), column("run_search"))
# A trigram index finds only text of 3 characters or more; a shorter q has its own (0008).
TRIGRAM = 3
# Up to this many runs matching q, a page is read off the trigram index (the matches are
# sorted); a q that matches more is common enough that walking the newest runs in order
# finds a page sooner.
INDEXED_SEARCH_MAX = 2000


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


class RunIsActive(Exception):
    def __init__(self, run: ExperimentRun) -> None:
        super().__init__(f"run {run.id} is {run.status}: cancel it first, then delete it")


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class RunView:
    """A run with the size of its log, as the API and CLI show it."""

    run: ExperimentRun
    log_size: int
    line_count: int | None = None  # None: a log stored before the line index, not indexed yet


def get(session: Session, run_id: uuid.UUID) -> ExperimentRun:
    """The run, unless there is none or it is being deleted."""
    run = session.get(ExperimentRun, run_id)
    if run is None or run.deleted_at is not None:
        raise RunNotFound(f"run {run_id} not found")
    return run


def view(session: Session, run_id: uuid.UUID) -> RunView:
    run = get(session, run_id)
    return RunView(run, *store.log_size_and_lines(session, run_id))


@dataclass(frozen=True)
class RunFilter:
    """Which runs a list shows; every given condition must hold (statuses: any of them)."""

    statuses: tuple[RunStatus, ...] = ()
    config: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    # A case-insensitive substring of the name, config or command.
    q: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self, dialect: str) -> list[ColumnElement[bool]]:
        runs = ExperimentRun
        found: list[ColumnElement[bool]] = [runs.deleted_at.is_(None)]
        if self.statuses:
            found.append(runs.status.in_([str(s) for s in self.statuses]))
        if self.config is not None:
            found.append(runs.config == self.config)
        # The first tag is joined by page(), which reads the runs off its index.
        for key, value in self.tags[1:]:
            tag = aliased(RunTag)  # apart from the joined one
            found.append(exists().where(tag.run_id == runs.id, tag.key == key, tag.value == value))
        if self.q:
            found += _search(self.q.lower(), dialect)
        if self.since is not None:
            found.append(runs.created_at >= self.since)
        if self.until is not None:
            found.append(runs.created_at < self.until)
        return found


def _search(lowered: str, dialect: str) -> list[ColumnElement[bool]]:
    """Runs whose search text holds ``lowered`` (q lowercased), as it is (no wildcards).

    The text is inlined, not bound: with a parameter PostgreSQL soon plans once for every q
    (a generic plan) and, not knowing it, walks every run instead of using an index.
    """
    if dialect == "postgresql" and len(lowered) < TRIGRAM:
        # Shorter than a trigram, q is a substring exactly when it is one of the text's grams
        # of 1 or 2 characters (migration 0008), whose index finds a rare q and whose
        # statistics say how common it is. strpos, not LIKE, tests the text itself: the
        # planner multiplies the two conditions' estimates as if they were independent, and
        # LIKE's made a q in 4% of the runs look like 0.1% (all its runs read off the index
        # and sorted, 44 ms, where walking the newest runs takes 5); strpos's is a flat 1/3.
        q: BindParameter[str] = bindparam("q", lowered, literal_execute=True)
        grams = func.run_search_grams(ExperimentRun.search_text, type_=ARRAY(Text))
        return [func.strpos(ExperimentRun.search_text, q) > 0, grams.contains(array([q]))]
    # On SQLite a short q walks the index that holds search_text beside the order (0008).
    # The escape character makes %, _ and / plain text.
    escaped = lowered.replace("/", "//").replace("%", "/%").replace("_", "/_")
    pattern: BindParameter[str] = bindparam("q", f"%{escaped}%", literal_execute=True)
    return [ExperimentRun.search_text.like(pattern, escape="/")]


@dataclass(frozen=True)
class Cursor:
    """Where a page of runs (newest first) ends: the last run's creation time and id."""

    created_at: datetime
    run_id: uuid.UUID

    def encode(self) -> str:
        text = f"{self.created_at.isoformat()}|{self.run_id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            moment, run_id = text.split("|")
            created_at = datetime.fromisoformat(moment)
            if created_at.tzinfo is None:
                raise ValueError("naive")
            return cls(created_at, uuid.UUID(run_id))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise BadCursor(f"cursor {token!r} is not one this server gave out") from None


@dataclass(frozen=True)
class RunPage:
    views: list[RunView]
    next_cursor: Cursor | None = field(default=None)


def page(session: Session, filters: RunFilter, limit: int, after: Cursor | None = None) -> RunPage:
    """Up to ``limit`` runs matching ``filters``, newest first, after ``after``.

    The order is (created_at, id), both unchanging, so following next_cursor returns every
    run once: runs created meanwhile are newer than the first page and never shift the rest.
    """
    # The order's columns: the run's own, or with a tag filter the first tag's copies of them,
    # so the page is read off that tag's index in order (a common tag stops after a page, a
    # rare one touches only its own rows).
    created_at, run_id = ExperimentRun.created_at, ExperimentRun.id
    query: Select[ExperimentRun, int, int | None, int | None] = (
        select(ExperimentRun, TrainingLog.size, TrainingLog.newlines, TrainingLog.last_line_start)
        .join(TrainingLog, TrainingLog.run_id == ExperimentRun.id)
        .where(*filters.conditions(session.get_bind().dialect.name))
    )
    if filters.tags:
        key, value = filters.tags[0]
        query = query.join(RunTag, RunTag.run_id == ExperimentRun.id).where(
            RunTag.key == key, RunTag.value == value
        )
        created_at, run_id = RunTag.created_at, RunTag.run_id
    query = query.where(*_narrowed_search(session, filters.q))
    query = query.order_by(created_at.desc(), run_id.desc()).limit(limit + 1)
    if after is not None:
        query = query.where(tuple_(created_at, run_id) < (after.created_at, after.run_id))
    views = [
        RunView(run, size, line_count(size, *lines)) for run, size, *lines in session.execute(query)
    ]
    if len(views) <= limit:
        return RunPage(views)
    last = views[limit - 1].run
    return RunPage(views[:limit], Cursor(last.created_at, last.id))


def _narrowed_search(session: Session, q: str | None) -> list[ColumnElement[bool]]:
    """On SQLite, a condition that narrows a rare ``q`` to the runs its trigram index finds.

    The filter's LIKE stays the condition that decides (the index only narrows: same results
    with or without it). PostgreSQL's planner picks its pg_trgm index for the LIKE itself.
    """
    if not q or session.get_bind().dialect.name != "sqlite" or len(q.lower()) < TRIGRAM:
        return []
    if "\x00" in q:  # FTS5's query syntax ends at a NUL; the LIKE alone takes it as text
        return []
    # An FTS5 phrase: the text as it is, quotes doubled.
    phrase = '"' + q.lower().replace('"', '""') + '"'
    matching = select(_RUN_SEARCH.c.rowid).where(_RUN_SEARCH.c.run_search.match(phrase))
    found = session.scalar(
        select(func.count()).select_from(matching.limit(INDEXED_SEARCH_MAX).subquery())
    )
    if found is not None and found >= INDEXED_SEARCH_MAX:
        return []
    return [literal_column("experiment_runs.rowid").in_(matching)]


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
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    provenance: Provenance | None = None,
) -> ExperimentRun:
    """Insert a queued run and its empty log, with where it came from.

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
        name=name,
        tags=dict(tags) if tags else None,
        search_text=search_text(name, config, command),
    )
    if provenance is not None:
        run.host, run.user, run.cwd = provenance.host, provenance.user, provenance.cwd
        run.git = dict(provenance.git) if provenance.git is not None else None
    session.add(run)
    session.flush()
    session.add_all(
        RunTag(run_id=run.id, key=k, value=v, created_at=now) for k, v in (tags or {}).items()
    )
    store.create_log(session, run.id)
    return run


def search_text(name: str | None, config: str | None, command: list[str]) -> str:
    return "\n".join([name or "", config or "", shlex.join(command)]).lower()


def begin_delete(session: Session, run_id: uuid.UUID) -> None:
    """Take a finished run away from every reader; its rows go afterwards (see retention).

    Open streams of it are woken, so they end with ``deleted`` instead of waiting for a poll.
    """
    run = get(session, run_id)
    if RunStatus(run.status).is_active:
        raise RunIsActive(run)
    run.deleted_at = utcnow()
    announce(session, run_id)


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
