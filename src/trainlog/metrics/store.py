"""Metric points in the database: extracting a run's new bytes, and reading series back.

Extraction is idempotent whoever runs it: a pass reads the log from the run's cursor,
extracts, and stores the points together with the advanced cursor in one transaction whose
cursor update is a compare-and-set on the offset it started from. Two extractors racing over
the same bytes (a runner and an API replica, two replicas, a pass retried after a lost commit)
store them once: the loser's update matches no row and its transaction is rolled back.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trainlog import runs, store
from trainlog.db import Database
from trainlog.metrics.downsample import keep_extremes
from trainlog.metrics.extract import Cursor, Point, extract
from trainlog.metrics.patterns import Rules
from trainlog.models import ExperimentRun, MetricCursor, MetricPoint, RunStatus

_POINTS = cast(Table, MetricPoint.__table__)

# Bytes one pass reads and extracts at most: a pass is one short transaction.
PASS_BYTES = 1024 * 1024


def open_cursor(session: Session, run_id: uuid.UUID, rules: Rules) -> None:
    """Start extraction of a run with these rules (at most once: an existing cursor stays)."""
    if session.get(MetricCursor, run_id) is None:
        session.add(
            MetricCursor(
                run_id=run_id,
                offset=0,
                line=1,
                counts={},
                last={},
                patterns=rules.specs(),
                defaults=rules.defaults,
            )
        )


def _live(run: ExperimentRun) -> bool:
    return RunStatus(run.status).is_active


def is_live(session: Session, run_id: uuid.UUID) -> bool:
    return _live(runs.get(session, run_id))


def _rules(row: MetricCursor, max_series: int) -> Rules:
    return Rules.from_specs(list(row.patterns), row.defaults, max_series)


# A run's last points are read by its runner's final pass, just after the end is recorded.
RECENT_END_SECONDS = 10.0


@dataclass(frozen=True)
class _Pass:
    before: MetricCursor
    points: list[Point]
    after: Cursor
    time: float | None


def _extraction_time(run: ExperimentRun) -> float | None:
    """The time given to points extracted now: now while the run is live (a pass looks every
    FOLLOW_SECONDS, so within that of the line's capture), its end for its runner's final
    pass, and unknown (None) for runs extracted long after they ended."""
    if _live(run):
        return time.time()
    if run.finished_at is not None:
        ended = run.finished_at.timestamp()
        if time.time() - ended < RECENT_END_SECONDS:
            return ended
    return None


def _plan(session: Session, run_id: uuid.UUID, max_series: int) -> _Pass | None:
    row = session.get(MetricCursor, run_id)
    if row is None:
        return None
    session.expunge(row)
    size = store.log_size(session, run_id)
    run = runs.get(session, run_id)
    live = _live(run)
    data = store.read(session, run_id, row.offset, min(size, row.offset + PASS_BYTES))
    final = not live and row.offset + len(data) == size
    cursor = Cursor(row.offset, row.line, row.counts)
    points, after = extract(data, cursor, _rules(row, max_series), final)
    if after.offset == row.offset:
        return None
    return _Pass(row, points, after, _extraction_time(run))


def _store(session: Session, run_id: uuid.UUID, done: _Pass) -> bool:
    """Store a pass's points and cursor; False if another extractor got there first."""
    before = done.before
    first_seq = sum(before.counts.values())
    last = dict(before.last)
    for index, point in enumerate(done.points):
        last[point.name] = first_seq + index
    moved = session.execute(
        update(MetricCursor)
        .where(MetricCursor.run_id == run_id, MetricCursor.offset == before.offset)
        .values(
            offset=done.after.offset,
            line=done.after.line,
            counts=dict(done.after.counts),
            last=last,
        )
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return False
    if done.points:
        session.execute(
            insert(_POINTS),
            [
                {
                    "run_id": run_id,
                    "seq": first_seq + index,
                    "name": point.name,
                    "step": point.step,
                    "value": None if math.isnan(point.value) else point.value,
                    "line": point.line,
                    "byte_offset": point.offset,
                    "time": done.time,
                }
                for index, point in enumerate(done.points)
            ],
        )
    return True


def catch_up(db: Database, run_id: uuid.UUID, max_series: int) -> int:
    """Extract what is stored past the run's cursor; the number of points stored.

    Does nothing for a run without a cursor (see ensure_cursor).
    """
    stored = 0
    while True:
        with db.read() as session:
            planned = _plan(session, run_id, max_series)
        if planned is None:
            return stored
        with db.write() as session:
            if not _store(session, run_id, planned):
                # Another extractor stored these bytes; carry on from where it got to.
                continue
        stored += len(planned.points)


def ensure_cursor(db: Database, run_id: uuid.UUID, rules: Rules) -> None:
    """Extraction of a run that has no cursor yet, on first use (one stored before metrics
    existed, or whose runner never began): only once it has ended, since a live run's runner
    starts its own with the user's patterns."""
    with db.read() as session:
        run = runs.get(session, run_id)
        needed = session.get(MetricCursor, run_id) is None and not _live(run)
    if needed:
        try:
            with db.write() as session:
                open_cursor(session, run_id, rules)
        except IntegrityError:
            pass  # another request opened it first (two tabs on one ended run)


@dataclass(frozen=True)
class SeriesSummary:
    name: str
    points: int
    last: dict[str, Any] | None


def json_number(value: float | None) -> float | str:
    """A value as JSON can carry it: NaN and infinities as the strings "nan", "inf", "-inf"."""
    if value is None or math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def point_json(row: Any) -> dict[str, Any]:
    step: float = row.step
    return {
        "seq": row.seq,
        "step": int(step) if step.is_integer() else step,
        "value": json_number(row.value),
        "line": row.line,
        "offset": row.byte_offset,
        "time": row.time,
    }


def series(session: Session, run_id: uuid.UUID) -> list[SeriesSummary]:
    """Each series of a run with its point count and most recently printed point."""
    runs.get(session, run_id)
    row = session.get(MetricCursor, run_id)
    if row is None or not row.counts:
        return []
    last_rows = session.execute(
        select(_POINTS).where(_POINTS.c.run_id == run_id, _POINTS.c.seq.in_(row.last.values()))
    ).all()
    last_by_name = {r.name: point_json(r) for r in last_rows}
    return [
        SeriesSummary(name, count, last_by_name.get(name))
        for name, count in sorted(row.counts.items())
    ]


def latest(session: Session, run_ids: list[uuid.UUID], name: str) -> dict[uuid.UUID, Any]:
    """The most recently printed point of series ``name`` for each of these runs that has one."""
    seqs = session.execute(
        select(MetricCursor.run_id, MetricCursor.last).where(MetricCursor.run_id.in_(run_ids))
    ).all()
    wanted = [(run_id, last[name]) for run_id, last in seqs if name in last]
    if not wanted:
        return {}
    rows = session.execute(
        select(_POINTS).where(
            _POINTS.c.run_id.in_([r for r, _ in wanted]),
            _POINTS.c.seq.in_([s for _, s in wanted]),
            _POINTS.c.name == name,
        )
    ).all()
    return {row.run_id: point_json(row) for row in rows}


_COLUMNS = (
    _POINTS.c.seq,
    _POINTS.c.step,
    _POINTS.c.value,
    _POINTS.c.line,
    _POINTS.c.byte_offset,
    _POINTS.c.time,
)
# Seqs per IN (...) list: well under every backend's limit on bound parameters.
_IN_BATCH = 1000


def series_points(
    session: Session,
    run_id: uuid.UUID,
    name: str,
    after_step: float | None = None,
    max_points: int | None = None,
) -> list[dict[str, Any]]:
    """A series' points in the order printed (those past ``after_step``), downsampled to
    ``max_points`` keeping extremes (see keep_extremes)."""
    runs.get(session, run_id)
    where = [_POINTS.c.run_id == run_id, _POINTS.c.name == name]
    if after_step is not None:
        where.append(_POINTS.c.step > after_step)
    if max_points is None:
        rows = session.execute(select(*_COLUMNS).where(*where).order_by(_POINTS.c.seq))
        return [point_json(row) for row in rows]
    # Only (seq, value) of every point; whole rows for the few that are kept.
    values = session.execute(
        select(_POINTS.c.seq, _POINTS.c.value).where(*where).order_by(_POINTS.c.seq)
    ).all()
    seqs = [values[i].seq for i in keep_extremes([v.value for v in values], max_points)]
    points: list[dict[str, Any]] = []
    for start in range(0, len(seqs), _IN_BATCH):
        batch = seqs[start : start + _IN_BATCH]
        rows = session.execute(
            select(*_COLUMNS)
            .where(_POINTS.c.run_id == run_id, _POINTS.c.seq.in_(batch))
            .order_by(_POINTS.c.seq)
        )
        points.extend(point_json(row) for row in rows)
    return points


# Points per ``metric`` event at most.
EVENT_POINTS = 5000


@dataclass(frozen=True)
class NewPoints:
    points: list[dict[str, Any]]  # each with its name and seq
    complete: bool  # the run has ended and every point is extracted and returned


def new_points(session: Session, run_id: uuid.UUID, from_seq: int) -> NewPoints:
    """Points from ``from_seq`` on (the order printed, across series), EVENT_POINTS at most."""
    runs.get(session, run_id)
    rows = session.execute(
        select(_POINTS.c.name, *_COLUMNS)
        .where(_POINTS.c.run_id == run_id, _POINTS.c.seq >= from_seq)
        .order_by(_POINTS.c.seq)
        .limit(EVENT_POINTS)
    ).all()
    points = [{"name": row.name, **point_json(row)} for row in rows]
    return NewPoints(points, len(rows) < EVENT_POINTS and extraction_complete(session, run_id))


def extraction_complete(session: Session, run_id: uuid.UUID) -> bool:
    """Whether the run has ended and all of its log is extracted."""
    if is_live(session, run_id):
        return False
    cursor = session.get(MetricCursor, run_id)
    return cursor is not None and cursor.offset >= store.log_size(session, run_id)


def delete_points(session: Session, run_id: uuid.UUID, first_seq: int, end_seq: int) -> None:
    """Remove a deleted run's points with ``first_seq <= seq < end_seq``: one of the bounded
    batches a delete takes them away in (retention.purge), read off the primary key."""
    session.execute(
        delete(_POINTS).where(
            _POINTS.c.run_id == run_id, _POINTS.c.seq >= first_seq, _POINTS.c.seq < end_seq
        )
    )
