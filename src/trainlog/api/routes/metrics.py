"""Metric series extracted from a run's log: summaries, points, live events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from starlette.concurrency import run_in_threadpool

from trainlog.api.deps import DbDep, SettingsDep
from trainlog.api.schemas import ErrorOut
from trainlog.api.sse_response import STREAM_HEADERS, EventStreamResponse, resumable
from trainlog.db import Database
from trainlog.metrics import store as metrics_store
from trainlog.metrics.stream import metric_events, resume_seq
from trainlog.offsets import MAX_OFFSET
from trainlog.settings import Settings

router = APIRouter(tags=["metrics"])

MAX_POINTS_LIMIT = 100_000


def _caught_up(db: Database, settings: Settings, run_id: uuid.UUID) -> None:
    """Extraction on first use: a run that ended without a (complete) extraction, such as one
    stored before metrics existed, is extracted now. A live run's runner does its own."""
    metrics_store.ensure_cursor(db, run_id, settings.metric_rules())
    with db.read() as session:
        live = metrics_store.is_live(session, run_id)
    if not live:
        metrics_store.catch_up(db, run_id, settings.max_metric_series)


@router.get(
    "/runs/{run_id}/metrics",
    responses={404: {"model": ErrorOut}},
)
def list_series(run_id: uuid.UUID, db: DbDep, settings: SettingsDep) -> dict[str, Any]:
    """``{"series": [{"name", "points", "last": {"step", "value", "time", "line", "offset"}}]}``:
    every series of the run, ``last`` its most recently printed point. Values are numbers, or
    the strings "nan", "inf", "-inf"."""
    _caught_up(db, settings, run_id)
    with db.read() as session:
        summaries = metrics_store.series(session, run_id)
    return {"series": [{"name": s.name, "points": s.points, "last": s.last} for s in summaries]}


@router.get("/runs/{run_id}/metrics-stream", responses={404: {"model": ErrorOut}})
async def stream_metrics(
    run_id: uuid.UUID,
    db: DbDep,
    settings: SettingsDep,
    from_seq: Annotated[
        int | None, Query(ge=0, le=MAX_OFFSET, description="the first point's seq")
    ] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStreamResponse:
    """Server-Sent Events: ``metric`` (``{"points": [{"name", "seq", "step", "value", "line",
    "offset", "time"}]}``, id = the next seq), ``heartbeat``, ``done``. Resumes exactly from
    Last-Event-ID, or ``?from_seq=``."""
    start = resume_seq(last_event_id, from_seq)
    await run_in_threadpool(_caught_up, db, settings, run_id)

    def events(at: int) -> AsyncIterator[bytes]:
        return metric_events(db, run_id, at, settings.poll_interval, settings.heartbeat_interval)

    return EventStreamResponse(
        resumable(events, start, event="metric"), settings.send_timeout, headers=STREAM_HEADERS
    )


@router.get("/runs/{run_id}/metrics/{name:path}", responses={404: {"model": ErrorOut}})
def get_series(
    run_id: uuid.UUID,
    name: str,
    db: DbDep,
    settings: SettingsDep,
    after_step: Annotated[float | None, Query(description="only points past this step")] = None,
    max_points: Annotated[
        int | None,
        Query(ge=2, le=MAX_POINTS_LIMIT, description="downsample, keeping extremes"),
    ] = None,
    after_seq: Annotated[
        int | None,
        Query(ge=0, le=MAX_OFFSET, description="only points printed after the point of this seq"),
    ] = None,
) -> dict[str, Any]:
    """``{"name", "points": [{"seq", "step", "value", "line", "offset", "time"}]}`` in the order
    printed; an unknown name has no points."""
    _caught_up(db, settings, run_id)
    with db.read() as session:
        points = metrics_store.series_points(
            session, run_id, name, after_step, max_points, after_seq
        )
    return {"name": name, "points": points}


@router.get("/metrics/latest")
def latest_values(
    db: DbDep,
    name: Annotated[str, Query(min_length=1, max_length=64)],
    run: Annotated[list[uuid.UUID], Query(max_length=500, description="run ids")],
) -> dict[str, Any]:
    """``{"name", "runs": {run_id: {"step", "value", "time", "line", "offset"}}}``: each run's
    most recently printed value of series ``name`` (runs without one are left out)."""
    with db.read() as session:
        found = metrics_store.latest(session, run, name)
    return {"name": name, "runs": {str(run_id): point for run_id, point in found.items()}}
