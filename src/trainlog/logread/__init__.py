"""Reading a log: its bytes by offset, its lines by number or by offset, their times.

The one place the routes, the tailer and the CLI (follow.py), the metric extraction and
ingest's overlap check ask "what is in this range": every read of a log's stored bytes is
here (store writes them). Lines come from
the line index kept beside the bytes (see lineindex and store): line N's offset is one index
seek to the chunk holding the log's (N-1)th newline and a scan inside it; the line holding
byte X is the chunk holding X and a count. Neither depends on the log's size.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Row, Select, Table, and_, bindparam, select
from sqlalchemy.orm import Session

from trainlog import store
from trainlog.codec import decode
from trainlog.db import Database
from trainlog.lineindex import decode_marks, line_count, mark_at, nth_newline
from trainlog.models import ChunkSummary, LogChunk, TrainingLog
from trainlog.offsets import MAX_CHUNK_BYTES, slice_chunks

_LOGS = cast(Table, TrainingLog.__table__)
_CHUNKS = cast(Table, LogChunk.__table__)

# How much one read returns at most; callers that want more iterate (see iter_bytes).
READ_PAGE_BYTES = 4 * MAX_CHUNK_BYTES
MAX_WINDOW_LINES = 10_000
# A window's bytes at most: whole lines up to this, or the first part of one longer line.
WINDOW_BYTES = READ_PAGE_BYTES

_READ_CHUNKS = (
    select(*store.CHUNK_COLUMNS).where(store.CHUNKS_IN_RANGE).order_by(_CHUNKS.c.start_offset)
)
_TOTALS = select(_LOGS.c.size, _LOGS.c.newlines, _LOGS.c.last_line_start).where(
    _LOGS.c.run_id == bindparam("run_id")
)
_INDEXED_CHUNK = (*store.CHUNK_COLUMNS, _CHUNKS.c.newlines_before, _CHUNKS.c.times)
# The chunk holding the log's kth newline: the last one with fewer than k newlines before it.
_CHUNK_OF_NEWLINE = (
    select(*_INDEXED_CHUNK)
    .where(_CHUNKS.c.run_id == bindparam("run_id"), _CHUNKS.c.newlines_before < bindparam("k"))
    .order_by(_CHUNKS.c.newlines_before.desc(), _CHUNKS.c.start_offset.desc())
    .limit(1)
)
_CHUNK_HOLDING = select(*_INDEXED_CHUNK).where(store.CHUNK_HOLDING)
_CHUNKS_WITH_LENGTH = (
    select(*store.CHUNK_COLUMNS, _CHUNKS.c.length)
    .where(store.CHUNKS_IN_RANGE)
    .order_by(_CHUNKS.c.start_offset)
)
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


def read(session: Session, run_id: uuid.UUID, start: int, end: int) -> bytes:
    """Bytes [start, end) of the log, clipped to what is stored and to READ_PAGE_BYTES."""
    end = min(end, start + READ_PAGE_BYTES)
    if end <= start:
        return b""
    rows = session.connection().execute(_READ_CHUNKS, store.range_params(run_id, start, end))
    return bytes_of(rows, start, end)


def bytes_of(rows: Iterable[Row[*tuple[Any, ...]]], start: int, end: int) -> bytes:
    """Bytes [start, end) out of rows of store.CHUNK_COLUMNS in offset order (None columns:
    no chunk)."""
    chunks = (
        (row.start_offset, decode(row.codec, row.data))
        for row in rows
        if row.start_offset is not None
    )
    return slice_chunks(chunks, start, end)


def iter_bytes(
    db: Database, run_id: uuid.UUID, start: int, end: int, page_bytes: int = READ_PAGE_BYTES
) -> Iterator[bytes]:
    """Bytes [start, end) in pages of at most page_bytes, each in its own short read
    transaction.

    A download of a huge log therefore holds neither the whole log in memory nor one
    transaction open for minutes.
    """
    position = start
    while position < end:
        with db.read() as session:
            page = read(session, run_id, position, min(end, position + page_bytes))
        if not page:
            return
        position += len(page)
        yield page


@dataclass(frozen=True)
class Skipped:
    """Bytes not read: every line they are part of was cleared by chunk summaries."""

    length: int


def iter_chunks(
    db: Database,
    run_id: uuid.UUID,
    start: int,
    end: int,
    decode_ahead: int = 0,
    batch_bytes: int = READ_PAGE_BYTES,
    cleared: Callable[[bytes], bool] | None = None,
) -> Iterator[bytes | Skipped]:
    """Bytes [start, end) as the stored chunks hold them, decoded, in order: the same bytes as
    iter_bytes, without joining a page's chunks into one copy (a scan of a 1 GiB log spent
    more on those copies and their fresh pages of memory than on searching them).

    ``decode_ahead`` chunks are decompressed ahead, that many at once, in threads (zstd lets
    go of the GIL: the caller works on one chunk while the next ones are decompressed).

    ``cleared`` says of a chunk's summary (see chunkgrams) that none of the lines it covers
    is wanted. Then a chunk is neither read nor decoded (Skipped in its place) when no line
    overlapping it is wanted: the lines ending in it are cleared by its own summary and the
    line that goes on past it by the summary of the chunk where that line ends. The bytes
    that follow Skipped up to the next newline belong to a line that is not wanted either.
    """
    pieces: Iterator[_Piece | Skipped] = (
        _stored_pieces(db, run_id, start, end, batch_bytes)
        if cleared is None
        else _unskipped_pieces(db, run_id, start, end, batch_bytes, cleared)
    )
    if decode_ahead <= 0:
        yield from (p if isinstance(p, Skipped) else _decoded_piece(p) for p in pieces)
        return
    with ThreadPoolExecutor(decode_ahead, thread_name_prefix="decode") as pool:
        pending: deque[Future[bytes] | Skipped] = deque()
        decoding = 0
        for piece in pieces:
            if isinstance(piece, Skipped):
                pending.append(piece)
                continue
            pending.append(pool.submit(_decoded_piece, piece))
            decoding += 1
            while decoding > decode_ahead:
                done = pending.popleft()
                if not isinstance(done, Skipped):
                    decoding -= 1
                yield _result(done)
        while pending:
            yield _result(pending.popleft())


def _result(item: Future[bytes] | Skipped) -> bytes | Skipped:
    return item if isinstance(item, Skipped) else item.result()


# A stored chunk and the part of its decoded bytes wanted: (codec, data, lo, hi).
_Piece = tuple[int, bytes, int, int]


def _chunk_rows(
    db: Database, statement: Select[Any], run_id: uuid.UUID, start: int, end: int, batch: int
) -> Iterator[Row[Any]]:
    """The rows of the chunks holding [start, end), in order, each once, ``batch`` bytes of
    the log a short read; at a gap (there should be none) the bytes end."""
    position = start
    while position < end:
        batch_end = min(end, position + batch)
        with db.statement_reads() as connection:
            params = store.range_params(run_id, position, batch_end)
            rows = connection.execute(statement, params).all()
        for row in rows:
            if row.start_offset + row.length <= position:
                continue  # ends where the batch before ended
            if row.start_offset > position:
                return
            yield row
            position = row.start_offset + row.length
        if not rows or position < batch_end:
            return


def _stored_pieces(
    db: Database, run_id: uuid.UUID, start: int, end: int, batch_bytes: int
) -> Iterator[_Piece]:
    """The chunks holding [start, end), still encoded."""
    for row in _chunk_rows(db, _CHUNKS_WITH_LENGTH, run_id, start, end, batch_bytes):
        lo = max(start - row.start_offset, 0)
        yield row.codec, row.data, lo, min(row.length, end - row.start_offset)


# Chunk summaries read per statement when a search may skip chunks: 512 KiB of them.
_SUMMARY_BATCH_BYTES = 128 * MAX_CHUNK_BYTES
# A run of chunks inside one line waits at most this long for the chunk where the line ends
# (whose summary decides whether the line is wanted); longer, and they are read.
_MAX_UNDECIDED = 64
_INDEX_COLUMNS_AT = select(
    _CHUNKS.c.start_offset, _CHUNKS.c.length, _CHUNKS.c.newlines_before, _CHUNKS.c.times
).where(
    _CHUNKS.c.run_id == bindparam("run_id"),
    _CHUNKS.c.start_offset.in_(bindparam("starts", expanding=True)),
)
# Bytes of the chunks to read fetched per statement, in batches of iter_chunks' batch_bytes.
_WANTED_BATCHES = 4
_CHUNKS_AT = (
    select(*store.CHUNK_COLUMNS, _CHUNKS.c.length)
    .where(
        _CHUNKS.c.run_id == bindparam("run_id"),
        _CHUNKS.c.start_offset.in_(bindparam("starts", expanding=True)),
    )
    .order_by(_CHUNKS.c.start_offset)
)
_SUMS = cast(Table, ChunkSummary.__table__)
# Each chunk with its search summary, if it has one made from it.
_WITH_SUMMARY = _CHUNKS.outerjoin(
    _SUMS,
    and_(
        _SUMS.c.run_id == _CHUNKS.c.run_id,
        _SUMS.c.start_offset == _CHUNKS.c.start_offset,
        _SUMS.c.length == _CHUNKS.c.length,
    ),
)
_SUMMARIES = (
    select(_CHUNKS.c.start_offset, _CHUNKS.c.length, _CHUNKS.c.newlines_before, _SUMS.c.trigrams)
    .select_from(_WITH_SUMMARY)
    .where(store.CHUNKS_IN_RANGE)
    .order_by(_CHUNKS.c.start_offset)
)


@dataclass(frozen=True)
class _Summarized:
    start: int
    length: int
    newlines_before: int | None
    cleared: bool  # its summary clears the lines ending in it

    @property
    def end(self) -> int:
        return self.start + self.length


def _unskipped_pieces(
    db: Database,
    run_id: uuid.UUID,
    start: int,
    end: int,
    batch_bytes: int,
    cleared: Callable[[bytes], bool],
) -> Iterator[_Piece | Skipped]:
    """As _stored_pieces, with Skipped for the chunks no wanted line overlaps (iter_chunks).
    The summaries are read first; then the bytes of the chunks to read, several chunks a
    statement (on PostgreSQL a statement per pair of chunks cost more than decoding them)."""
    decided: list[tuple[_Summarized, bool]] = []
    wanted_bytes = 0
    for chunk, wanted in _decided(_summarized(db, run_id, start, end, cleared)):
        decided.append((chunk, wanted))
        wanted_bytes += chunk.length if wanted else 0
        if wanted_bytes >= _WANTED_BATCHES * batch_bytes:
            yield from _fetched(db, run_id, decided, start, end)
            decided, wanted_bytes = [], 0
    yield from _fetched(db, run_id, decided, start, end)


def _fetched(
    db: Database, run_id: uuid.UUID, decided: list[tuple[_Summarized, bool]], start: int, end: int
) -> Iterator[_Piece | Skipped]:
    """The decided chunks in order, clipped to [start, end): the wanted ones' bytes (read in
    one statement), Skipped for the others."""
    starts = [chunk.start for chunk, wanted in decided if wanted]
    stored: dict[int, Row[*tuple[Any, ...]]] = {}
    if starts:
        with db.statement_reads() as connection:
            rows = connection.execute(_CHUNKS_AT, {"run_id": run_id, "starts": starts}).all()
        stored = {row.start_offset: row for row in rows}
    for chunk, wanted in decided:
        lo, hi = max(start, chunk.start) - chunk.start, min(end, chunk.end) - chunk.start
        row = stored.get(chunk.start)
        if not wanted:
            yield Skipped(hi - lo)
        elif row is None or row.length != chunk.length:
            # Rewritten since its summary was read (compaction): read it by offset.
            yield from _stored_pieces(db, run_id, chunk.start + lo, chunk.start + hi, hi - lo)
        else:
            yield row.codec, row.data, lo, hi


def _summarized(
    db: Database, run_id: uuid.UUID, start: int, end: int, cleared: Callable[[bytes], bool]
) -> Iterator[_Summarized]:
    for row in _chunk_rows(db, _SUMMARIES, run_id, start, end, _SUMMARY_BATCH_BYTES):
        trigrams = row.trigrams
        yield _Summarized(
            row.start_offset,
            row.length,
            row.newlines_before,
            trigrams is not None and cleared(trigrams),
        )


def _decided(chunks: Iterator[_Summarized]) -> Iterator[tuple[_Summarized, bool]]:
    """Each chunk, and whether a line overlapping it may be wanted: one ending in it, unless
    its summary clears them; or the one going on past it, unless the summary of the chunk
    where it ends (the next one holding a newline) clears it. Chunks wait for that one."""
    undecided: list[_Summarized] = []  # after the last chunk known to hold a newline
    for chunk in chunks:
        if undecided and (
            chunk.newlines_before is None
            or undecided[-1].newlines_before is None
            or len(undecided) > _MAX_UNDECIDED
        ):
            yield from ((waiting, True) for waiting in undecided)
            undecided = []
        elif undecided and chunk.newlines_before != undecided[-1].newlines_before:
            # The last one waiting holds a newline: the line going on past each one before
            # it ends there.
            ends_in = undecided[-1]
            for waiting in undecided[:-1]:
                yield waiting, not (waiting.cleared and ends_in.cleared)
            undecided = [ends_in]
        undecided.append(chunk)
    # The last chunk holds the end of the log's last line.
    if undecided:
        last = undecided[-1]
        for waiting in undecided:
            yield waiting, not (waiting.cleared and last.cleared)


def chunks_with_summaries(
    db: Database, run_id: uuid.UUID, start: int, end: int
) -> list[tuple[int, bytes, bytes | None]]:
    """(start offset, decoded bytes, search summary) of each chunk starting in [start, end),
    in order: what compaction summarises (a few chunks at a time)."""
    with db.statement_reads() as connection:
        rows = connection.execute(
            select(*store.CHUNK_COLUMNS, _SUMS.c.trigrams)
            .select_from(_WITH_SUMMARY)
            .where(
                _CHUNKS.c.run_id == run_id,
                _CHUNKS.c.start_offset >= start,
                _CHUNKS.c.start_offset < end,
            )
            .order_by(_CHUNKS.c.start_offset)
        ).all()
    return [(row.start_offset, decode(row.codec, row.data), row.trigrams) for row in rows]


@dataclass(frozen=True)
class LineBefore:
    """The line holding a chunk's first byte, as far as the chunk before holds it."""

    start: int | None  # where the line starts; None: unknown (no line index)
    tail: bytes  # the previous chunk's bytes from there (or from its own start) on
    summary: bytes | None  # the previous chunk's search summary


def line_before(db: Database, run_id: uuid.UUID, start: int) -> LineBefore:
    """The line holding byte ``start`` (a chunk's first), and what the chunk before holds."""
    if start == 0:
        return LineBefore(0, b"", None)
    with db.statement_reads() as connection:
        previous = connection.execute(
            select(*_INDEXED_CHUNK, _SUMS.c.trigrams)
            .select_from(_WITH_SUMMARY)
            .where(_CHUNKS.c.run_id == run_id, _CHUNKS.c.start_offset < start)
            .order_by(_CHUNKS.c.start_offset.desc())
            .limit(1)
        ).one_or_none()
    if previous is None or previous.newlines_before is None:
        return LineBefore(None, b"", None)
    data = decode(previous.codec, previous.data)
    newline = data.rfind(b"\n")
    if newline >= 0:
        line_start = previous.start_offset + newline + 1
    else:
        # The line began before it: the line index says where.
        totals = line_totals(db, run_id)
        with db.statement_reads() as connection:
            chunks = ChunkReader(connection, run_id)
            line_start = line_offset(chunks, previous.newlines_before + 1, totals)
    tail = data[max(line_start - previous.start_offset, 0) :]
    return LineBefore(line_start, tail, previous.trigrams)


def _decoded_piece(piece: _Piece) -> bytes:
    codec, stored, lo, hi = piece
    data = decode(codec, stored)
    return data if lo == 0 and hi == len(data) else data[lo:hi]


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


@dataclass(frozen=True)
class Chunk:
    start_offset: int
    data: bytes  # decoded
    newlines_before: int | None
    times: bytes | None

    @property
    def end(self) -> int:
        return self.start_offset + len(self.data)


class ChunkReader:
    """One request's index seeks on one connection; a chunk is decoded once per request (a
    window's seek and its bytes are usually the same chunk)."""

    def __init__(self, connection: Connection, run_id: uuid.UUID) -> None:
        self._connection = connection
        self._run_id = run_id
        self._decoded: dict[int, Chunk] = {}

    def of_newline(self, k: int) -> Chunk:
        """The chunk holding the log's kth newline (there must be one)."""
        for chunk in self._decoded.values():
            before = chunk.newlines_before
            if before is not None and before < k <= before + chunk.data.count(b"\n"):
                return chunk
        row = self._connection.execute(_CHUNK_OF_NEWLINE, {"run_id": self._run_id, "k": k}).one()
        return self._keep(row)

    def holding(self, offset: int) -> Chunk | None:
        for chunk in self._decoded.values():
            if chunk.start_offset <= offset < chunk.end:
                return chunk
        params = store.range_params(self._run_id, offset, offset + 1)
        row = self._connection.execute(_CHUNK_HOLDING, params).one_or_none()
        return None if row is None else self._keep(row)

    def index_columns(self, starts: Iterable[int]) -> dict[int, Row[*tuple[Any, ...]]]:
        """The length, newlines_before and times of the chunks at these start offsets, in
        one statement, without their bytes."""
        wanted = list(starts)
        if not wanted:
            return {}
        rows = self._connection.execute(
            _INDEX_COLUMNS_AT, {"run_id": self._run_id, "starts": wanted}
        )
        return {row.start_offset: row for row in rows}

    def _keep(self, row: Row[*tuple[Any, ...]]) -> Chunk:
        chunk = Chunk(row.start_offset, decode(row.codec, row.data), row.newlines_before, row.times)
        self._decoded[chunk.start_offset] = chunk
        return chunk


def line_offset(chunks: ChunkReader, line: int, totals: LineTotals) -> int:
    """Where line ``line`` (from 1) starts; the log's size for a line past the end."""
    k = line - 1  # line N starts after the log's (N-1)th newline
    if k <= 0:
        return 0
    if k > totals.newlines:
        return totals.size
    if k == totals.newlines:
        return totals.last_line_start
    chunk = chunks.of_newline(k)
    return chunk.start_offset + nth_newline(chunk.data, k - cast(int, chunk.newlines_before)) + 1


def line_at(chunks: ChunkReader, offset: int, totals: LineTotals) -> int:
    """The number of the line holding byte ``offset``; past the end, the line after the last."""
    if offset >= totals.size:
        return totals.lines + 1
    if offset >= totals.last_line_start:
        return totals.newlines + 1
    chunk = chunks.holding(offset)
    assert chunk is not None  # below the size: stored
    before = cast(int, chunk.newlines_before)
    return before + chunk.data.count(b"\n", 0, offset - chunk.start_offset) + 1


def line_time(chunks: ChunkReader, offset: int) -> float | None:
    """When the byte at ``offset`` was read (epoch seconds), None if unknown."""
    chunk = chunks.holding(offset)
    return None if chunk is None else time_in(chunk.times, offset - chunk.start_offset)


def time_in(times: bytes | None, at: int) -> float | None:
    """When byte ``at`` of a chunk with these time marks was read; None if unknown."""
    return None if times is None else mark_at(decode_marks(times), at) / 1000


def lines_window(
    db: Database, run_id: uuid.UUID, start: int | None, offset: int | None, count: int
) -> LineWindow:
    """``count`` whole lines from line ``start``, or from the line holding byte ``offset``,
    as stored so far, with their times."""
    totals = line_totals(db, run_id)
    with db.statement_reads() as connection:
        reader = ChunkReader(connection, run_id)
        first = line_at(reader, offset, totals) if offset is not None else start or 1
        if first > totals.lines:
            return LineWindow(first, totals.size, totals.size, totals, b"", [])
        begin = line_offset(reader, first, totals)
        # The chunks from the one holding begin, as far as count lines need (usually one).
        limit = min(totals.size, begin + WINDOW_BYTES)
        chunks: list[Chunk] = []
        position, newlines = begin, 0
        while position < limit and newlines < count:
            chunk = reader.holding(position)
            if chunk is None:
                break
            chunks.append(chunk)
            newlines += chunk.data.count(b"\n", position - chunk.start_offset)
            position = chunk.end
    data = b"".join(chunk.data for chunk in chunks)[begin - chunks[0].start_offset :]
    data = data[: limit - begin]
    data = _whole_lines(data, count, reaches_end=begin + len(data) == totals.size)
    return LineWindow(first, begin, begin + len(data), totals, data, _times(chunks, begin, data))


def timed_lines(
    db: Database, run_id: uuid.UUID, end: int, page_bytes: int = WINDOW_BYTES
) -> Iterator[tuple[bytes, float | None]]:
    """The log's lines up to byte ``end`` with their times, read ``page_bytes`` at a time; a
    line longer than that comes in pieces (each with the time of the byte it starts at)."""
    position = 0
    carry, carry_time = b"", None  # a line whose end is in a later page
    while position < end:
        page_end = min(end, position + page_bytes)
        with db.statement_reads() as connection:
            chunks = connection.execute(
                _CHUNKS_WITH_TIMES, store.range_params(run_id, position, page_end)
            ).all()
        data = bytes_of(chunks, position, page_end)
        if not data:
            break
        times = _times(chunks, position, data)
        pieces = data.split(b"\n")
        if carry:
            times[0] = carry_time  # data begins inside the carried line
        for index, piece in enumerate(pieces[:-1]):
            yield carry + piece + b"\n", times[index]
            carry = b""
        carry += pieces[-1]
        carry_time = times[len(pieces) - 1] if pieces[-1] else None
        if len(carry) >= page_bytes:
            yield carry, carry_time
            carry = b""
        position += len(data)
    if carry:
        yield carry, carry_time


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


def _times(chunks: Sequence[Any], begin: int, data: bytes) -> list[float | None]:
    """The time of each line in data (which begins at begin, a line start), from the marks of
    its chunks (rows or Chunks in offset order, the first holding begin).

    Counted per mark, not looked up per line: a mark's lines are those starting in its span.
    """
    times: list[float | None] = []
    end = begin + len(data)
    for index, chunk in enumerate(chunks):
        chunk_end = chunks[index + 1].start_offset if index + 1 < len(chunks) else end
        marks = [(0, None)] if chunk.times is None else decode_marks(chunk.times)
        for mark, (offset, ms) in enumerate(marks):
            span_start = max(begin, chunk.start_offset + offset)
            following = marks[mark + 1][0] if mark + 1 < len(marks) else None
            span_end = min(end, chunk_end if following is None else chunk.start_offset + following)
            if span_end <= span_start:
                continue
            # Line starts in [span_start, span_end): begin itself, and after each newline.
            lines = _line_starts_in(data, span_start - begin, span_end - begin)
            times.extend([None if ms is None else ms / 1000] * lines)
    return times


def _line_starts_in(data: bytes, lo: int, hi: int) -> int:
    """How many lines of data (which begins at a line start) start in [lo, hi)."""
    return (1 if lo == 0 else 0) + data.count(b"\n", max(lo - 1, 0), min(hi - 1, len(data) - 1))
