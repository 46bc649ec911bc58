"""The metric stream through a database error: the one retry loop of every stream
(``resumable``) waits it out and goes on from the next unsent seq, no gap, no duplicate."""

from __future__ import annotations

import os
import socket
import uuid

import anyio
from sqlalchemy import text

from tests.helpers import new_run, sse_events
from trainlog import runs, store
from trainlog.api.sse_response import resumable
from trainlog.db import Database
from trainlog.metrics.patterns import Rules
from trainlog.metrics.store import catch_up, open_cursor
from trainlog.metrics.stream import metric_events
from trainlog.models import RunStatus


def _print(db: Database, run_id: uuid.UUID, offset: int, steps: range) -> int:
    with db.write() as session:
        data = "".join(f"step {i} | loss {i / 10} | acc 0.{i}\n" for i in steps).encode()
        offset = store.append(session, run_id, offset, data)
    catch_up(db, run_id, 50)
    return offset


def _rename(db: Database, old: str, new: str) -> None:
    with db.write() as session:
        session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


def test_the_metric_stream_waits_out_a_database_error_and_goes_on_exactly(db: Database) -> None:
    run_id = new_run(db)
    with db.write() as session:
        open_cursor(session, run_id, Rules())
        runs.mark_running(session, run_id, socket.gethostname(), os.getpid())
    offset = _print(db, run_id, 0, range(3))
    frames: list[bytes] = []

    def events(kind: str) -> list[dict[str, object]]:
        return [event.data for event in sse_events(b"".join(frames)) if event.event == kind]

    async def until(check: object) -> None:
        with anyio.fail_after(30):
            while not check():  # type: ignore[operator]
                await anyio.sleep(0.02)

    async def main() -> None:
        async def body(frame: bytes) -> None:
            frames.append(frame)

        pump = resumable(lambda seq: metric_events(db, run_id, seq, 0.02, 60), 0, event="metric")

        async def stream() -> None:
            await pump(body)

        async with anyio.create_task_group() as group:
            group.start_soon(stream)
            await until(lambda: len(events("metric")) == 1)
            # The points table is gone for a while: every read fails.
            await anyio.to_thread.run_sync(_rename, db, "metric_points", "metric_points_away")
            await until(lambda: events("reconnecting"))
            await anyio.to_thread.run_sync(_rename, db, "metric_points_away", "metric_points")
            nonlocal offset
            offset = await anyio.to_thread.run_sync(_print, db, run_id, offset, range(3, 6))
            with db.write() as session:
                runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)
            await anyio.to_thread.run_sync(catch_up, db, run_id, 50)

    anyio.run(main)
    points = [p for event in events("metric") for p in event["points"]]  # type: ignore[attr-defined]
    assert [p["seq"] for p in points] == list(range(12))  # every point once, in order
    assert events("reconnecting") == [{"offset": 6}]  # it resumes after the last seq sent
    assert events("done") == [{"points": 12}]
