"""The log stream's pieces: where a viewer resumes, its SSE events, and reading the store."""

from __future__ import annotations

import base64
import enum
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, and_, bindparam, select

from trainlog import sse, store
from trainlog.db import Database
from trainlog.models import ExperimentRun, LogChunk, RunStatus, TrainingLog
from trainlog.offsets import MAX_OFFSET, parse_decimal

_LOGS = cast(Table, TrainingLog.__table__)
_RUNS = cast(Table, ExperimentRun.__table__)
_CHUNKS = cast(Table, LogChunk.__table__)

# Largest chunk in one ``log`` event; big enough for fast replay, small enough for a browser
# to decode and render without a visible hitch.
EVENT_BYTES = 256 * 1024


class BadResumePoint(ValueError):
    pass


def resume_offset(last_event_id: str | None, query_offset: int | None) -> int:
    """Where a stream starts: the browser's Last-Event-ID wins over ``?offset=``.

    On an automatic reconnect the browser repeats the original URL (with its original offset)
    and adds Last-Event-ID, the offset after the last event it received: that one is current.
    """
    if last_event_id is not None and last_event_id.strip() != "":
        offset = parse_decimal(last_event_id.strip())
        if offset is None or offset > MAX_OFFSET:
            raise BadResumePoint(f"Last-Event-ID must be a byte offset, got {last_event_id!r}")
        return offset
    if query_offset is not None and query_offset < 0:
        raise BadResumePoint("offset must not be negative")
    return query_offset or 0


def log_event(chunk: bytes, end_offset: int) -> bytes:
    # Base64 needs no JSON escaping, so its JSON is put together as bytes: json.dumps would
    # scan and copy the encoded chunk again, which took twice as long as encoding it.
    data = b'{"chunk":"' + base64.b64encode(chunk) + b'"}'
    return sse.frame_json("log", data, event_id=end_offset)


def log_frames(start: int, data: bytes) -> Iterator[bytes]:
    """``log`` events carrying data (which begins at offset start), EVENT_BYTES at most each.

    Made one at a time, as they are sent: a viewer whose client stops reading holds one
    event, not a whole read's worth.
    """
    for cut in range(0, len(data), EVENT_BYTES):
        chunk = data[cut : cut + EVENT_BYTES]
        yield log_event(chunk, start + cut + len(chunk))


def heartbeat_event() -> bytes:
    return sse.frame("heartbeat", {})


# Backoff between looks at a store that cannot be read, for a tailer or an open stream.
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


def reconnect_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` failed looks in a row (the first is failures=0)."""
    return RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]


def reconnecting_event(offset: int) -> bytes:
    """The store cannot be read right now; the stream stays open and resumes from offset."""
    return sse.frame("reconnecting", {"offset": offset})


def done_event(exit_code: int | None, final_size: int) -> bytes:
    return sse.frame("done", {"exit_code": exit_code, "final_size": final_size})


def deleted_event() -> bytes:
    """The run was deleted while streaming: nothing more will come; then the response ends."""
    return sse.frame("deleted", {})


@dataclass(frozen=True)
class LogSnapshot:
    """A run's log size and state, read together: if the run has ended, the size is final
    (the runner stores the last bytes before it records the end)."""

    size: int
    ended: bool
    exit_code: int | None
    # The run is being deleted, or is gone: its log is going away, so nothing more is read.
    deleted: bool = False


GONE = LogSnapshot(0, ended=True, exit_code=None, deleted=True)


def read_snapshot(db: Database, run_id: uuid.UUID) -> LogSnapshot:
    with db.statement_reads() as connection:
        return _snapshot(connection, run_id)


_SNAPSHOT = (
    select(_LOGS.c.size, _RUNS.c.status, _RUNS.c.exit_code, _RUNS.c.deleted_at)
    .join(_RUNS, _RUNS.c.id == _LOGS.c.run_id)
    .where(_LOGS.c.run_id == bindparam("run_id"))
)


def _snapshot(connection: Connection, run_id: uuid.UUID) -> LogSnapshot:
    row = connection.execute(_SNAPSHOT, {"run_id": run_id}).one_or_none()
    return GONE if row is None else _snapshot_of(row)


def _snapshot_of(row: Row[*tuple[Any, ...]]) -> LogSnapshot:
    """From a row with the size, status, exit_code and deleted_at columns of _SNAPSHOT."""
    if row.deleted_at is not None:
        return GONE
    return LogSnapshot(row.size, not RunStatus(row.status).is_active, row.exit_code)


class Step(enum.Enum):
    READ = "read"
    DONE = "done"
    WAIT = "wait"


def next_step(offset: int, snapshot: LogSnapshot) -> Step:
    """What a follower at ``offset`` does next: read what is new, finish, or wait."""
    if offset < snapshot.size:
        return Step.READ
    return Step.DONE if snapshot.ended else Step.WAIT


# A follower's look as one statement: the log's size and the run's state, with the chunks
# stored after ``start``. Both come from one snapshot of the database, so every chunk up to
# the size it reports is there; in autocommit it is one round trip where a transaction of two
# queries took four (a look at one new line on PostgreSQL: 0.7-1.0 ms here, against 1.5 ms).
# The chunk holding ``start`` is left out once it has been read whole, so a look that finds
# nothing new reads no chunk.
_NEWS = (
    select(
        _LOGS.c.size, _RUNS.c.status, _RUNS.c.exit_code, _RUNS.c.deleted_at, *store.CHUNK_COLUMNS
    )
    .select_from(
        _LOGS.join(_RUNS, _RUNS.c.id == _LOGS.c.run_id).outerjoin(
            _CHUNKS,
            and_(
                store.CHUNKS_IN_RANGE,
                _CHUNKS.c.start_offset + _CHUNKS.c.length > bindparam("start"),
                _CHUNKS.c.start_offset < _LOGS.c.size,
            ),
        )
    )
    .where(_LOGS.c.run_id == bindparam("run_id"))
    .order_by(_CHUNKS.c.start_offset)
)


def read_news(
    db: Database, run_id: uuid.UUID, position: int | None, tail_bytes: int
) -> tuple[LogSnapshot, int, bytes]:
    """The run's snapshot and the bytes stored since ``position`` (up to READ_PAGE_BYTES),
    with the offset they begin at; a first look (position None) gets the last ``tail_bytes``
    instead. A run deleted meanwhile gives GONE and no bytes."""
    with db.statement_reads() as connection:
        if position is None:
            position = max(0, _snapshot(connection, run_id).size - tail_bytes)
        end = position + store.READ_PAGE_BYTES
        rows = connection.execute(_NEWS, store.range_params(run_id, position, end)).all()
    snapshot = _snapshot_of(rows[0]) if rows else GONE
    if snapshot.deleted:
        return snapshot, position, b""
    return snapshot, position, store.bytes_of(rows, position, min(end, snapshot.size))
