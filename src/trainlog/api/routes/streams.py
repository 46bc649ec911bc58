"""Several runs' live logs on one SSE stream.

Browsers open at most six HTTP/1.1 connections per host, and each per-run stream holds one:
a seventh live tab would wait, and so would every other page of trainlog in that browser.
This stream carries any number of runs, each from its own offset, with the same events as
``/runs/{id}/logs/stream``, tagged with their run.
"""

from __future__ import annotations

import re
import uuid
from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from trainlog import sse
from trainlog.api.deps import HubDep, SettingsDep
from trainlog.api.sse_response import (
    STREAM_HEADERS,
    STREAM_RESPONSES,
    EventStreamResponse,
    resumable,
    together,
)
from trainlog.offsets import MAX_OFFSET
from trainlog.viewer import log_events

router = APIRouter(prefix="/streams", tags=["logs"])

# Runs on one stream at most: more than a browser has tabs, few enough that one request
# cannot make the server follow every run it has.
MAX_RUNS = 100

# RUN_ID or RUN_ID:OFFSET; ASCII digits only (str.isdigit takes superscripts int() refuses).
_RUN_AT = re.compile(r"(?P<run>[^:]+)(?::(?P<offset>[0-9]{1,19}))?", re.ASCII)


def parse_run_at(text: str) -> tuple[uuid.UUID, int]:
    """A ``run`` parameter, ``RUN_ID`` (from offset 0) or ``RUN_ID:OFFSET``; ValueError if
    it is neither."""
    match = _RUN_AT.fullmatch(text)
    if match is None:
        raise ValueError(f"run must be RUN_ID or RUN_ID:OFFSET, got {text!r}")
    try:
        run_id = uuid.UUID(match["run"])
    except ValueError:
        raise ValueError(f"run must begin with a run id, got {text!r}") from None
    offset = int(match["offset"] or 0)
    if offset > MAX_OFFSET:
        raise ValueError(f"offset must be at most {MAX_OFFSET}, got {text!r}")
    return run_id, offset


def parse_runs(texts: list[str]) -> dict[uuid.UUID, int]:
    """Each run asked for, with the offset its stream starts at; ValueError for a bad list."""
    if not texts:
        raise ValueError("name at least one run: ?run=RUN_ID:OFFSET")
    if len(texts) > MAX_RUNS:
        raise ValueError(f"at most {MAX_RUNS} runs on one stream, got {len(texts)}")
    starts: dict[uuid.UUID, int] = {}
    for text in texts:
        run_id, offset = parse_run_at(text)
        if run_id in starts:
            raise ValueError(f"run {run_id} is named twice")
        starts[run_id] = offset
    return starts


@router.get(
    "",
    response_class=StreamingResponse,  # for the OpenAPI document: a streamed body
    responses=STREAM_RESPONSES,
)
async def stream_runs(
    hub: HubDep,
    settings: SettingsDep,
    run: Annotated[list[str], Query(description="RUN_ID:OFFSET, once per run")] = [],  # noqa: B006
) -> EventStreamResponse:
    """Server-Sent Events of several runs: each run's ``log``, ``heartbeat``, ``reconnecting``
    and ``done`` events as on ``/runs/{id}/logs/stream``, with ``"run": "<id>"`` first in
    their data. Ends once every run's ``done`` is sent.

    A reconnect names each run's offset again (``Last-Event-ID`` is one offset, so it is not
    used here): the offset after the last ``log`` event received for that run.
    """
    try:
        starts = parse_runs(run)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    for run_id in starts:
        await hub.ensure_run(run_id)
    return EventStreamResponse(
        together(
            [
                (
                    resumable(partial(log_events, hub, run_id), start),
                    sse.tagger("run", str(run_id)),
                )
                for run_id, start in starts.items()
            ]
        ),
        settings.send_timeout,
        headers=STREAM_HEADERS,
    )
