"""Metric points in SQLite and PostgreSQL: stored once, at their bytes, gone with the run."""

from __future__ import annotations

import math
import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update

from tests.helpers import new_run
from trainlog import runs, store
from trainlog.db import Database
from trainlog.metrics.downsample import Span, keep_extremes
from trainlog.metrics.extract import Cursor, extract
from trainlog.metrics.patterns import Rules
from trainlog.metrics.store import (
    BLOCK_POINTS,
    catch_up,
    ensure_cursor,
    open_cursor,
    series,
    series_points,
)
from trainlog.models import ExperimentRun, MetricCursor, MetricPoint, RunStatus

RULES = Rules()
MAX_SERIES = 50

PIECES = [
    b"Epoch 1/2\r\n",
    b" 10%|#   | 1/10 [00:00<00:01, loss=0.8]",
    b"\r 20%|##  | 2/10 [00:00<00:01, loss=0.7]\r",
    b"\n{'loss': 0.41, 'learning_rate': 5e-05, 'epoch': 0.5}\r\n",
    b"step 1200 | lr 3e-4 | grad_norm nan\r\n",
    b"torch 2.13.0 on 2026-12-06 23:45:01\r\n",
    b"final loss=0.05",  # no newline: read once the run has ended
]


def append(db: Database, run_id: uuid.UUID, offset: int, data: bytes) -> int:
    with db.write() as session:
        return store.append(session, run_id, offset, data)


def start(db: Database, rules: Rules = RULES) -> uuid.UUID:
    run_id = new_run(db)
    with db.write() as session:
        open_cursor(session, run_id, rules)
    return run_id


def end(db: Database, run_id: uuid.UUID) -> None:
    with db.write() as session:
        runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)


def stored_points(db: Database, run_id: uuid.UUID) -> list[MetricPoint]:
    with db.read() as session:
        return list(
            session.scalars(
                select(MetricPoint).where(MetricPoint.run_id == run_id).order_by(MetricPoint.seq)
            )
        )


def test_live_extraction_stores_each_point_once_at_its_bytes(db: Database) -> None:
    run_id = start(db)
    offset = 0
    for piece in PIECES:
        offset = append(db, run_id, offset, piece)
        catch_up(db, run_id, MAX_SERIES)
        catch_up(db, run_id, MAX_SERIES)  # nothing new: nothing stored twice
    log = b"".join(PIECES)
    # The unterminated last line may still change while the run goes on: not read yet.
    assert len(stored_points(db, run_id)) == 6
    end(db, run_id)
    catch_up(db, run_id, MAX_SERIES)

    expected, _ = extract(log, Cursor(), RULES, final=True)
    points = stored_points(db, run_id)
    assert [(p.name, p.step, p.line, p.offset) for p in points] == [
        (e.name, e.step, e.line, e.offset) for e in expected
    ]
    assert [p.name for p in points] == [
        "loss",
        "loss",
        "loss",
        "learning_rate",
        "lr",
        "grad_norm",
        "loss",
    ]
    for point in points:
        assert log.count(b"\n", 0, point.offset) + 1 == point.line
        frame = log[point.offset :].split(b"\r")[0]
        assert point.name.encode() in frame
        assert point.time is not None  # extracted while the run was live, or as it ended
    assert math.isnan(points[5].value if points[5].value is not None else math.nan)
    with db.read() as session:
        summary = {s.name: s for s in series(session, run_id)}
        loss = series_points(session, run_id, "loss")
        grad_norm = series_points(session, run_id, "grad_norm")
    assert summary["loss"].points == 4
    assert summary["loss"].last is not None
    assert summary["loss"].last["value"] == 0.05
    # Printed once: stored, but not listed for a chart (see test_what_is_listed).
    assert set(summary) == {"loss"}
    assert [p["value"] for p in grad_norm] == ["nan"]
    assert [p["value"] for p in loss] == [0.8, 0.7, 0.41, 0.05]
    assert [p["step"] for p in loss][:3] == [1, 2, 0.5]


def test_racing_extractors_store_every_point_once(db: Database) -> None:
    run_id = start(db)
    log = b"".join(f"step {i} | loss {i / 1000} | acc 0.{i}\n".encode() for i in range(3000))
    offset = 0
    for at in range(0, len(log), 4096):
        offset = append(db, run_id, offset, log[at : at + 4096])
    end(db, run_id)

    errors: list[BaseException] = []

    def extractor() -> None:
        try:
            catch_up(db, run_id, MAX_SERIES)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=extractor) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    points = stored_points(db, run_id)
    assert [p.seq for p in points] == list(range(6000))
    assert [p.step for p in points if p.name == "loss"] == [float(i) for i in range(3000)]


def test_a_run_that_ended_without_a_cursor_is_extracted_on_first_use(db: Database) -> None:
    run_id = new_run(db)
    append(db, run_id, 0, b"a=1 b=2\n")
    with db.write() as session:
        runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)
        # Stored before metrics existed: extracted long after it ended, its times unknown.
        finished = datetime.now(UTC) - timedelta(hours=1)
        session.execute(update(ExperimentRun).values(finished_at=finished))
    ensure_cursor(db, run_id, RULES)
    catch_up(db, run_id, MAX_SERIES)
    points = stored_points(db, run_id)
    assert [(p.name, p.value, p.time) for p in points] == [("a", 1, None), ("b", 2, None)]


def test_a_live_run_without_a_cursor_is_left_to_its_runner(db: Database) -> None:
    run_id = new_run(db)
    append(db, run_id, 0, b"a=1\n")
    ensure_cursor(db, run_id, RULES)
    with db.read() as session:
        assert session.get(MetricCursor, run_id) is None


def test_points_are_deleted_with_their_run(db: Database) -> None:
    run_id = start(db)
    append(db, run_id, 0, b"a=1\n")
    catch_up(db, run_id, MAX_SERIES)
    assert stored_points(db, run_id)
    with db.write() as session:
        session.execute(delete(ExperimentRun).where(ExperimentRun.id == run_id))
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(MetricPoint)) == 0
        assert session.scalar(select(func.count()).select_from(MetricCursor)) == 0


def test_downsampling_keeps_the_extremes_and_the_ends(db: Database) -> None:
    run_id = start(db)
    values = [1.0] * 5000
    values[1234] = 99.0  # a spike
    values[4321] = -5.0  # a dip
    log = b"".join(f"loss={v}\n".encode() for v in values)
    append(db, run_id, 0, log)
    catch_up(db, run_id, MAX_SERIES)
    with db.read() as session:
        points = series_points(session, run_id, "loss", max_points=100)
        after = series_points(session, run_id, "loss", after_step=4990)
    assert len(points) <= 100
    kept = [p["step"] for p in points]
    assert kept == sorted(kept)
    assert {0, 1234, 4321, 4999} <= set(kept)
    assert [p["step"] for p in after] == list(range(4991, 5000))


def test_keep_extremes_per_bucket() -> None:
    def points(values: list[float | None]) -> list[Span]:
        return [Span.point(seq, value) for seq, value in enumerate(values)]

    assert keep_extremes(points([None] * 10), 4) == [0, 9]
    # Two buckets of four: each keeps its lowest and highest, and the ends are kept.
    assert keep_extremes(points([5.0, 1.0, 9.0, 2.0, 7.0, 3.0, 4.0, 0.0]), 6) == [0, 1, 2, 4, 7]
    # A bucket of NaNs keeps its first point.
    assert keep_extremes(points([1.0, 2.0, None, None, 3.0, 4.0]), 8) == [0, 1, 2, 4, 5]


def outline_of(db: Database, run_id: uuid.UUID, name: str, max_points: int) -> list[int]:
    """The seqs a chart of the whole series keeps, worked out from every stored point: its
    points cut into buckets of whole blocks, each bucket's first lowest and last highest point
    (or its first, if all NaN), and the ends."""
    points = [p for p in stored_points(db, run_id) if p.name == name]
    buckets = (max_points - 2) // 2
    kept = {points[0].seq, points[-1].seq}
    by_bucket: dict[int, list[MetricPoint]] = {}
    for block in range(0, len(points), BLOCK_POINTS):
        bucket = block * buckets // len(points)
        by_bucket.setdefault(bucket, []).extend(points[block : block + BLOCK_POINTS])
    for members in by_bucket.values():
        numbers = [p for p in members if p.value is not None and not math.isnan(p.value)]
        if not numbers:
            kept.add(members[0].seq)
            continue
        lowest = min(p.value for p in numbers if p.value is not None)
        highest = max(p.value for p in numbers if p.value is not None)
        kept.add(next(p.seq for p in numbers if p.value == lowest))
        kept.add([p.seq for p in numbers if p.value == highest][-1])
    return sorted(kept)


def test_a_huge_series_is_downsampled_from_its_blocks_as_from_its_points(db: Database) -> None:
    """Blocks give the outline the points give: the spike, the dip, the ends, and after a
    cut inside a block (a live chart's next request) the points past it."""
    run_id = start(db)
    count = 600 * BLOCK_POINTS
    values = [(i % 7) / 10 for i in range(count)]
    values[1234], values[50_000], values[count - 3] = 99.0, -5.0, float("nan")
    values[1000] = -1.0  # in the block the cut below falls in, before the cut
    log = "".join(f"step {i} | loss {v} | acc 0.5\n" for i, v in enumerate(values)).encode()
    for at in range(0, len(log), 1 << 20):
        append(db, run_id, at, log[at : at + (1 << 20)])
    end(db, run_id)
    catch_up(db, run_id, MAX_SERIES)
    with db.read() as session:
        every = series_points(session, run_id, "loss")
        chart = series_points(session, run_id, "loss", max_points=1000)
        later = series_points(session, run_id, "loss", max_points=1000, after_seq=2 * 1001 - 1)
        tail = series_points(session, run_id, "loss", max_points=1000, after_seq=2 * 76_700)
    assert len(every) == count
    steps = [p["step"] for p in chart]
    assert 900 <= len(chart) <= 1000 and steps == sorted(steps)
    assert {0, 1234, 50_000, count - 1} <= set(steps)
    by_seq = {p["seq"]: p for p in every}
    assert all(p == by_seq[p["seq"]] for p in chart)  # whole points, as stored
    assert [p["seq"] for p in chart] == outline_of(db, run_id, "loss", 1000)
    # Past a seq inside a block: only later points (the block's rest read one by one).
    assert len(later) <= 1000 and min(p["step"] for p in later) == 1001
    assert later[-1]["step"] == count - 1
    assert [p["step"] for p in tail] == list(range(76_701, count))


def test_what_is_listed(db: Database) -> None:
    """A series is listed once printed at two steps, with two values or three times: not a
    configuration dump, nor a setting echoed again at the end; its points are kept all the
    same."""
    run_id = start(db)
    log = (
        b"config: epochs=8 lr=0.03 batch_size=32 hidden=64\n"
        b"epoch 1: loss=0.9 acc=0.5 wd=0.1 warm=1\n"
        b"epoch 2: loss=0.7 acc=0.5 wd=0.1 warm=1\n"
        b"epoch 3: loss=0.7 acc=0.6 wd=0.1\n"
        b"final: loss=0.7 epochs=8\n"
        b"step 4 tokens=5 tokens=6\n"
    )
    append(db, run_id, 0, log)
    catch_up(db, run_id, MAX_SERIES)
    with db.read() as session:
        # wd: constant, printed three times; warm: constant, twice; tokens: one step.
        assert [s.name for s in series(session, run_id)] == ["acc", "loss", "wd"]
        assert len(series_points(session, run_id, "epochs")) == 2
        assert len(series_points(session, run_id, "warm")) == 2
        assert len(series_points(session, run_id, "tokens")) == 2
