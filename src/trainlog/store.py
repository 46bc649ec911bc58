"""The log store: a run's bytes as append-only chunks keyed by (run_id, start offset).

An append writes only its own bytes (O(chunk), never a rewrite of the log); a read of
bytes [X, Y) touches only the chunks that overlap it, found by the primary key (the
conditions below, CHUNKS_IN_RANGE and CHUNK_HOLDING). Reading is trainlog.logread's.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from trainlog.codec import FAST, choose, compress, decode, decompress_frame, encode
from trainlog.db import Database
from trainlog.lineindex import (
    Mark,
    Times,
    append_marks,
    count_newlines,
    encode_marks,
    line_count,
    slice_marks,
)
from trainlog.models import ChunkCodec, LogChunk, TrainingLog, utcnow
from trainlog.notify import announce, notice
from trainlog.offsets import MAX_CHUNK_BYTES, split_chunks, unseen_part

_CHUNKS = cast(Table, LogChunk.__table__)
_LOGS = cast(Table, TrainingLog.__table__)

COMPRESS_ON_WRITE_BYTES = 256 * 1024

# The hot paths' statements, built once: building and keying a statement per call cost more
# than running it (a tailer read took about 1 ms of SQLAlchemy for 0.05 ms of SQLite).
_LOCK_SIZE = select(_LOGS.c.size).where(_LOGS.c.run_id == bindparam("run_id")).with_for_update()
_INSERT_CHUNKS = insert(_CHUNKS)
# The line index's totals grow in the same compare-and-set as the size (NULL, a log not
# indexed yet, stays NULL until build_line_index).
_GROW = (
    update(_LOGS)
    .where(_LOGS.c.run_id == bindparam("log_id"), _LOGS.c.size == bindparam("expected"))
    .values(
        size=bindparam("new_size"),
        updated_at=bindparam("now"),
        newlines=_LOGS.c.newlines + bindparam("added_newlines"),
        last_line_start=func.coalesce(
            bindparam("new_line_start", type_=_LOGS.c.last_line_start.type),
            _LOGS.c.last_line_start,
        ),
    )
    .returning(_LOGS.c.size, _LOGS.c.newlines)
)
_CHUNK_COLUMNS = ("run_id", "start_offset", "length", "codec", "data", "times")


# PostgreSQL: the usual append (one chunk, the log exactly as long as expected) as one
# statement: grow the size, insert the chunk and wake viewers, all or nothing. Sent in
# autocommit, it is one round trip instead of five (BEGIN, three statements, COMMIT), which
# is most of what a quiet run's line waits for between the child and its viewers.


def _append_at_once_statement(grow: Update) -> Select[tuple[Any]]:
    grown = grow.cte("grown")
    return (
        select(func.pg_notify(bindparam("channel"), bindparam("run")))
        .select_from(grown)
        .add_cte(
            insert(_CHUNKS)
            .from_select(
                (*_CHUNK_COLUMNS, "newlines_before"),
                select(
                    *(bindparam(f"chunk_{n}", type_=_CHUNKS.c[n].type) for n in _CHUNK_COLUMNS),
                    grown.c.newlines - bindparam("added_newlines"),
                ).select_from(grown),
            )
            .cte("stored")
        )
    )


_APPEND_AT_ONCE = _append_at_once_statement(_GROW)


@cache
def _append_at_once_if(condition: ColumnElement[bool]) -> Select[tuple[Any]]:
    # Keyed by the condition object: callers pass one built once (see append_at_once).
    return _append_at_once_statement(_grow_if(condition))


@cache
def _grow_if(condition: ColumnElement[bool]) -> Update:
    return _GROW.where(condition)


# The chunk holding ``start`` is the last one starting at or before it: one index seek. The
# MAX_CHUNK_BYTES bound keeps even that seek from walking back over earlier chunks.
_FIRST_CHUNK_START = (
    select(func.max(_CHUNKS.c.start_offset))
    .where(
        _CHUNKS.c.run_id == bindparam("run_id"),
        _CHUNKS.c.start_offset <= bindparam("start"),
        _CHUNKS.c.start_offset > bindparam("floor"),
    )
    .scalar_subquery()
)
# The chunk holding byte ``start``, given run_id, start and floor (see range_params).
CHUNK_HOLDING = and_(
    _CHUNKS.c.run_id == bindparam("run_id"), _CHUNKS.c.start_offset == _FIRST_CHUNK_START
)
# The chunks overlapping [start, end), given run_id, start, floor (see range_params) and end.
CHUNKS_IN_RANGE = and_(
    _CHUNKS.c.run_id == bindparam("run_id"),
    _CHUNKS.c.start_offset >= func.coalesce(_FIRST_CHUNK_START, bindparam("start")),
    _CHUNKS.c.start_offset < bindparam("end"),
)
CHUNK_COLUMNS = (_CHUNKS.c.start_offset, _CHUNKS.c.codec, _CHUNKS.c.data)


# A flood's pieces are compressed side by side: zstd lets go of the GIL, and compressing is
# most of what storing a flood costs (256 MiB of tqdm text took 1.4-1.5 s to capture with one
# thread here, 1.0 s with two).
_COMPRESSORS = ThreadPoolExecutor(
    max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="compress"
)


class UnknownLog(LookupError):
    pass


def create_log(session: Session, run_id: uuid.UUID) -> None:
    session.add(
        TrainingLog(run_id=run_id, size=0, updated_at=utcnow(), newlines=0, last_line_start=0)
    )


def log_size(session: Session, run_id: uuid.UUID) -> int:
    size = session.scalar(select(TrainingLog.size).where(TrainingLog.run_id == run_id))
    if size is None:
        raise UnknownLog(run_id)
    return size


def log_size_and_lines(session: Session, run_id: uuid.UUID) -> tuple[int, int | None]:
    """The log's size and its line count (None: stored before the line index, not indexed)."""
    row = session.execute(
        select(TrainingLog.size, TrainingLog.newlines, TrainingLog.last_line_start).where(
            TrainingLog.run_id == run_id
        )
    ).one_or_none()
    if row is None:
        raise UnknownLog(run_id)
    return row.size, line_count(*row)


def log_state(session: Session, run_id: uuid.UUID) -> tuple[int, datetime]:
    row = session.execute(
        select(TrainingLog.size, TrainingLog.updated_at).where(TrainingLog.run_id == run_id)
    ).one_or_none()
    if row is None:
        raise UnknownLog(run_id)
    return row.size, row.updated_at


@dataclass(frozen=True)
class EncodedAppend:
    """An append with its chunks cut and compressed, ready to store at ``offset``."""

    run_id: uuid.UUID
    offset: int
    data: bytes
    marks: list[Mark]
    # Each row's newlines_before counts only the newlines of ``data`` before it: the log's
    # own count is added in the transaction (see _stored_rows).
    rows: list[dict[str, object]]
    # Newlines in ``data``, counted once (a flood's 4 MiB take milliseconds to count).
    newlines: int


def encode_append(
    run_id: uuid.UUID,
    offset: int,
    data: bytes,
    times: Times = None,
    frames: list[bytes] | None = None,
) -> EncodedAppend:
    """Cut and compress ``data`` for an append at ``offset``, before any transaction.

    Compressing a flood's batch takes milliseconds; done first, it never holds the write
    lock (SQLite's is the whole database's) or the log's row lock meanwhile. ``times`` says
    when the bytes were read (see lineindex.Times; None: now). ``frames``: zstd frames of
    data's pieces (MAX_CHUNK_BYTES each, the last at most that, as compress_pieces cuts
    them), each checked to hold exactly its piece (a remote runner compressed them, the
    server decompressed them), kept instead of compressing again.
    """
    marks = append_marks(len(data), times)
    rows, newlines = _chunk_rows(run_id, offset, data, marks, frames)
    return EncodedAppend(run_id, offset, data, marks, rows, newlines)


def compress_pieces(data: bytes) -> list[bytes]:
    """A zstd frame of each piece an append of ``data`` is cut into, compressed side by side
    (see encode_append's ``frames``), with a checksum: frames sent elsewhere to be stored
    (a remote runner's) are refused if they arrive damaged, not stored as something else."""
    pieces = [piece for _, piece in split_chunks(0, data)]
    return list(_COMPRESSORS.map(partial(compress, level=FAST, checksum=True), pieces))


def decompress_pieces(frames: list[bytes]) -> list[bytes]:
    """The bytes of frames as compress_pieces makes them, decompressed side by side; each
    must be one whole frame (codec.decompress_frame)."""
    return list(_COMPRESSORS.map(decompress_frame, frames))


def append_at_once(
    db: Database, encoded: EncodedAppend, only_if: ColumnElement[bool] | None = None
) -> int | None:
    """Store an encoded append without looking at the log first; the log's new size, or
    None, nothing stored, when the log is not exactly as long as expected or ``only_if``
    does not hold, and append_encoded, in a transaction, must see what is stored.

    On PostgreSQL a one-chunk append is one autocommitted statement; anything else is one
    write transaction of two statements (grow the log, insert the chunks).
    ``only_if``: a further condition on the log's row, checked as the log grows (built
    once: statements are kept per condition object), e.g. that its run may still be written.
    """
    if not encoded.data:
        return None
    new_size = encoded.offset + len(encoded.data)
    grow_params = _grow_params(encoded.run_id, encoded.offset, encoded.data, encoded.newlines)
    if db.engine.dialect.name == "postgresql" and len(encoded.rows) == 1:
        statement = _APPEND_AT_ONCE if only_if is None else _append_at_once_if(only_if)
        params = {
            # Named apart from the columns: an UPDATE takes a parameter named like one of
            # its table's columns as a value to set.
            **{f"chunk_{name}": encoded.rows[0][name] for name in _CHUNK_COLUMNS},
            **grow_params,
            **notice(encoded.run_id),
        }
        with db.autocommit() as connection:
            grown = connection.execute(statement, params).first() is not None
        return new_size if grown else None
    with db.write() as session:
        connection = session.connection()
        row = connection.execute(_GROW if only_if is None else _grow_if(only_if), grow_params)
        growth = row.first()
        if growth is None:
            return None
        connection.execute(_INSERT_CHUNKS, _stored_rows(encoded.rows, growth, encoded.newlines))
        announce(session, encoded.run_id)
    return new_size


def append(
    session: Session, run_id: uuid.UUID, offset: int, data: bytes, times: Times = None
) -> int:
    """Store ``data`` as the log's bytes from ``offset``, read at ``times`` (see
    lineindex.Times; None: now); return the log's new size."""
    return append_encoded(session, encode_append(run_id, offset, data, times))


def append_encoded(session: Session, encoded: EncodedAppend) -> int:
    """Store an encoded append; return the log's new size.

    Run inside a write transaction. The size row is locked before any chunk is written (FOR
    UPDATE on PostgreSQL, the write lock on SQLite), so concurrent or retried appends of the
    same offset store the bytes once.
    """
    # Core statements on the session's connection: the ORM's per-statement bookkeeping would
    # cost more than the database work on this hot path.
    connection = session.connection()
    run_id, offset, data, rows = encoded.run_id, encoded.offset, encoded.data, encoded.rows
    newlines = encoded.newlines
    # The usual case, in one round trip: the log is exactly ``offset`` long, and growing it
    # takes its row lock.
    grown = _grow(connection, run_id, offset, data, newlines) if data else None
    if grown is None:
        # A retry after a commit whose answer was lost (or nothing to store): see what is
        # stored, under the lock, and store only the rest.
        stored: int | None = connection.scalar(_LOCK_SIZE, {"run_id": run_id})
        if stored is None:
            raise UnknownLog(run_id)
        seen = len(data) - len(unseen_part(stored, offset, data))
        data = data[seen:]
        if not data:
            return stored
        offset = stored
        marks = slice_marks(encoded.marks, seen, seen + len(data))
        rows, newlines = _chunk_rows(run_id, offset, data, marks)
        # Under the lock the size is what was just read, so this grows it.
        grown = _grow(connection, run_id, offset, data, newlines)
        assert grown is not None
    connection.execute(_INSERT_CHUNKS, _stored_rows(rows, grown, newlines))
    announce(session, run_id)
    return offset + len(data)


def _grow(
    connection: Connection, run_id: uuid.UUID, size: int, data: bytes, newlines: int
) -> Row[Any] | None:
    """Add ``data`` (holding ``newlines``) to the log's size and line totals if its size is
    ``size``; the new (size, newlines), or None if it was not that size."""
    return connection.execute(_GROW, _grow_params(run_id, size, data, newlines)).first()


def _grow_params(run_id: uuid.UUID, size: int, data: bytes, newlines: int) -> dict[str, object]:
    last_newline = data.rfind(b"\n")
    return {
        "log_id": run_id,
        "expected": size,
        "new_size": size + len(data),
        "now": utcnow(),
        "added_newlines": newlines,
        "new_line_start": size + last_newline + 1 if last_newline >= 0 else None,
    }


_BEFORE = "newlines_before"


def _stored_rows(
    rows: list[dict[str, object]], grown: Row[Any], added: int
) -> list[dict[str, object]]:
    """The rows, of an append of ``added`` newlines, with each one's newlines before it in
    the whole log (None: not indexed)."""
    newlines: int | None = grown.newlines
    base = None if newlines is None else newlines - added
    return [
        {**row, "newlines_before": None if base is None else base + cast(int, row[_BEFORE])}
        for row in rows
    ]


def _chunk_rows(
    run_id: uuid.UUID,
    start: int,
    data: bytes,
    marks: list[Mark],
    frames: list[bytes] | None = None,
) -> tuple[list[dict[str, object]], int]:
    """The chunk rows of ``data`` from ``start``, and the newlines it holds."""
    pieces = list(split_chunks(start, data))
    if frames is not None and len(frames) != len(pieces):
        raise ValueError(f"{len(frames)} frames for {len(pieces)} pieces")
    if len(pieces) == 1:
        encoded = [_chunk_row(run_id, start, data, marks, frames[0] if frames else None)]
    else:
        piece_marks = [
            slice_marks(marks, piece_start - start, piece_start - start + len(piece))
            for piece_start, piece in pieces
        ]
        # Each piece is counted where it is compressed: both let go of the GIL.
        encoded = list(
            _COMPRESSORS.map(
                partial(_chunk_row, run_id),
                [piece_start for piece_start, _ in pieces],
                [piece for _, piece in pieces],
                piece_marks,
                frames or [None] * len(pieces),
            )
        )
    before = 0  # newlines in data before the piece at hand
    for row, newlines in encoded:
        row[_BEFORE] = before
        before += newlines
    return [row for row, _ in encoded], before


def _chunk_row(
    run_id: uuid.UUID, start: int, piece: bytes, marks: list[Mark], frame: bytes | None
) -> tuple[dict[str, object], int]:
    """A piece's row (but its newlines_before) and the newlines in it."""
    # A big piece means output is flooding: compressing it now (fast, and it never needs
    # compacting) writes several times fewer bytes. Small appends are compacted later.
    # A frame already made is kept wherever it saves enough: it cost nothing here.
    if frame is not None:
        codec, data = choose(piece, frame)
    elif len(piece) >= COMPRESS_ON_WRITE_BYTES:
        codec, data = encode(piece, FAST)
    else:
        codec, data = ChunkCodec.RAW, piece
    row: dict[str, object] = {
        "run_id": run_id,
        "start_offset": start,
        "length": len(piece),
        "codec": codec,
        "data": data,
        "times": encode_marks(marks),
    }
    return row, count_newlines(piece)


def range_params(run_id: uuid.UUID, start: int, end: int) -> dict[str, object]:
    """The parameters of CHUNKS_IN_RANGE."""
    return {"run_id": run_id, "start": start, "floor": start - MAX_CHUNK_BYTES, "end": end}


# Chunks indexed per transaction when an old log gets its line index: bounded memory.
_INDEX_BATCH = 16


def build_line_index(db: Database, run_id: uuid.UUID) -> None:
    """Give a log stored before the line index existed its index (its lines get no times).

    One pass over its chunks in one write transaction, under the log's row lock, so appends
    wait for it and then grow the index like any other; a log indexed meanwhile is left be.
    """
    with db.write() as session:
        connection = session.connection()
        row = connection.execute(
            select(_LOGS.c.newlines).where(_LOGS.c.run_id == run_id).with_for_update()
        ).one_or_none()
        if row is None:
            raise UnknownLog(run_id)
        if row.newlines is not None:
            return
        newlines = last_line_start = position = 0
        while True:
            rows = connection.execute(
                select(*CHUNK_COLUMNS)
                .where(_CHUNKS.c.run_id == run_id, _CHUNKS.c.start_offset >= position)
                .order_by(_CHUNKS.c.start_offset)
                .limit(_INDEX_BATCH)
            ).all()
            if not rows:
                break
            for chunk in rows:
                connection.execute(
                    update(_CHUNKS)
                    .where(_CHUNKS.c.run_id == run_id, _CHUNKS.c.start_offset == chunk.start_offset)
                    .values(newlines_before=newlines)
                )
                data = decode(chunk.codec, chunk.data)
                found = data.count(b"\n")
                if found:
                    newlines += found
                    last_line_start = chunk.start_offset + data.rfind(b"\n") + 1
                position = chunk.start_offset + 1
        connection.execute(
            update(_LOGS)
            .where(_LOGS.c.run_id == run_id)
            .values(newlines=newlines, last_line_start=last_line_start)
        )
