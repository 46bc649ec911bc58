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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Table,
    bindparam,
    case,
    column,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trainlog import logread, runs, store
from trainlog.db import Database
from trainlog.metrics.downsample import Span, keep_extremes
from trainlog.metrics.extract import Cursor, Point, extract
from trainlog.metrics.patterns import Rules
from trainlog.models import ExperimentRun, MetricBlock, MetricCursor, MetricPoint, RunStatus

_POINTS = cast(Table, MetricPoint.__table__)
_BLOCKS = cast(Table, MetricBlock.__table__)
# Points of a series per block summary (metric_blocks). A chart of up to this many times its
# width in points reads the points; of more, the blocks (a 1,000,000-point series: 7,813).
BLOCK_POINTS = 128
_POINT_COLUMNS = ("run_id", "seq", "name", "step", "value", "line", "byte_offset", "time")

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
    data = logread.read(session, run_id, row.offset, min(size, row.offset + PASS_BYTES))
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
    add_points(session, run_id, first_seq, before.counts, done.points, done.time)
    return True


def add_points(
    session: Session,
    run_id: uuid.UUID,
    first_seq: int,
    counts: dict[str, int],
    points: list[Point],
    at: float | None,
) -> None:
    """Store points from seq ``first_seq`` on (``counts``: each series' points before them),
    and their block summaries."""
    if points:
        _insert_points(session, run_id, first_seq, points, at)
        _merge_blocks(session, run_id, _blocks(points, first_seq, counts))


def _insert_points(
    session: Session, run_id: uuid.UUID, first_seq: int, points: list[Point], at: float | None
) -> None:
    """One statement executed for every point, through the driver: a pass stores tens of
    thousands, and SQLAlchemy's per-row parameter handling would cost more than extracting
    them."""
    connection = session.connection()
    dialect = connection.dialect
    process = _POINTS.c.run_id.type.bind_processor(dialect)
    run = process(run_id) if process else run_id
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join([mark] * len(_POINT_COLUMNS))
    connection.exec_driver_sql(
        f"INSERT INTO metric_points ({', '.join(_POINT_COLUMNS)}) VALUES ({marks})",
        [
            (
                run,
                first_seq + index,
                name,
                step,
                None if value != value else value,  # NaN as NULL
                line,
                offset,
                at,
            )
            for index, (name, step, value, line, offset) in enumerate(points)
        ],
    )


def _blocks(points: list[Point], first_seq: int, counts: dict[str, int]) -> list[dict[str, Any]]:
    """The block summaries these points make (or add to), in the metric_blocks' columns."""
    numbered = dict(counts)
    blocks: dict[tuple[str, int], dict[str, Any]] = {}
    for index, (name, step, value, _, _) in enumerate(points):
        seq = first_seq + index
        at = numbered.get(name, 0)
        numbered[name] = at + 1
        number = None if value != value else value
        block = blocks.get((name, at // BLOCK_POINTS))
        if block is None:
            blocks[(name, at // BLOCK_POINTS)] = {
                "name": name,
                "block": at // BLOCK_POINTS,
                "count": 1,
                "first_seq": seq,
                "last_seq": seq,
                "lo": number,
                "lo_seq": None if number is None else seq,
                "hi": number,
                "hi_seq": None if number is None else seq,
                "step_lo": step,
                "step_hi": step,
            }
            continue
        block["count"] += 1
        block["last_seq"] = seq
        if number is not None:
            if block["lo"] is None or number < block["lo"]:
                block["lo"], block["lo_seq"] = number, seq
            if block["hi"] is None or number >= block["hi"]:
                block["hi"], block["hi_seq"] = number, seq
        block["step_lo"] = min(block["step_lo"], step)
        block["step_hi"] = max(block["step_hi"], step)
    return list(blocks.values())


def _merge_blocks(session: Session, run_id: uuid.UUID, blocks: list[dict[str, Any]]) -> None:
    """Insert new blocks, and add to the one a series' previous pass left unfilled."""
    dialect = session.connection().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_BLOCKS)
    new, old = stmt.excluded, _BLOCKS.c
    lower_lo = (new.lo < old.lo) | old.lo.is_(None)
    higher_hi = (new.hi >= old.hi) | old.hi.is_(None)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[old.run_id, old.name, old.block],
            set_={
                "count": old.count + new.count,
                "last_seq": new.last_seq,
                "lo": case((lower_lo, new.lo), else_=old.lo),
                "lo_seq": case((lower_lo, new.lo_seq), else_=old.lo_seq),
                "hi": case((higher_hi, new.hi), else_=old.hi),
                "hi_seq": case((higher_hi, new.hi_seq), else_=old.hi_seq),
                "step_lo": case((new.step_lo < old.step_lo, new.step_lo), else_=old.step_lo),
                "step_hi": case((new.step_hi > old.step_hi, new.step_hi), else_=old.step_hi),
            },
        ),
        [{"run_id": run_id, **block} for block in blocks],
    )


def catch_up(
    db: Database,
    run_id: uuid.UUID,
    max_series: int,
    pace: Callable[[float], None] | None = None,
) -> int:
    """Extract what is stored past the run's cursor; the number of points stored.

    ``pace``, if given, is called before each pass with the seconds the previous pass took (0
    for the first), and may wait. Does nothing for a run without a cursor (see ensure_cursor).
    """
    stored = 0
    took = 0.0
    while True:
        if pace is not None:
            pace(took)
        began = time.monotonic()
        with db.read() as session:
            planned = _plan(session, run_id, max_series)
        if planned is None:
            return stored
        with db.write() as session:
            if not _store(session, run_id, planned):
                # Another extractor stored these bytes; carry on from where it got to.
                continue
        stored += len(planned.points)
        took = time.monotonic() - began


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


# A series whose value never changes is charted once printed this many times (a constant
# learning rate): twice is more likely a setting echoed in a summary (``epochs=8``).
CONSTANT_CHARTED_AFTER = 3


def _charted(session: Session, run_id: uuid.UUID) -> set[str]:
    """The series worth a chart: printed at two steps or more, and either with two values or
    more, or CONSTANT_CHARTED_AFTER times.

    A configuration dump (``batch_size=32 epochs=8``) or a summary printed once is not one,
    nor a setting printed in it and once more at the end. Read off the block summaries: a
    row per 128 points.
    """
    rows = session.execute(
        select(
            _BLOCKS.c.name,
            func.sum(_BLOCKS.c.count),
            func.min(_BLOCKS.c.lo),
            func.max(_BLOCKS.c.hi),
            func.min(_BLOCKS.c.step_lo),
            func.max(_BLOCKS.c.step_hi),
        )
        .where(_BLOCKS.c.run_id == run_id)
        .group_by(_BLOCKS.c.name)
    ).all()
    return {
        name
        for name, count, lo, hi, step_lo, step_hi in rows
        if step_lo < step_hi and ((lo is not None and lo < hi) or count >= CONSTANT_CHARTED_AFTER)
    }


def series(session: Session, run_id: uuid.UUID) -> list[SeriesSummary]:
    """Each series of a run worth a chart (see _charted) with its point count and most
    recently printed point."""
    runs.get(session, run_id)
    row = session.get(MetricCursor, run_id)
    if row is None or not row.counts:
        return []
    charted = _charted(session, run_id)
    last_rows = session.execute(
        select(_POINTS).where(_POINTS.c.run_id == run_id, _POINTS.c.seq.in_(row.last.values()))
    ).all()
    last_by_name = {r.name: point_json(r) for r in last_rows}
    return [
        SeriesSummary(name, count, last_by_name.get(name))
        for name, count in sorted(row.counts.items())
        if name in charted
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
    after_seq: int | None = None,
) -> list[dict[str, Any]]:
    """A series' points in the order printed (those past ``after_step``, and printed after
    point ``after_seq``), downsampled to ``max_points`` keeping extremes (see keep_extremes).

    A huge series is downsampled from its block summaries: the points themselves are read
    only for the few kept, and for the part of one block ``after_seq`` cuts.
    """
    runs.get(session, run_id)
    where = [_POINTS.c.run_id == run_id, _POINTS.c.name == name]
    if after_step is not None:
        where.append(_POINTS.c.step > after_step)
    if after_seq is not None:
        where.append(_POINTS.c.seq > after_seq)
    if max_points is not None and after_step is None:
        spans = _block_spans(session, run_id, name, after_seq, max_points)
        if spans is not None:
            return _points_at(session, run_id, keep_extremes(spans, max_points))
    rows = session.execute(select(*_COLUMNS).where(*where).order_by(_POINTS.c.seq)).all()
    if max_points is None or len(rows) <= max_points:
        return [point_json(row) for row in rows]
    kept = set(keep_extremes([Span.point(row.seq, row.value) for row in rows], max_points))
    return [point_json(row) for row in rows if row.seq in kept]


def _block_spans(
    session: Session, run_id: uuid.UUID, name: str, after_seq: int | None, max_points: int
) -> list[Span] | None:
    """The series past ``after_seq`` as spans of whole blocks, if there are enough blocks for
    ``max_points`` (None: read the points, there are few)."""
    where = [_BLOCKS.c.run_id == run_id, _BLOCKS.c.name == name]
    if after_seq is not None:
        where.append(_BLOCKS.c.last_seq > after_seq)
    blocks = session.execute(
        select(
            _BLOCKS.c.count,
            _BLOCKS.c.first_seq,
            _BLOCKS.c.last_seq,
            _BLOCKS.c.lo,
            _BLOCKS.c.lo_seq,
            _BLOCKS.c.hi,
            _BLOCKS.c.hi_seq,
        )
        .where(*where)
        .order_by(_BLOCKS.c.block)
    ).all()
    if len(blocks) < max_points // 2:
        return None
    spans = [Span(*block) for block in blocks]
    if after_seq is not None and spans[0].first_seq <= after_seq:
        # The block after_seq falls in: its points past after_seq, one by one.
        cut = session.execute(
            select(_POINTS.c.seq, _POINTS.c.value)
            .where(
                _POINTS.c.run_id == run_id,
                _POINTS.c.name == name,
                _POINTS.c.seq > after_seq,
                _POINTS.c.seq <= spans[0].last_seq,
            )
            .order_by(_POINTS.c.seq)
        ).all()
        spans[:1] = [Span.point(row.seq, row.value) for row in cut]
    return spans


def _points_at(session: Session, run_id: uuid.UUID, seqs: list[int]) -> list[dict[str, Any]]:
    """The points of these seqs, each looked up by its primary key ``(run_id, seq)``.

    On PostgreSQL the seqs are an array the points are joined to, not ``seq IN (...)``: it
    takes a run it has no statistics for yet (any run newer than its last ANALYZE) for a few
    rows, and planned the IN list as a scan of all the run's points filtered by the list (a
    1,000,000-point series: 113 ms, 999,000 rows read and dropped). Joined to ``unnest``, each
    seq is one probe of the primary key whatever the statistics say (6 ms). SQLite probes
    the key for an IN list, and joined would scan the points instead."""
    if session.connection().dialect.name == "postgresql":
        seq_list = bindparam("seqs", seqs, type_=postgresql.ARRAY(BigInteger))
        kept = func.unnest(seq_list).table_valued(column("seq", BigInteger)).render_derived("kept")
        rows = session.execute(
            select(*_COLUMNS)
            .join(kept, _POINTS.c.seq == kept.c.seq)
            .where(_POINTS.c.run_id == run_id)
            .order_by(_POINTS.c.seq)
        )
        return [point_json(row) for row in rows]
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
    # Completeness first, then the points: on PostgreSQL each statement sees what was committed
    # when it began, so asked the other way round, the last pass's points could commit between
    # the two and the stream would say ``done`` without them.
    complete = extraction_complete(session, run_id)
    rows = session.execute(
        select(_POINTS.c.name, *_COLUMNS)
        .where(_POINTS.c.run_id == run_id, _POINTS.c.seq >= from_seq)
        .order_by(_POINTS.c.seq)
        .limit(EVENT_POINTS)
    ).all()
    points = [{"name": row.name, **point_json(row)} for row in rows]
    return NewPoints(points, len(rows) < EVENT_POINTS and complete)


def extraction_complete(session: Session, run_id: uuid.UUID) -> bool:
    """Whether the run has ended and all of its log is extracted."""
    if is_live(session, run_id):
        return False
    cursor = session.get(MetricCursor, run_id)
    return cursor is not None and cursor.offset >= store.log_size(session, run_id)


def delete_points(connection: Connection, run_id: uuid.UUID, first_seq: int, end_seq: int) -> None:
    """Remove a deleted run's points with ``first_seq <= seq < end_seq``: one of the bounded
    batches a delete takes them away in (retention.purge), read off the primary key."""
    connection.execute(
        delete(_POINTS).where(
            _POINTS.c.run_id == run_id, _POINTS.c.seq >= first_seq, _POINTS.c.seq < end_seq
        )
    )
