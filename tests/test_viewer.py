"""The shared tailer and its viewers, against a real database (no server, no sleeps to
synchronise: the writer and the viewers run concurrently)."""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.helpers import SseEvent, parse_sse
from trainlog import runs, store
from trainlog.db import Database
from trainlog.models import RunSource, RunStatus
from trainlog.tailer import LogHub
from trainlog.viewer import log_events


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def new_run(db: Database) -> uuid.UUID:
    with db.write() as session:
        return runs.create(session, ["x"], None, RunSource.CLI).id


async def write_log(db: Database, run_id: uuid.UUID, pieces: list[bytes], exit_code: int) -> None:
    offset = 0
    for piece in pieces:
        with db.write() as session:
            offset = store.append(session, run_id, offset, piece)
        await asyncio.sleep(0.002)
    with db.write() as session:
        runs.finish(session, run_id, RunStatus.FAILED, exit_code)


def events_of(frames: list[bytes]) -> Iterator[SseEvent]:
    return parse_sse(iter(b"".join(frames).decode().split("\n")))


async def watch(hub: LogHub, run_id: uuid.UUID, offset: int = 0, stall: float = 0) -> bytes:
    """One viewer: the bytes it received, checked for ids that are exact offsets."""
    frames = []
    stream = log_events(hub, run_id, offset, heartbeat_interval=5)
    async for frame in stream:
        frames.append(frame)
        if stall and len(frames) == 3:
            await asyncio.sleep(stall)  # a viewer that stops reading for a while
    received = bytearray()
    events = list(events_of(frames))
    for item in events:
        if item.event == "log":
            received += base64.b64decode(item.data["chunk"])
            assert item.id == str(offset + len(received))
    assert events[-1].event == "done" and events[-1].data["exit_code"] == 9
    final_size = events[-1].data["final_size"]
    # Done comes once every byte up to the end was sent (or the viewer began past the end).
    assert final_size == offset + len(received) or (not received and offset >= final_size)
    return bytes(received)


def count_chunk_reads(db: Database) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM log_chunks" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    return seen


@pytest.mark.anyio
async def test_every_viewer_gets_every_byte_once_and_reads_do_not_grow_with_viewers(
    db: Database,
) -> None:
    run_id = new_run(db)
    rng = random.Random(5)
    pieces = [rng.randbytes(rng.randrange(1, 3000)) for _ in range(150)]
    reads = count_chunk_reads(db)
    hub = LogHub(db, poll_interval=0.01)
    viewers = [asyncio.create_task(watch(hub, run_id)) for _ in range(40)]
    await asyncio.sleep(0.05)  # let them join before the run writes
    await write_log(db, run_id, pieces, exit_code=9)
    results = await asyncio.gather(*viewers)
    assert all(result == b"".join(pieces) for result in results)
    # One read per viewer to catch up on joining, then reads shared by all: far fewer than
    # 40 viewers polling on their own (150 appends x 40).
    assert len(reads) <= 40 + 150 + 20
    await hub.close()


@pytest.mark.anyio
async def test_a_stalled_viewer_is_dropped_from_the_fan_out_and_loses_nothing(
    db: Database,
) -> None:
    run_id = new_run(db)
    pieces = [bytes([i % 256]) * 500 for i in range(200)]
    hub = LogHub(db, poll_interval=0.01, queue_pages=2)
    prompt = asyncio.create_task(watch(hub, run_id))
    stalled = asyncio.create_task(watch(hub, run_id, stall=0.5))
    late = asyncio.create_task(watch(hub, run_id, offset=1234))
    await asyncio.sleep(0.05)
    await write_log(db, run_id, pieces, exit_code=9)
    whole = b"".join(pieces)
    assert await prompt == whole
    assert await stalled == whole
    assert await late == whole[1234:]
    assert hub.drops >= 1
    await hub.close()


@pytest.mark.anyio
async def test_a_viewer_of_a_finished_run_gets_history_then_done(db: Database) -> None:
    run_id = new_run(db)
    await write_log(db, run_id, [b"a" * 10, b"b" * 10], exit_code=9)
    hub = LogHub(db, poll_interval=0.01)
    assert await watch(hub, run_id) == b"a" * 10 + b"b" * 10
    assert await watch(hub, run_id, offset=15) == b"b" * 5
    assert await watch(hub, run_id, offset=500) == b""
    assert hub.active_runs == 0
    await hub.close()
