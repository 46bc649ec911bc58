"""Reading a log: its bytes by offset, its lines by number or by offset, their times.

The one place the API, the CLI and the stream ask "what is in this range". Lines come from
the line index kept beside the bytes (see lineindex and store): line N's offset is one index
seek to the chunk holding the log's (N-1)th newline and a scan inside it; the line holding
byte X is the chunk holding X and a count. Neither depends on the log's size.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, select

from trainlog import store
from trainlog.codec import decode
from trainlog.db import Database
from trainlog.lineindex import decode_marks, line_count, line_starts, mark_at, nth_newline
from trainlog.models import LogChunk, TrainingLog

_LOGS = cast(Table, TrainingLog.__table__)
_CHUNKS = cast(Table, LogChunk.__table__)

MAX_WINDOW_LINES = 10_000
# A window's bytes at most: whole lines up to this, or the first part of one longer line.
WINDOW_BYTES = store.READ_PAGE_BYTES

_TOTALS = select(_LOGS.c.size, _LOGS.c.newlines, _LOGS.c.last_line_start).where(
    _LOGS.c.run_id == bindparam("run_id")
)
_INDEXED_CHUNK = (*store.CHUNK_COLUMNS, _CHUNKS.c.newlines_before)
# The chunk holding the log's kth newline: the last one with fewer than k newlines before it.
_CHUNK_OF_NEWLINE = (
    select(*_INDEXED_CHUNK)
    .where(_CHUNKS.c.run_id == bindparam("run_id"), _CHUNKS.c.newlines_before < bindparam("k"))
    .order_by(_CHUNKS.c.newlines_before.desc(), _CHUNKS.c.start_offset.desc())
    .limit(1)
)
_CHUNK_HOLDING = select(*_INDEXED_CHUNK).where(store.CHUNK_HOLDING)
_CHUNKS_WITH_TIMES = (
    select(*store.CHUNK_COLUMNS, _CHUNKS.c.times)
    .where(store.CHUNKS_IN_RANGE)
    .order_by(_CHUNKS.c.start_offset)
)


@dataclass(frozen=True)
class LineTotals:
    size: int
    newlines: int
    last_line_start: int  # the offset after the last newline

    @property
    def lines(self) -> int:
        return cast(int, line_count(self.size, self.newlines, self.last_line_start))


@dataclass(frozen=True)
class LineWindow:
    start: int  # the first line's number
    offset: int  # where it starts
    end_offset: int  # the offset after the last byte of data
    totals: LineTotals
    data: bytes
    times: list[float | None]  # per line in data: epoch seconds, None if unknown


def iter_bytes(db: Database, run_id: uuid.UUID, start: int, end: int) -> Iterator[bytes]:
    """Bytes [start, end) in pages, each its own short read (see store.iter_bytes)."""
    return store.iter_bytes(db, run_id, start, end)


def line_totals(db: Database, run_id: uuid.UUID) -> LineTotals:
    """The log's size and line totals; a log stored before the line index gets it now.

    Raises store.UnknownLog for no such log.
    """
    with db.statement_reads() as connection:
        totals = _totals(connection, run_id)
    if totals is not None:
        return totals
    store.build_line_index(db, run_id)
    with db.statement_reads() as connection:
        built = _totals(connection, run_id)
    assert built is not None
    return built


def _totals(connection: Connection, run_id: uuid.UUID) -> LineTotals | None:
    row = connection.execute(_TOTALS, {"run_id": run_id}).one_or_none()
    if row is None:
        raise store.UnknownLog(run_id)
    if row.newlines is None:
        return None
    return LineTotals(row.size, row.newlines, row.last_line_start)


def line_offset(connection: Connection, run_id: uuid.UUID, line: int, totals: LineTotals) -> int:
    """Where line ``line`` (from 1) starts; the log's size for a line past the end."""
    k = line - 1  # line N starts after the log's (N-1)th newline
    if k <= 0:
        return 0
    if k > totals.newlines:
        return totals.size
    if k == totals.newlines:
        return totals.last_line_start
    chunk = connection.execute(_CHUNK_OF_NEWLINE, {"run_id": run_id, "k": k}).one()
    data = decode(chunk.codec, chunk.data)
    return cast(int, chunk.start_offset) + nth_newline(data, k - chunk.newlines_before) + 1


def line_at(connection: Connection, run_id: uuid.UUID, offset: int, totals: LineTotals) -> int:
    """The number of the line holding byte ``offset``; past the end, the line after the last."""
    if offset >= totals.size:
        return totals.lines + 1
    if offset >= totals.last_line_start:
        return totals.newlines + 1
    chunk = connection.execute(_CHUNK_HOLDING, store.range_params(run_id, offset, offset + 1)).one()
    data = decode(chunk.codec, chunk.data)
    return cast(int, chunk.newlines_before) + data.count(b"\n", 0, offset - chunk.start_offset) + 1


def lines_window(
    db: Database, run_id: uuid.UUID, start: int | None, offset: int | None, count: int
) -> LineWindow:
    """``count`` whole lines from line ``start``, or from the line holding byte ``offset``,
    as stored so far, with their times."""
    totals = line_totals(db, run_id)
    with db.statement_reads() as connection:
        first = line_at(connection, run_id, offset, totals) if offset is not None else start or 1
        if first > totals.lines:
            return LineWindow(first, totals.size, totals.size, totals, b"", [])
        begin = line_offset(connection, run_id, first, totals)
        end = min(totals.size, begin + WINDOW_BYTES)
        chunks = connection.execute(
            _CHUNKS_WITH_TIMES, store.range_params(run_id, begin, end)
        ).all()
    data = store.bytes_of(chunks, begin, end)
    data = _whole_lines(data, count, reaches_end=begin + len(data) == totals.size)
    return LineWindow(first, begin, begin + len(data), totals, data, _times(chunks, begin, data))


def _whole_lines(data: bytes, count: int, reaches_end: bool) -> bytes:
    """The first ``count`` lines of data; fewer if data ends inside one (the log's
    unterminated last line is whole), or the first part of a line longer than data."""
    cut = -1
    for _ in range(count):
        found = data.find(b"\n", cut + 1)
        if found == -1:
            if reaches_end:
                return data
            break
        cut = found
    return data[: cut + 1] if cut >= 0 else data


def _times(chunks: Sequence[Row[*tuple[Any, ...]]], begin: int, data: bytes) -> list[float | None]:
    """The time of each line in data (which begins at begin), from its chunks' marks."""
    times: list[float | None] = []
    index = 0
    marks = None
    for start in line_starts(data, begin) if data else []:
        while index + 1 < len(chunks) and chunks[index + 1].start_offset <= start:
            index += 1
            marks = None
        chunk = chunks[index]
        if chunk.times is None:
            times.append(None)
            continue
        marks = marks or decode_marks(chunk.times)
        times.append(mark_at(marks, start - chunk.start_offset) / 1000)
    return times
