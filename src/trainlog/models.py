"""The database schema: runs, one log row per run, and the log's append-only chunks."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone on its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


class RunSource(enum.StrEnum):
    SERVER = "server"  # started through the API, on the server's machine
    CLI = "cli"  # ``trainlog run`` in someone's shell
    REMOTE = "remote"  # ``trainlog run --server``: registered and written over HTTP


class Base(DeclarativeBase):
    pass


class ExperimentRun(Base):
    __tablename__ = "experiment_runs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    config: Mapped[str | None] = mapped_column(String(255))
    command: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True, default=RunStatus.QUEUED)
    source: Mapped[str] = mapped_column(String(16), default=RunSource.SERVER)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Written by the runner while it lives; a stale one means the runner died.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    runner_host: Mapped[str | None] = mapped_column(String(255))
    runner_pid: Mapped[int | None] = mapped_column(Integer)
    # Terminal the child ran in: a pseudo-terminal of term_cols x term_rows, or a pipe (NULLs).
    pty: Mapped[bool] = mapped_column(Boolean, default=False)
    term_cols: Mapped[int | None] = mapped_column(Integer)
    term_rows: Mapped[int | None] = mapped_column(Integer)
    # Output went past TRAINLOG_MAX_LOG_BYTES; the rest was drained, not stored.
    log_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where the run came from (null for runs recorded before trainlog kept it): a label, tags
    # (also in run_tags, where filters find them), and what the runner saw when it started.
    name: Mapped[str | None] = mapped_column(String(255))
    tags: Mapped[dict[str, str] | None] = mapped_column(JSON)
    host: Mapped[str | None] = mapped_column(String(255))
    user: Mapped[str | None] = mapped_column(String(255))
    cwd: Mapped[str | None] = mapped_column(Text)
    git: Mapped[dict[str, object] | None] = mapped_column(JSON)
    # Name, config and command, lowercased: what ``q`` searches, in one column.
    search_text: Mapped[str | None] = mapped_column(Text)
    # Set when a delete begins: the run is gone to every reader from then on, while its log's
    # rows are removed in batches (a delete cut short is finished by the next gc).
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # Keyset paging, newest first, with or without one of the common filters.
        Index("ix_experiment_runs_created_id", "created_at", "id"),
        Index("ix_experiment_runs_status_created_id", "status", "created_at", "id"),
        Index("ix_experiment_runs_config_created_id", "config", "created_at", "id"),
    )
    # A remote runner's clock minus the server's, in seconds, when that was far off at
    # registration: its line times are its own clock's.
    clock_skew: Mapped[float | None] = mapped_column(Double)

    def __repr__(self) -> str:
        return f"ExperimentRun(id={self.id}, status={self.status})"


class TrainingLog(Base):
    """One row per run: the size of its log so far, kept in step with its chunks."""

    __tablename__ = "training_logs"

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("experiment_runs.id", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The line index's totals, kept in step with ``size`` by the same statement: the number
    # of "\n" stored and the offset after the last one (where the last line starts). NULL: a
    # log stored before the index existed, not indexed yet (see store.build_line_index).
    newlines: Mapped[int | None] = mapped_column(BigInteger, default=0)
    last_line_start: Mapped[int | None] = mapped_column(BigInteger, default=0)


class RunTag(Base):
    """One tag of a run, a row each so a tag filter is an index range on both databases."""

    __tablename__ = "run_tags"

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("experiment_runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
    # The run's created_at, copied: a page of runs with a tag is read off this index in the
    # list's order, however common or rare the tag.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_run_tags_key_value_created", "key", "value", "created_at", "run_id"),
    )


class ChunkCodec(enum.IntEnum):
    RAW = 0
    ZSTD = 1


class LogChunk(Base):
    """A slice of a run's log: bytes [start_offset, start_offset + length).

    ``data`` holds them encoded by ``codec``; only compaction of a finished log rewrites rows,
    replacing several chunks with one that holds exactly the same bytes.
    """

    __tablename__ = "log_chunks"

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("training_logs.run_id", ondelete="CASCADE"), primary_key=True
    )
    start_offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    length: Mapped[int] = mapped_column(Integer)
    codec: Mapped[int] = mapped_column(SmallInteger, default=ChunkCodec.RAW)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # The line index beside the bytes: how many "\n" the log has before this chunk (so the
    # chunk holding line N is one index seek away), and when its bytes were read, as time
    # marks (see lineindex.encode_marks). NULL: stored before the index existed.
    newlines_before: Mapped[int | None] = mapped_column(BigInteger)
    times: Mapped[bytes | None] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_log_chunks_lines", "run_id", "newlines_before", "start_offset"),)


class ChunkSummary(Base):
    """What search may skip a chunk by: the trigrams of its lines' text (chunkgrams.summarize),
    written by compaction once the chunk is final; a chunk without one is read.

    A table of its own, not a column of log_chunks: SQLite rewrites a whole row (its chunk's
    overflow pages too) to set one column, ~2 MiB of WAL for a 1 MiB chunk's 4 KiB summary.
    Holds the chunk's length: a summary counts only for the chunk it was made from.
    """

    __tablename__ = "chunk_summaries"

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("training_logs.run_id", ondelete="CASCADE"), primary_key=True
    )
    start_offset: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    length: Mapped[int] = mapped_column(Integer)
    trigrams: Mapped[bytes] = mapped_column(LargeBinary)


class RunToken(Base):
    """The token a remote runner appends to its run with: only its SHA-256 is kept."""

    __tablename__ = "run_tokens"

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("experiment_runs.id", ondelete="CASCADE"), primary_key=True
    )
    token_hash: Mapped[str] = mapped_column(String(64))


class MetricCursor(Base):
    """How far a run's metrics have been extracted, and by which rules (metrics/store.py).

    Advanced with a compare-and-set on ``offset`` in the transaction that stores the points,
    so extractors racing over one run (a runner, API replicas catching up) store each point
    once.
    """

    __tablename__ = "metric_cursors"

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("experiment_runs.id", ondelete="CASCADE"), primary_key=True
    )
    offset: Mapped[int] = mapped_column("byte_offset", BigInteger, default=0)
    line: Mapped[int] = mapped_column(BigInteger, default=1)
    # Points per series so far: {name: count}.
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # Each series' most recently printed point: {name: seq}.
    last: Mapped[dict[str, int]] = mapped_column("last_points", JSON, default=dict)
    # The user's NAME=REGEX patterns, and whether the default rules apply too.
    patterns: Mapped[list[str]] = mapped_column(JSON, default=list)
    defaults: Mapped[bool] = mapped_column(Boolean, default=True)


class MetricPoint(Base):
    """One value of one series, in the order printed (``seq``), linked to its line and byte."""

    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_series", "run_id", "name", "seq"),)

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("experiment_runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    step: Mapped[float] = mapped_column(Double)
    # NULL is NaN (SQLite stores a NaN as NULL anyway).
    value: Mapped[float | None] = mapped_column(Double)
    line: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column("byte_offset", BigInteger)
    # Unix epoch seconds; NULL when not known (runs extracted after they ended).
    time: Mapped[float | None] = mapped_column(Double)


class MetricBlock(Base):
    """A summary of BLOCK_POINTS consecutive points of one series (metrics/store.py), kept as
    they are stored: a chart of a huge series is drawn from these instead of every point."""

    __tablename__ = "metric_blocks"

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("experiment_runs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The series' points number block * BLOCK_POINTS and up.
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    # The lowest value and the first point with it, the highest and the last point with it
    # (NULL while every value is NaN).
    lo: Mapped[float | None] = mapped_column(Double)
    lo_seq: Mapped[int | None] = mapped_column(BigInteger)
    hi: Mapped[float | None] = mapped_column(Double)
    hi_seq: Mapped[int | None] = mapped_column(BigInteger)
    step_lo: Mapped[float] = mapped_column(Double)
    step_hi: Mapped[float] = mapped_column(Double)
