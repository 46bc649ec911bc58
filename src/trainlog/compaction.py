"""Compaction: a log's small chunks merged into ~1 MiB chunks, zstd-compressed.

Appends stay small and immediate (a line every few ms when output is quiet); once bytes are
well behind the growing end they are rewritten as fewer, compressed chunks holding exactly
the same bytes. Chunks compressed as they were written (a burst of output) join their
neighbours too, as long as the merged chunk fits. Readers notice nothing: a read sees the
chunks before or after a group's swap (one transaction), and merged chunks stay within
MAX_CHUNK_BYTES, so bounded lookups still find them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from trainlog import logread
from trainlog.chunkgrams import LONG_LINE_BYTES, summarize
from trainlog.codec import THOROUGH, decode, encode
from trainlog.db import Database
from trainlog.lineindex import Mark, coalesce, decode_marks, encode_marks, shift_marks
from trainlog.models import ChunkCodec, ChunkSummary, LogChunk
from trainlog.offsets import MAX_CHUNK_BYTES
from trainlog.store import COMPRESS_ON_WRITE_BYTES

# Offsets looked at per step: two chunks' worth, so every group but an open one closes in it.
WINDOW = 2 * MAX_CHUNK_BYTES


@dataclass(frozen=True)
class ChunkInfo:
    start: int
    length: int
    codec: int


@dataclass(frozen=True)
class Group:
    start: int
    end: int


@dataclass(frozen=True)
class Plan:
    groups: list[Group]
    # Where the next look starts: the first byte of a group still open (it may grow), or the
    # end of what was looked at.
    resume_at: int


@dataclass(frozen=True)
class _Forming:
    start: int
    end: int
    # A group of one chunk is worth rewriting only if it may compress: a compressed chunk is
    # already what a rewrite would make of it, and a raw one of COMPRESS_ON_WRITE_BYTES or
    # more was found not worth compressing when it was written.
    worth_rewriting: bool

    def joined(self, chunk: ChunkInfo) -> _Forming:
        return _Forming(self.start, chunk.start + chunk.length, True)


def plan_groups(chunks: Sequence[ChunkInfo], upto: int, final: bool) -> Plan:
    """Runs of consecutive chunks below ``upto`` to merge, each within MAX_CHUNK_BYTES.

    A group is merged once it cannot grow: the next chunk would not fit. The last group stays
    open (more bytes may join it) unless ``final``: the log is complete and ``chunks`` reach
    its end.
    """
    groups: list[Group] = []

    def close(group: _Forming) -> None:
        if group.worth_rewriting:
            groups.append(Group(group.start, group.end))

    current: _Forming | None = None
    for chunk in chunks:
        end = chunk.start + chunk.length
        fits = current is not None and end - current.start <= MAX_CHUNK_BYTES
        if current is not None and fits and end <= upto:
            current = current.joined(chunk)
            continue
        if current is not None:
            if fits and not final:
                return Plan(groups, current.start)  # it may join once it is below upto
            close(current)
        if end > upto:
            return Plan(groups, chunk.start)  # the rest is not below upto yet
        may_compress = chunk.codec == ChunkCodec.RAW and chunk.length < COMPRESS_ON_WRITE_BYTES
        current = _Forming(chunk.start, end, may_compress)
    if current is not None and final:
        close(current)
        current = None
    if current is not None:
        return Plan(groups, current.start)
    return Plan(groups, chunks[-1].start + chunks[-1].length if chunks else 0)


def compact(db: Database, run_id: uuid.UUID, start: int, upto: int, final: bool = False) -> int:
    """Merge and compress the small chunks of run_id in [start, upto); return where the next
    call should start (everything before it is settled, so no pass redoes another's work).

    Looks at WINDOW bytes of offsets at a time, so a log of millions of tiny chunks is
    compacted in bounded memory.
    """
    cursor = start
    before: _Before | None = None
    while cursor < upto:
        window_end = cursor + WINDOW
        with db.read() as session:
            rows = session.execute(
                select(LogChunk.start_offset, LogChunk.length, LogChunk.codec)
                .where(
                    LogChunk.run_id == run_id,
                    LogChunk.start_offset >= cursor,
                    LogChunk.start_offset < window_end,
                )
                .order_by(LogChunk.start_offset)
            ).all()
        if not rows:
            return cursor
        chunks = [ChunkInfo(row.start_offset, row.length, row.codec) for row in rows]
        reaches_end = chunks[-1].start + chunks[-1].length >= upto
        plan = plan_groups(chunks, upto, final and reaches_end)
        for group in plan.groups:
            _rewrite(db, run_id, group)
        if plan.resume_at <= cursor:
            return cursor  # only an open group is left: it waits for more bytes
        # What is settled will not change again: its chunks get their search summaries.
        before = _summarize(db, run_id, cursor, plan.resume_at, before)
        cursor = plan.resume_at
    return cursor


def _rewrite(db: Database, run_id: uuid.UUID, group: Group) -> None:
    in_group = (
        LogChunk.run_id == run_id,
        LogChunk.start_offset >= group.start,
        LogChunk.start_offset < group.end,
    )
    with db.read() as session:
        rows = session.execute(
            select(
                LogChunk.start_offset,
                LogChunk.codec,
                LogChunk.data,
                LogChunk.newlines_before,
                LogChunk.times,
            )
            .where(*in_group)
            .order_by(LogChunk.start_offset)
        ).all()
    data = b"".join(decode(row.codec, row.data) for row in rows)
    if len(data) != group.end - group.start:
        return  # not what was planned (never expected); leave it as it is
    codec, stored = encode(data, THOROUGH)
    if codec == ChunkCodec.RAW and len(rows) == 1:
        return  # incompressible and nothing to merge
    with db.write() as session:
        session.execute(delete(LogChunk).where(*in_group))
        session.execute(
            insert(LogChunk).values(
                run_id=run_id,
                start_offset=group.start,
                length=len(data),
                codec=codec,
                data=stored,
                newlines_before=rows[0].newlines_before,
                times=_merged_times([(row.start_offset - group.start, row.times) for row in rows]),
            )
        )


def _merged_times(parts: list[tuple[int, bytes | None]]) -> bytes | None:
    """One chunk's time marks out of its parts' (offset in the chunk, marks); None if any
    part has none (stored before lines had times)."""
    marks: list[Mark] = []
    for offset, times in parts:
        if times is None:
            return None
        marks.extend(shift_marks(decode_marks(times), offset))
    return encode_marks(coalesce(marks))


@dataclass(frozen=True)
class _Before:
    """What a chunk's summary needs of the log before it (see chunkgrams)."""

    end: int  # the chunk's start: where the previous chunk ends
    line_start: int | None  # where the line holding byte ``end`` starts; None: unknown
    tail: bytes  # the previous chunk's bytes from line_start (or from its own start) to end
    summary: bytes | None  # the previous chunk's summary: holds the rest of that line's

    def summary_of(self, data: bytes) -> bytes | None:
        """The summary of the chunk after, holding ``data``; None when it cannot have one."""
        if self.line_start is None or self.end - self.line_start >= LONG_LINE_BYTES:
            return None
        if self.end - self.line_start == len(self.tail):
            return summarize(self.tail + data)
        # The line started before the previous chunk, whose summary holds its start.
        return None if self.summary is None else summarize(self.tail + data, self.summary)

    def then(self, data: bytes, summary: bytes | None) -> _Before:
        """What the chunk after the next one (which holds ``data``) needs."""
        end = self.end + len(data)
        newline = data.rfind(b"\n")
        if newline >= 0:
            return _Before(end, self.end + newline + 1, data[newline + 1 :], summary)
        return _Before(end, self.line_start, data, summary)


_SUMMARIES = cast(Table, ChunkSummary.__table__)


def _summarize(
    db: Database, run_id: uuid.UUID, start: int, end: int, before: _Before | None
) -> _Before | None:
    """Give the chunks starting in [start, end) that have none their search summary, in
    order (each needs the line it begins inside of); return what the next chunk needs."""
    found: list[dict[str, object]] = []
    for chunk_start, data, summary in logread.chunks_with_summaries(db, run_id, start, end):
        if before is None or before.end != chunk_start:
            line = logread.line_before(db, run_id, chunk_start)
            before = _Before(chunk_start, line.start, line.tail, line.summary)
        if summary is None:
            summary = before.summary_of(data)
            if summary is not None:
                found.append(
                    {
                        "run_id": run_id,
                        "start_offset": chunk_start,
                        "length": len(data),
                        "trigrams": summary,
                    }
                )
        before = before.then(data, summary)
    if found:
        with db.write() as session:
            dialect = session.connection().dialect.name
            new = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_SUMMARIES)
            # One made from a chunk since rewritten (same start, other length) is replaced.
            session.execute(
                new.on_conflict_do_update(
                    index_elements=[_SUMMARIES.c.run_id, _SUMMARIES.c.start_offset],
                    set_={"length": new.excluded.length, "trigrams": new.excluded.trigrams},
                ),
                found,
            )
    return before
