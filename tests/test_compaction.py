"""Compaction keeps every byte and offset while shrinking what is stored."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import func, select

from tests.helpers import new_log
from trainlog import logread, store
from trainlog.compaction import ChunkInfo, Group, Plan, compact, plan_groups
from trainlog.db import Database
from trainlog.models import ChunkCodec, ChunkSummary, LogChunk
from trainlog.offsets import MAX_CHUNK_BYTES

MIB = MAX_CHUNK_BYTES
RAW, ZSTD = ChunkCodec.RAW, ChunkCodec.ZSTD


def chunks(*spec: tuple[int, int]) -> list[ChunkInfo]:
    out, offset = [], 0
    for length, codec in spec:
        out.append(ChunkInfo(offset, length, codec))
        offset += length
    return out


def test_full_groups_close_and_the_last_stays_open() -> None:
    plan = plan_groups(chunks((MIB // 2, RAW), (MIB // 2, RAW), (10, RAW), (10, RAW)), 10**9, False)
    assert plan.groups == [Group(0, MIB)]
    assert plan.resume_at == MIB  # the 20-byte tail may still grow


def test_final_merges_the_tail_and_compressed_chunks_join_when_they_fit() -> None:
    spec = chunks((100, ZSTD), (10, RAW), (10, RAW), (50, ZSTD), (5, RAW))
    assert plan_groups(spec, 175, final=True).groups == [Group(0, 175)]
    # Not final: the tail may still grow, so the group stays open.
    assert plan_groups(spec, 175, final=False) == Plan([], 0)


def test_a_lone_chunk_that_was_already_tried_is_left_alone() -> None:
    full_then_tail = chunks((MIB, ZSTD), (10, RAW))
    assert plan_groups(full_then_tail, MIB + 10, final=True).groups == [Group(MIB, MIB + 10)]
    halves = chunks((MIB // 2 + 1, ZSTD), (MIB // 2 + 1, ZSTD))
    assert plan_groups(halves, MIB + 2, final=True).groups == []
    # Raw and that big: compression was tried on the way in and did not pay.
    incompressible = chunks((MIB, RAW), (MIB, RAW))
    assert plan_groups(incompressible, 2 * MIB, final=True).groups == []


def test_nothing_past_upto_is_touched() -> None:
    plan = plan_groups(chunks((10, RAW), (MIB, RAW)), upto=500, final=False)
    assert plan.groups == [Group(0, 10)] and plan.resume_at == 10


def stored(db: Database, run_id: uuid.UUID) -> tuple[int, int, list[bytes]]:
    with db.read() as session:
        count, size = session.execute(
            select(func.count(), func.sum(func.length(LogChunk.data))).where(
                LogChunk.run_id == run_id
            )
        ).one()
    return count, size, list(logread.iter_bytes(db, run_id, 0, 10**12))


def test_a_tqdm_log_shrinks_and_reads_back_identically(db: Database) -> None:
    bar = [
        f"\r 42%|████▏     | {i}/1000 [00:0{i % 10}<00:07, 1.2it/s]".encode() for i in range(30000)
    ]
    run_id, whole = new_log(db, [b"".join(bar[i : i + 30]) for i in range(0, len(bar), 30)])
    count_before, size_before, _ = stored(db, run_id)
    assert compact(db, run_id, 0, upto=len(whole), final=True) == len(whole)
    count_after, size_after, pages = stored(db, run_id)
    assert b"".join(pages) == whole
    assert count_after < count_before / 50 and size_after < size_before / 5
    rng = random.Random(4)
    with db.read() as session:
        for _ in range(30):
            start = rng.randrange(len(whole))
            assert logread.read(session, run_id, start, start + 5000) == whole[start : start + 5000]


def test_random_bytes_are_merged_but_not_inflated(db: Database) -> None:
    rng = random.Random(9)
    run_id, whole = new_log(db, [rng.randbytes(3000) for _ in range(500)])
    compact(db, run_id, 0, upto=len(whole), final=True)
    count, size, pages = stored(db, run_id)
    assert b"".join(pages) == whole and size == len(whole) and count <= 3


def test_compacting_while_the_log_grows_keeps_appends_working(db: Database) -> None:
    run_id, first = new_log(
        db, [b"epoch %d: loss=0.123 acc=0.456\n" % i for i in range(5000)] + [b"x" * MIB]
    )
    settled = compact(db, run_id, 0, upto=len(first) - MIB)  # the newest bytes stay as they are
    assert 0 < settled <= len(first) - MIB
    with db.write() as session:
        store.append(session, run_id, len(first), b"more\n")
    assert compact(db, run_id, settled, upto=len(first) + 5, final=True) == len(first) + 5
    assert compact(db, run_id, 0, upto=len(first) + 5, final=True) == len(first) + 5  # idempotent
    assert b"".join(stored(db, run_id)[2]) == first + b"more\n"


def summaries(db: Database, run_id: uuid.UUID) -> list[tuple[int, bytes | None]]:
    with db.read() as session:
        rows = session.execute(
            select(LogChunk.start_offset, ChunkSummary.trigrams)
            .outerjoin(
                ChunkSummary,
                (ChunkSummary.run_id == LogChunk.run_id)
                & (ChunkSummary.start_offset == LogChunk.start_offset)
                & (ChunkSummary.length == LogChunk.length),
            )
            .where(LogChunk.run_id == run_id)
            .order_by(LogChunk.start_offset)
        ).all()
    return [(row.start_offset, row.trigrams) for row in rows]


def test_search_summaries_do_not_depend_on_where_passes_stop(db: Database) -> None:
    # 1 MiB pieces, compressed as written and never merged: the same chunks either way. A
    # line runs from chunk 1 through chunk 2 (no newline in it) into chunk 3.
    log = b"".join(b"step %d ok\n" % i for i in range(200_000))[: MIB + MIB // 2]
    log += b"x" * (2 * MIB) + b"\n" + b"y" * (MIB // 3)
    pieces = [log[at : at + MIB] for at in range(0, len(log), MIB)]
    at_once, _ = new_log(db, pieces)
    compact(db, at_once, 0, upto=len(log), final=True)
    in_passes, _ = new_log(db, pieces)
    for upto in (MIB + 1, 2 * MIB + 1, 3 * MIB + 1):  # each pass starts after a chunk
        compact(db, in_passes, upto - MIB - 1, upto)
    compact(db, in_passes, 3 * MIB, upto=len(log), final=True)
    whole = summaries(db, at_once)
    assert len(whole) == 4 and all(summary is not None for _, summary in whole)
    assert summaries(db, in_passes) == whole
