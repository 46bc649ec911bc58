"""The runs ``trainlog ls`` lists, read through the database driver alone (see driver.py),
and their table.

A user waits for ``ls`` at the shell, and importing SQLAlchemy would take longer than the
whole command may. So the list of ``GET /api/runs`` (runs.page) is written out here in SQL;
tests/test_cli.py holds the two to the same runs for every filter, on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainlog.cli.driver import DriverConnection

# With every match asked for, pages of this many: a long history never sits in one query.
EVERY_PAGE = 500
# A q this short has no trigram (runs.TRIGRAM): PostgreSQL finds it by its grams' index.
SHORT_Q = 3


@dataclass(frozen=True)
class Filters:
    """Which runs are listed; every given condition must hold (statuses: any of them)."""

    statuses: Sequence[str] = ()
    config: str | None = None
    tags: Sequence[tuple[str, str]] = ()
    q: str | None = None


@dataclass(frozen=True)
class Listed:
    """A run as ``ls`` shows it."""

    id: str
    status: str
    exit_code: int | None
    started_at: datetime | None
    finished_at: datetime | None
    name: str | None
    config: str | None
    command: list[str]
    log_size: int


# Where a page ends, as the database holds it: the order's (created_at, run id) of its last run.
Cursor = tuple[Any, Any]


def list_runs(db: DriverConnection, filters: Filters, limit: int, every: bool) -> list[Listed]:
    """The first ``limit`` runs matching ``filters``, newest first; or, with ``every``, all of
    them, page by page."""
    listed: list[Listed] = []
    after: Cursor | None = None
    while True:
        page, after = read_page(db, filters, EVERY_PAGE if every else limit, after)
        listed += page
        if not every or after is None:
            return listed


def read_page(
    db: DriverConnection, filters: Filters, limit: int, after: Cursor | None = None
) -> tuple[list[Listed], Cursor | None]:
    """Up to ``limit`` runs matching ``filters``, newest first, after ``after``; and where the
    next page starts (None: this was the last)."""
    sql, params = page_query(db, filters, limit, after)
    rows = db.connection.execute(sql, params).fetchall()
    page = [_listed(row) for row in rows[:limit]]
    return page, (tuple(rows[limit - 1][-2:]) if len(rows) > limit else None)


def page_query(
    db: DriverConnection, filters: Filters, limit: int, after: Cursor | None
) -> tuple[str, list[object]]:
    """The SQL of a page, as runs.page builds it, and its parameters (in ``db``'s dialect).
    The last two columns are the order's, the cursor's values."""
    mark = db.mark
    params: list[object] = []
    # With a tag, the first one is joined and the order is its copy of (created_at, run id),
    # so the page is read off the tag's index in order (as runs.page does).
    order = "r.created_at, r.id"
    join = ""
    if filters.tags:
        join = f"JOIN run_tags t ON t.run_id = r.id AND t.key = {mark} AND t.value = {mark}"
        params += filters.tags[0]
        order = "t.created_at, t.run_id"
    where = ["r.deleted_at IS NULL"]
    if filters.statuses:
        where.append(f"r.status IN ({', '.join(mark for _ in filters.statuses)})")
        params += filters.statuses
    if filters.config is not None:
        where.append(f"r.config = {mark}")
        params.append(filters.config)
    for key, value in filters.tags[1:]:
        where.append(
            "EXISTS (SELECT 1 FROM run_tags o WHERE o.run_id = r.id"
            f" AND o.key = {mark} AND o.value = {mark})"
        )
        params += (key, value)
    if filters.q:
        lowered = filters.q.lower()
        if db.dialect == "postgresql" and len(lowered) < SHORT_Q:
            # Shorter than a trigram: the grams' index, as runs.page reads it (see there).
            where.append(
                f"strpos(r.search_text, {mark}) > 0"
                f" AND run_search_grams(r.search_text) @> ARRAY[{mark}]::text[]"
            )
            params += (lowered, lowered)
        else:
            # A substring of the lowercased search_text, LIKE's wildcards taken literally.
            escaped = lowered.replace("/", "//").replace("%", "/%").replace("_", "/_")
            where.append(f"r.search_text LIKE {mark} ESCAPE '/'")
            params.append(f"%{escaped}%")
    if after is not None:
        where.append(f"({order}) < ({mark}, {mark})")
        params += after
    newest_first = ", ".join(f"{column} DESC" for column in order.split(", "))
    sql = (
        "SELECT r.id, r.status, r.exit_code, r.started_at, r.finished_at, r.name, r.config,"
        f" r.command, l.size, {order}"
        " FROM experiment_runs r JOIN training_logs l ON l.run_id = r.id"
        f" {join} WHERE {' AND '.join(where)}"
        f" ORDER BY {newest_first} LIMIT {mark}"
    )
    params.append(limit + 1)
    return sql, params


def _listed(row: Sequence[Any]) -> Listed:
    """A row as either driver gives it: SQLite keeps ids as hex, times as UTC text and the
    command as JSON text (models.py's types); psycopg gives UUIDs, datetimes and lists."""
    import json
    import uuid

    run_id, status, exit_code, started, finished, name, config, command, size = row[:9]
    return Listed(
        id=str(run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(run_id)),
        status=status,
        exit_code=exit_code,
        started_at=_utc(started),
        finished_at=_utc(finished),
        name=name,
        config=config,
        command=json.loads(command) if isinstance(command, str) else command,
        log_size=size,
    )


def _utc(moment: datetime | str | None) -> datetime | None:
    if isinstance(moment, str):
        return datetime.fromisoformat(moment).replace(tzinfo=UTC)
    return moment


def print_table(listed: Sequence[Listed]) -> None:
    import shlex

    # Times in the user's own zone, named in the header.
    started = f"STARTED ({datetime.now().astimezone().tzname()})"
    rows = [("ID", "STATUS", "EXIT", "SIZE", started, "DURATION", "NAME", "CONFIG/COMMAND")]
    for run in listed:
        rows.append(
            (
                run.id,
                run.status,
                "" if run.exit_code is None else str(run.exit_code),
                _human_size(run.log_size),
                _short_time(run.started_at),
                _duration(run.started_at, run.finished_at),
                (run.name or "").replace("\n", "\\n")[:40],
                run.config or shlex.join(run.command).replace("\n", "\\n"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1][:60]]))


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _short_time(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _duration(started: datetime | None, finished: datetime | None) -> str:
    if started is None:
        return ""
    seconds = int(((finished or datetime.now(UTC)) - started).total_seconds())
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
