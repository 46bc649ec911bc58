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

from tests.helpers import SseEvent, new_log, new_run, sse_events
from trainlog import runs, store
from trainlog.db import Database
from trainlog.models import RunStatus
from trainlog.tailer import LogHub
from trainlog.viewer import log_events


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def write_log(db: Database, run_id: uuid.UUID, pieces: list[bytes], exit_code: int) -> None:
    """Append pieces after what the log holds, then end the run."""
    with db.read() as session:
        offset = store.log_size(session, run_id)
    for piece in pieces:
        with db.write() as session:
            offset = store.append(session, run_id, offset, piece)
        await asyncio.sleep(0.002)
    with db.write() as session:
        runs.finish(session, run_id, RunStatus.FAILED, exit_code)


def new_hub(db: Database, **options: Any) -> LogHub:
    """A hub that looks at the store every 10 ms, so the tests never wait long."""
    return LogHub(db, **{"poll_interval": 0.01, "heartbeat_interval": 5, **options})


def events_of(frames: list[bytes]) -> Iterator[SseEvent]:
    return sse_events(b"".join(frames))


async def watch(hub: LogHub, run_id: uuid.UUID, offset: int = 0, stall: float = 0) -> bytes:
    """One viewer: the bytes it received, checked for ids that are exact offsets."""
    frames = []
    stream = log_events(hub, run_id, offset)
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


def count_reads_of(db: Database, table: str = "log_chunks") -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if f"FROM {table}" in statement:
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
    reads = count_reads_of(db)
    hub = new_hub(db)
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
    hub = new_hub(db, queue_pages=2)
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
    hub = new_hub(db)
    assert await watch(hub, run_id) == b"a" * 10 + b"b" * 10
    assert await watch(hub, run_id, offset=15) == b"b" * 5
    assert await watch(hub, run_id, offset=500) == b""
    assert hub.active_runs == 0
    await hub.close()


@pytest.mark.anyio
async def test_a_crowd_joining_a_live_run_at_once_costs_the_store_a_read_not_one_each(
    db: Database,
) -> None:
    rng = random.Random(7)
    history = [rng.randbytes(rng.randrange(1, 3000)) for _ in range(100)]
    run_id, _ = new_log(db, history)
    chunk_reads = count_reads_of(db)
    run_lookups = count_reads_of(db, "experiment_runs")
    # No polls while the crowd joins (every look at the store, new bytes or not, is counted);
    # the wake-up after the writes below is what the listener would do.
    hub = new_hub(db, poll_interval=30)

    async def join() -> bytes:
        # As the route does: check the run exists, then stream.
        await hub.ensure_run(run_id)
        return await watch(hub, run_id)

    crowd = [asyncio.create_task(join()) for _ in range(50)]
    # Every viewer has joined and caught up once the tailer has read (however slow the
    # machine); then a while longer, for any read a viewer should not make to show.
    for _ in range(200):
        if chunk_reads:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    joined_with = len(chunk_reads)
    late = [asyncio.create_task(join()) for _ in range(20)]
    await asyncio.sleep(0.2)
    late_joined_with = len(chunk_reads)
    more = [rng.randbytes(100) for _ in range(20)]
    await write_log(db, run_id, more, exit_code=9)
    hub.wake(run_id)
    whole = b"".join(history + more)
    got_all = await asyncio.gather(*crowd, *late)
    assert all(got == whole for got in got_all)
    # One look at the store for 50 viewers (the tailer's), not 50; the late ones caught up
    # from the tailer's memory of the log's tail.
    assert joined_with == 1, joined_with
    assert late_joined_with == joined_with
    assert sum("FROM experiment_runs" in s and "WHERE" in s for s in run_lookups) <= 2
    await hub.close()


@pytest.mark.anyio
async def test_an_unknown_run_is_refused_to_every_viewer_of_a_crowd(db: Database) -> None:
    hub = new_hub(db)
    lookups = count_reads_of(db, "experiment_runs")
    results = await asyncio.gather(
        *(hub.ensure_run(uuid.uuid4()) for _ in range(3)),
        *(hub.ensure_run(uuid.UUID(int=1)) for _ in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(result, runs.RunNotFound) for result in results)
    assert len(lookups) == 4  # one per distinct run id
    await hub.close()


@pytest.mark.anyio
async def test_a_quiet_run_sends_heartbeats(db: Database) -> None:
    run_id = new_run(db)
    hub = new_hub(db, heartbeat_interval=0.05)
    frames: list[bytes] = []

    async def listen() -> None:
        async for frame in log_events(hub, run_id, 0):
            frames.append(frame)

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.3)
    listener.cancel()
    heartbeats = [e for e in events_of(frames) if e.event == "heartbeat"]
    assert 3 <= len(heartbeats) <= 7, len(heartbeats)
    await hub.close()
