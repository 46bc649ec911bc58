"""The line index on SQLite and PostgreSQL: windows of lines are the stored bytes at their
offsets, the counts survive retries and compaction, and each line has its read time."""

from __future__ import annotations

import random
import re
import uuid

from sqlalchemy import update

from tests.helpers import new_run
from trainlog import logread, store
from trainlog.compaction import compact
from trainlog.db import Database
from trainlog.lineindex import decode_marks, encode_marks
from trainlog.logread.text import timestamped_text
from trainlog.models import LogChunk, TrainingLog

LINE = re.compile(rb"[^\n]*\n|[^\n]+\Z")


def lines_of(data: bytes) -> list[bytes]:
    return LINE.findall(data)


def append(db: Database, run_id: uuid.UUID, offset: int, data: bytes, times: float) -> int:
    """As the runner appends: in one statement where it can, else in a transaction."""
    encoded = store.encode_append(run_id, offset, data, times)
    size = store.append_at_once(db, encoded)
    if size is not None:
        return size
    with db.write() as session:
        return store.append_encoded(session, encoded)


def mixed_log(db: Database, seed: int) -> tuple[uuid.UUID, bytes, list[float]]:
    """A log of quiet lines, tqdm redraws, a multi-chunk flood and retried appends; with the
    time each append was made at (per byte of the log)."""
    rng = random.Random(seed)
    run_id = new_run(db)
    log = b""
    byte_times: list[float] = []
    clock = 1_700_000_000.0
    for step in range(60):
        kind = rng.choice(["quiet", "bar", "flood", "partial"])
        if kind == "quiet":
            data = f"epoch {step} loss {rng.random():.4f}\n".encode()
        elif kind == "bar":
            data = b"".join(f"\r{p:3d}%|{'#' * (p // 10)}".encode() for p in range(0, 101, 7))
        elif kind == "flood":
            data = b"".join(f"step {i} {'x' * rng.randint(0, 300)}\n".encode() for i in range(9000))
        else:
            data = b"no newline yet "
        clock += rng.uniform(0.001, 2.0)
        size = append(db, run_id, len(log), data, clock)
        if rng.random() < 0.3:
            # A retry whose first commit's answer was lost: the same bytes, stored once.
            assert append(db, run_id, len(log), data, clock + 5) == size
        log += data
        byte_times.extend([clock] * len(data))
    return run_id, log, byte_times


def assert_windows_match(db: Database, run_id: uuid.UUID, log: bytes, times: list[float]) -> None:
    lines = lines_of(log)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    totals = logread.line_totals(db, run_id)
    assert (totals.size, totals.lines) == (len(log), len(lines))
    rng = random.Random(1)
    picks = [1, 2, len(lines), len(lines) + 1, *rng.sample(range(1, len(lines)), 30)]
    for start in picks:
        count = rng.choice([1, 7, 1000])
        window = logread.lines_window(db, run_id, start, None, count)
        want = lines[start - 1 : start - 1 + count]
        assert window.start == start
        assert window.offset == starts[start - 1] if want else window.offset == len(log)
        assert window.data == b"".join(want)
        assert window.data == log[window.offset : window.end_offset]
        assert window.times == [round(times[starts[start - 1 + i]], 3) for i in range(len(want))]
    for offset in [0, len(log) - 1, *rng.sample(range(len(log)), 30)]:
        window = logread.lines_window(db, run_id, None, offset, 3)
        holding = max(i for i, s in enumerate(starts[:-1]) if s <= offset)
        assert window.start == holding + 1 and window.offset == starts[holding]
        assert window.data == b"".join(lines[holding : holding + 3])


def test_windows_are_the_stored_lines_through_retries_and_compaction(db: Database) -> None:
    run_id, log, times = mixed_log(db, seed=3)
    assert_windows_match(db, run_id, log, times)
    compact(db, run_id, 0, len(log), final=True)
    with db.read() as session:
        assert session.query(LogChunk).filter_by(run_id=run_id).count() < 40  # it merged
    assert_windows_match(db, run_id, log, times)


def test_marks_round_trip() -> None:
    marks = [(0, 1_700_000_000_123), (5, 1_700_000_000_123 + 40), (900, 1_700_000_000_000)]
    assert decode_marks(encode_marks(marks)) == marks


def test_an_old_log_is_indexed_on_first_use_and_its_lines_have_no_times(db: Database) -> None:
    run_id, log, _ = mixed_log(db, seed=5)
    with db.write() as session:
        # As the migration leaves a log stored before the index existed.
        session.execute(
            update(TrainingLog)
            .where(TrainingLog.run_id == run_id)
            .values(newlines=None, last_line_start=None)
        )
        session.execute(
            update(LogChunk)
            .where(LogChunk.run_id == run_id)
            .values(newlines_before=None, times=None)
        )
    with db.read() as session:
        assert store.log_size_and_lines(session, run_id) == (len(log), None)
    window = logread.lines_window(db, run_id, 2, None, 5)
    assert window.data == b"".join(lines_of(log)[1:6])
    assert window.times == [None] * 5
    with db.read() as session:
        assert store.log_size_and_lines(session, run_id) == (len(log), len(lines_of(log)))
    # Appends after it grow the index as usual.
    append(db, run_id, len(log), b"after\nthe upgrade\n", 1_800_000_000.0)
    last = logread.lines_window(db, run_id, len(lines_of(log)) + 1, None, 10)
    assert last.times[-2:] == [1_800_000_000.0] * 2
    assert last.data.endswith(b"after\nthe upgrade\n")


def test_timestamped_text_puts_each_lines_time_before_its_plain_text(db: Database) -> None:
    run_id = new_run(db)
    quiet = b"".join(f"step {i}\n".encode() for i in range(3000))  # across pages
    parts = [
        (b"first\n", 1_700_000_000.0),
        (b"epoch 1:  10%\r\x1b[31mepoch 1: 100%\x1b[0m\n", 1_700_000_000.5),
        (quiet, 1_700_000_001.25),
        (b"unterminated", 1_700_000_002.0),
    ]
    offset = 0
    for data, at in parts:
        offset = append(db, run_id, offset, data, at)
    text = b"".join(timestamped_text(db, run_id, offset, page_bytes=1000)).decode().splitlines()
    assert text[:3] == [
        "2023-11-14T22:13:20.000Z first",
        "2023-11-14T22:13:20.500Z epoch 1: 100%",
        "2023-11-14T22:13:21.250Z step 0",
    ]
    assert text[-2:] == [
        "2023-11-14T22:13:21.250Z step 2999",
        "2023-11-14T22:13:22.000Z unterminated",
    ]
    assert len(text) == 3003
