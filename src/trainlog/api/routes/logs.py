from __future__ import annotations

import base64
import uuid
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from trainlog import logread, runs, store
from trainlog.api.bodies import json_with_base64_data
from trainlog.api.deps import DbDep, HubDep, SettingsDep
from trainlog.api.schemas import ErrorOut, LineWindowOut, LogPage, SearchOut
from trainlog.api.sse_response import (
    STREAM_HEADERS,
    STREAM_RESPONSES,
    EventStreamResponse,
    resumable,
)
from trainlog.db import Database
from trainlog.logread import search
from trainlog.logread.text import timestamped_text
from trainlog.offsets import MAX_OFFSET, parse_range_header
from trainlog.plaintext import plain_text
from trainlog.stream import resume_offset
from trainlog.viewer import log_events

router = APIRouter(prefix="/runs/{run_id}/logs", tags=["logs"])

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="first byte to return")]


def _log_state(db: Database, run_id: uuid.UUID) -> tuple[int, str]:
    with db.read() as session:
        runs.get(session, run_id)
        size, updated_at = store.log_state(session, run_id)
    return size, updated_at.isoformat()


@router.get(
    "",
    response_model=LogPage,
    responses={200: {"model": LogPage}, 404: {"model": ErrorOut}},
)
def get_logs(
    run_id: uuid.UUID,
    db: DbDep,
    offset: Offset = 0,
    limit: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
) -> StreamingResponse:
    """The log's bytes from ``offset`` (all of them, or at most ``limit``), base64 in JSON.

    ``size`` is the whole log's size at the time of the request; ``data`` ends there.
    """
    size, updated_at = _log_state(db, run_id)
    end = size if limit is None else min(size, offset + limit)
    fields = {"run_id": str(run_id), "offset": offset, "size": size, "updated_at": updated_at}
    body = json_with_base64_data(fields, store.iter_bytes(db, run_id, offset, end))
    return StreamingResponse(body, media_type="application/json")


@router.get(
    "/lines",
    response_model=LineWindowOut,
    responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def get_lines(
    run_id: uuid.UUID,
    db: DbDep,
    start: Annotated[
        int | None, Query(ge=1, le=MAX_OFFSET, description="the first line's number (from 1)")
    ] = None,
    offset: Annotated[
        int | None, Query(ge=0, le=MAX_OFFSET, description="start at the line holding this byte")
    ] = None,
    count: Annotated[int, Query(ge=1, le=logread.MAX_WINDOW_LINES)] = 1000,
) -> dict[str, object]:
    """A window of whole lines, from line ``start`` (default 1) or from the line holding byte
    ``offset``, with each line's time. Past the end: no lines. A live run's lines so far."""
    if start is not None and offset is not None:
        raise HTTPException(422, "give start or offset, not both")
    with db.read() as session:
        runs.get(session, run_id)
    window = logread.lines_window(db, run_id, start, offset, count)
    return {
        "run_id": str(run_id),
        "start": window.start,
        "offset": window.offset,
        "end_offset": window.end_offset,
        "total_lines": window.totals.lines,
        "size": window.totals.size,
        "data": base64.b64encode(window.data).decode(),
        "times": window.times,
    }


@router.get(
    "/search",
    response_model=SearchOut,
    responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def search_log(
    run_id: uuid.UUID,
    db: DbDep,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="what to find")],
    regex: Annotated[bool, Query(description="q is a regular expression (RE2)")] = False,
    case: Annotated[bool, Query(description="match case (default: ignore it)")] = False,
    after: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="search lines starting at or after this")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=search.MAX_MATCHES)] = 100,
) -> dict[str, object]:
    """The lines whose plain text matches ``q``, over the whole log as stored so far.

    A search that runs long answers with what it found and ``next_after``: pass it as
    ``after`` to go on; null when the end was reached.
    """
    try:
        query = search.matcher(q, regex, case)
    except search.BadQuery as exc:
        raise HTTPException(422, str(exc)) from None
    with db.read() as session:
        runs.get(session, run_id)
    found = search.search(db, run_id, query, after, limit)
    return {
        "matches": [asdict(match) for match in found.matches],
        "next_after": found.next_after,
        "scanned_to": found.scanned_to,
    }


@router.get(
    "/raw",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        206: {"content": {"application/octet-stream": {}}},
        404: {"model": ErrorOut},
        416: {"model": ErrorOut},
    },
)
def get_raw_log(
    run_id: uuid.UUID,
    request: Request,
    db: DbDep,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> StreamingResponse:
    """The log's bytes as a download; one HTTP Range (``bytes=a-b``) is honoured."""
    size, _ = _log_state(db, run_id)
    request.state.log_size = size
    byte_range = parse_range_header(range_header, size)
    start, end = (0, size) if byte_range is None else (byte_range.start, byte_range.end)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
        "Content-Disposition": f'attachment; filename="trainlog-{run_id}.log"',
    }
    if byte_range is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return StreamingResponse(
        store.iter_bytes(db, run_id, start, end),
        status_code=206 if byte_range is not None else 200,
        media_type="application/octet-stream",
        headers=headers,
    )


@router.get(
    "/text",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}}, 404: {"model": ErrorOut}},
)
def get_text_log(
    run_id: uuid.UUID,
    db: DbDep,
    settings: SettingsDep,
    timestamps: Annotated[
        bool, Query(description="start each line with its time (ISO 8601 UTC, ms)")
    ] = False,
) -> StreamingResponse:
    """The log as a terminal would leave it: no colours or escapes, redraws collapsed.

    Computed as the bytes stream through, in bounded memory, up to the log's size now.
    """
    with db.read() as session:
        rows = runs.get(session, run_id).term_rows or settings.term_rows
        size = store.log_size(session, run_id)
    text = (
        timestamped_text(db, run_id, size)
        if timestamps
        else plain_text(logread.iter_bytes(db, run_id, 0, size), rows)
    )
    return StreamingResponse(
        text,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="trainlog-{run_id}.txt"'},
    )


@router.get(
    "/stream",
    response_class=StreamingResponse,  # for the OpenAPI document: a streamed body
    responses=STREAM_RESPONSES,
)
async def stream_logs(
    run_id: uuid.UUID,
    hub: HubDep,
    settings: SettingsDep,
    offset: Annotated[int | None, Query(ge=0, le=MAX_OFFSET)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventStreamResponse:
    """Server-Sent Events: ``log`` (id = byte offset after the chunk), ``heartbeat``, ``done``.

    Resumes from ``Last-Event-ID`` (sent by browsers on reconnect) or else ``?offset=``.
    """
    start = resume_offset(last_event_id, offset)
    await hub.ensure_run(run_id)
    return EventStreamResponse(
        resumable(lambda at: log_events(hub, run_id, at), start),
        settings.send_timeout,
        headers=STREAM_HEADERS,
    )
