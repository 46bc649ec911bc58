"""The log store: a run's bytes as append-only chunks keyed by (run_id, start offset).

An append writes only its own bytes (O(chunk), never a rewrite of the log); a read of
bytes [X, Y) touches only the chunks that overlap it, found by the primary key.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, and_, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from trainlog.codec import FAST, decode, encode
from trainlog.db import Database
from trainlog.models import ChunkCodec, LogChunk, TrainingLog, utcnow
from trainlog.notify import announce, notice
from trainlog.offsets import MAX_CHUNK_BYTES, slice_chunks, split_chunks, unseen_part

_CHUNKS = cast(Table, LogChunk.__table__)
_LOGS = cast(Table, TrainingLog.__table__)

COMPRESS_ON_WRITE_BYTES = 256 * 1024

# How much one read returns at most; callers that want more iterate (see iter_bytes).
READ_PAGE_BYTES = 4 * MAX_CHUNK_BYTES

# The hot paths' statements, built once: building and keying a statement per call cost more
# than running it (a tailer read took about 1 ms of SQLAlchemy for 0.05 ms of SQLite).
_LOCK_SIZE = select(_LOGS.c.size).where(_LOGS.c.run_id == bindparam("run_id")).with_for_update()
_INSERT_CHUNKS = insert(_CHUNKS)
_GROW = (
    update(_LOGS)
    .where(_LOGS.c.run_id == bindparam("log_id"), _LOGS.c.size == bindparam("expected"))
    .values(size=bindparam("new_size"), updated_at=bindparam("now"))
    .returning(_LOGS.c.size)
)
# PostgreSQL: the usual append (one chunk, the log exactly as long as expected) as one
# statement: grow the size, insert the chunk and wake viewers, all or nothing. Sent in
# autocommit, it is one round trip instead of five (BEGIN, three statements, COMMIT), which
# is most of what a quiet run's line waits for between the child and its viewers.
_GROWN = _GROW.cte("grown")
_CHUNK_COLUMNS = ("run_id", "start_offset", "length", "codec", "data")
_APPEND_AT_ONCE = (
    select(func.pg_notify(bindparam("channel"), bindparam("run")))
    .select_from(_GROWN)
    .add_cte(
        insert(_CHUNKS)
        .from_select(
            _CHUNK_COLUMNS,
            select(
                *(bindparam(f"chunk_{name}", type_=_CHUNKS.c[name].type) for name in _CHUNK_COLUMNS)
            ).select_from(_GROWN),
        )
        .cte("stored")
    )
)
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
# The chunks overlapping [start, end), given run_id, start, floor (see range_params) and end.
CHUNKS_IN_RANGE = and_(
    _CHUNKS.c.run_id == bindparam("run_id"),
    _CHUNKS.c.start_offset >= func.coalesce(_FIRST_CHUNK_START, bindparam("start")),
    _CHUNKS.c.start_offset < bindparam("end"),
)
CHUNK_COLUMNS = (_CHUNKS.c.start_offset, _CHUNKS.c.codec, _CHUNKS.c.data)
_READ_CHUNKS = select(*CHUNK_COLUMNS).where(CHUNKS_IN_RANGE).order_by(_CHUNKS.c.start_offset)


# A flood's pieces are compressed side by side: zstd lets go of the GIL, and compressing is
# most of what storing a flood costs (256 MiB of tqdm text took 1.4-1.5 s to capture with one
# thread here, 1.0 s with two).
_COMPRESSORS = ThreadPoolExecutor(
    max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="compress"
)


class UnknownLog(LookupError):
    pass


def create_log(session: Session, run_id: uuid.UUID) -> None:
    session.add(TrainingLog(run_id=run_id, size=0, updated_at=utcnow()))


def log_size(session: Session, run_id: uuid.UUID) -> int:
    size = session.scalar(select(TrainingLog.size).where(TrainingLog.run_id == run_id))
    if size is None:
        raise UnknownLog(run_id)
    return size


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
    rows: list[dict[str, object]]


def encode_append(run_id: uuid.UUID, offset: int, data: bytes) -> EncodedAppend:
    """Cut and compress ``data`` for an append at ``offset``, before any transaction.

    Compressing a flood's batch takes milliseconds; done first, it never holds the write
    lock (SQLite's is the whole database's) or the log's row lock meanwhile.
    """
    return EncodedAppend(run_id, offset, data, _chunk_rows(run_id, offset, data))


def append_at_once(db: Database, encoded: EncodedAppend) -> int | None:
    """Store an encoded append in one autocommitted statement; the log's new size, or None
    when that does not apply (not PostgreSQL, several chunks, or the log is not as long as
    expected) and append_encoded, in a transaction, must do it."""
    if db.engine.dialect.name != "postgresql" or len(encoded.rows) != 1 or not encoded.data:
        return None
    new_size = encoded.offset + len(encoded.data)
    params = {
        # Named apart from the columns: an UPDATE takes a parameter named like one of its
        # table's columns as a value to set.
        **{f"chunk_{name}": value for name, value in encoded.rows[0].items()},
        **_grow_params(encoded.run_id, encoded.offset, len(encoded.data)),
        **notice(encoded.run_id),
    }
    with db.autocommit() as connection:
        grown = connection.execute(_APPEND_AT_ONCE, params).first() is not None
    return new_size if grown else None


def append(session: Session, run_id: uuid.UUID, offset: int, data: bytes) -> int:
    """Store ``data`` as the log's bytes from ``offset``; return the log's new size."""
    return append_encoded(session, encode_append(run_id, offset, data))


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
    # The usual case, in one round trip: the log is exactly ``offset`` long, and growing it
    # takes its row lock.
    if not (data and _grow(connection, run_id, offset, len(data))):
        # A retry after a commit whose answer was lost (or nothing to store): see what is
        # stored, under the lock, and store only the rest.
        stored: int | None = connection.scalar(_LOCK_SIZE, {"run_id": run_id})
        if stored is None:
            raise UnknownLog(run_id)
        data = unseen_part(stored, offset, data)
        if not data:
            return stored
        offset = stored
        _grow(connection, run_id, offset, len(data))
        rows = _chunk_rows(run_id, offset, data)
    connection.execute(_INSERT_CHUNKS, rows)
    announce(session, run_id)
    return offset + len(data)


def _grow(connection: Connection, run_id: uuid.UUID, size: int, added: int) -> bool:
    """Add ``added`` to the log's size if it is ``size``; whether it was."""
    return connection.execute(_GROW, _grow_params(run_id, size, added)).first() is not None


def _grow_params(run_id: uuid.UUID, size: int, added: int) -> dict[str, object]:
    return {"log_id": run_id, "expected": size, "new_size": size + added, "now": utcnow()}


def _chunk_rows(run_id: uuid.UUID, start: int, data: bytes) -> list[dict[str, object]]:
    pieces = list(split_chunks(start, data))
    if len(pieces) == 1:
        return [_chunk_row(run_id, *pieces[0])]
    starts, datas = zip(*pieces, strict=True)
    return list(_COMPRESSORS.map(partial(_chunk_row, run_id), starts, datas))


def _chunk_row(run_id: uuid.UUID, start: int, piece: bytes) -> dict[str, object]:
    # A big piece means output is flooding: compressing it now (fast, and it never needs
    # compacting) writes several times fewer bytes. Small appends are compacted later.
    codec, data = (
        encode(piece, FAST) if len(piece) >= COMPRESS_ON_WRITE_BYTES else (ChunkCodec.RAW, piece)
    )
    return {
        "run_id": run_id,
        "start_offset": start,
        "length": len(piece),
        "codec": codec,
        "data": data,
    }


def read(session: Session, run_id: uuid.UUID, start: int, end: int) -> bytes:
    """Bytes [start, end) of the log, clipped to what is stored and to READ_PAGE_BYTES."""
    end = min(end, start + READ_PAGE_BYTES)
    if end <= start:
        return b""
    rows = session.connection().execute(_READ_CHUNKS, range_params(run_id, start, end))
    return bytes_of(rows, start, end)


def range_params(run_id: uuid.UUID, start: int, end: int) -> dict[str, object]:
    """The parameters of CHUNKS_IN_RANGE."""
    return {"run_id": run_id, "start": start, "floor": start - MAX_CHUNK_BYTES, "end": end}


def bytes_of(rows: Iterable[Row[*tuple[Any, ...]]], start: int, end: int) -> bytes:
    """Bytes [start, end) out of rows of CHUNK_COLUMNS in offset order (None columns: no
    chunk)."""
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
