"""A run's metric points as Server-Sent Events: ``metric`` (id = the next point's seq),
``heartbeat``, ``done`` once the run has ended and all its points are sent."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import anyio
from starlette.concurrency import run_in_threadpool

from trainlog import sse
from trainlog.db import Database
from trainlog.metrics.store import NewPoints, new_points
from trainlog.offsets import MAX_OFFSET, parse_decimal
from trainlog.runs import RunNotFound
from trainlog.stream import deleted_event, heartbeat_event


class BadMetricResumePoint(ValueError):
    pass


def resume_seq(last_event_id: str | None, after: int | None) -> int:
    """Where a metric stream starts: Last-Event-ID (a browser's reconnect) over ``?from_seq=``."""
    if last_event_id is not None and last_event_id.strip():
        text = last_event_id.strip()
        seq = parse_decimal(text)
        if seq is None or seq > MAX_OFFSET:
            raise BadMetricResumePoint(f"Last-Event-ID must be a point's seq, got {text!r}")
        return seq
    return after or 0


async def metric_events(
    db: Database, run_id: uuid.UUID, from_seq: int, poll: float, heartbeat: float
) -> AsyncIterator[bytes]:
    """Every point from ``from_seq`` on, each once, in order; looks for new ones every ``poll``.

    A database error ends the events; ``api.sse_response.resumable`` (event ``metric``) waits
    the outage out and opens them again at the next unsent seq: no gap, no duplicate.
    """
    seq = from_seq
    quiet_since = time.monotonic()
    while True:
        try:
            found = await run_in_threadpool(_read, db, run_id, seq)
        except RunNotFound:
            yield deleted_event()  # deleted while watched, as the log streams say it
            return
        if found.points:
            seq = found.points[-1]["seq"] + 1
            yield sse.frame("metric", {"points": found.points}, event_id=seq)
            quiet_since = time.monotonic()
            continue
        if found.complete:
            yield sse.frame("done", {"points": seq})
            return
        if time.monotonic() - quiet_since >= heartbeat:
            yield heartbeat_event()
            quiet_since = time.monotonic()
        await anyio.sleep(poll)


def _read(db: Database, run_id: uuid.UUID, seq: int) -> NewPoints:
    with db.read() as session:
        return new_points(session, run_id, seq)
