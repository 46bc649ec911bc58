"""HTTP ingest: remote runners register a run, then append, report and end it with its token.

See ``trainlog.ingest`` for the rules, and docs/ingest.md for the protocol.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import uuid
from datetime import datetime
from functools import partial
from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainlog import ingest, runs
from trainlog.api.deps import DbDep, SettingsDep
from trainlog.api.schemas import ErrorOut, GitOut, RunOut
from trainlog.db import Database
from trainlog.models import RunStatus, utcnow
from trainlog.provenance import GitState, Provenance
from trainlog.runner.compactor import compact_ended
from trainlog.settings import Settings
from trainlog.tags import check_tags

router = APIRouter(prefix="/runs", tags=["ingest"])
# This process's run tokens checked already (each replica has its own).
KNOWN_TOKENS = ingest.KnownTokens()


# Async although it does no I/O: FastAPI runs a plain function dependency in its thread
# pool, a thread hop per request on a PATCH's way from the child to its viewers.
async def _bearer(authorization: Annotated[str | None, Header()] = None) -> str:
    return _token(authorization)


def _token(authorization: str | None) -> str:
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a token is required: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return credentials.strip()


Bearer = Annotated[str, Depends(_bearer)]


class IngestCreate(BaseModel):
    """A run started elsewhere, with what ``trainlog run`` records of where it came from;
    ``clock`` is the runner's time when it sent this."""

    model_config = ConfigDict(extra="forbid")

    command: list[Annotated[str, Field(max_length=65536)]] = Field(min_length=1, max_length=4096)
    config: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    tags: (
        dict[Annotated[str, Field(max_length=255)], Annotated[str, Field(max_length=255)]] | None
    ) = Field(default=None, max_length=256)
    host: str | None = Field(default=None, max_length=255)
    user: str | None = Field(default=None, max_length=255)
    cwd: str | None = Field(default=None, max_length=4096)
    git: GitOut | None = None
    clock: datetime | None = None

    @field_validator("tags")
    @classmethod
    def _tags_must_be_valid(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            check_tags(value)
        return value

    def provenance(self) -> Provenance:
        git = (
            GitState(commit=self.git.commit, branch=self.git.branch, dirty=self.git.dirty)
            if self.git is not None
            else None
        )
        return Provenance(host=self.host, user=self.user, cwd=self.cwd, git=git)


class IngestOut(BaseModel):
    run: RunOut
    token: str = Field(description="the run token: appends to, reports on and ends this run only")
    max_log_bytes: int = Field(description="the server's log limit: bytes past it answer 413")
    max_body_bytes: int = Field(description="the largest PATCH body the server takes")


class Started(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(max_length=255)
    pid: int = Field(ge=0)
    term_cols: int | None = Field(default=None, ge=1, le=10000)
    term_rows: int | None = Field(default=None, ge=1, le=10000)


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: str | None = Field(
        default=None, max_length=4096, description="set (or, as null, withdraw) the run's note"
    )


class HeartbeatOut(BaseModel):
    cancel_requested: bool


class Finish(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["succeeded", "failed", "cancelled"]
    exit_code: int | None
    error: str | None = Field(default=None, max_length=4096)
    size: int = Field(ge=0, description="the log's final size: the server must hold exactly it")


class Appended(BaseModel):
    size: int


class Mismatch(BaseModel):
    detail: str
    size: int = Field(description="bytes stored: resend from this offset")


def _may_register(request: Request, token: str | None, api: str | None, only: str | None) -> bool:
    if api is None and only is None:
        # No token configured: a local-only server, so only this machine may send runs.
        host = request.client.host if request.client else ""
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return token is not None and any(
        hmac.compare_digest(token.encode(), allowed.encode())
        for allowed in (api, only)
        if allowed is not None
    )


@router.post(
    "/ingest",
    status_code=status.HTTP_201_CREATED,
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def register_run(
    body: IngestCreate,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> IngestOut:
    """Register a run started elsewhere (API token or TRAINLOG_INGEST_TOKEN; without either
    configured, loopback only); answers the run and its run token."""
    token = _token(authorization) if authorization else None
    if not _may_register(request, token, settings.api_token, settings.ingest_token):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "registering a run needs the API token or TRAINLOG_INGEST_TOKEN "
            "(a server with neither takes runs from its own machine only)",
        )
    skew = ingest.clock_skew(body.clock, utcnow())
    with db.write() as session:
        run, run_token = ingest.register(
            session, body.command, body.config, skew, body.name, body.tags, body.provenance()
        )
    with db.read() as session:
        view = runs.view(session, run.id)
    return IngestOut(
        run=RunOut.from_view(view),
        token=run_token,
        max_log_bytes=settings.max_log_bytes,
        max_body_bytes=settings.ingest_max_body_bytes,
    )


@router.patch(
    "/{run_id}/log",
    responses={
        400: {"model": ErrorOut},
        401: {"model": ErrorOut},
        403: {"model": ErrorOut},
        413: {"model": ErrorOut},
        415: {"model": ErrorOut},
        416: {"model": Mismatch},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def append_log(
    run_id: uuid.UUID,
    request: Request,
    token: Bearer,
    db: DbDep,
    settings: SettingsDep,
    content_range: Annotated[str | None, Header()] = None,
    content_encoding: Annotated[str | None, Header()] = None,
    trainlog_capture_times: Annotated[str | None, Header()] = None,
    trainlog_ends_log: Annotated[str | None, Header()] = None,
) -> Appended:
    """Store the body at ``Content-Range: bytes START-END/*`` (run token). Bytes already
    stored are accepted once more without being stored twice; a gap, or an overlap that
    differs, answers 416 with the stored size, from which the runner resends."""
    span = ingest.parse_content_range(content_range)
    body = await request.body()
    # One thread hop: the token's check may query the database, and decompressing a flood's
    # body takes milliseconds, both kept off the event loop.
    size = await to_thread.run_sync(
        partial(
            _append,
            db,
            settings,
            run_id,
            token,
            span,
            body,
            content_encoding,
            trainlog_capture_times,
            ends_log=trainlog_ends_log == "1",
        )
    )
    return Appended(size=size)


def _append(
    db: Database,
    settings: Settings,
    run_id: uuid.UUID,
    token: str,
    span: ingest.ContentRange,
    body: bytes,
    content_encoding: str | None,
    capture_times: str | None,
    ends_log: bool,
) -> int:
    # First: only the run's own token gets the server to decompress anything.
    ingest.check_token(db, KNOWN_TOKENS, run_id, token)
    decoded = ingest.decode_body(body, content_encoding, settings.ingest_max_body_bytes)
    if len(decoded.data) != span.length:
        raise ingest.BadIngestRequest(
            f"Content-Range says {span.length} bytes, the body has {len(decoded.data)}"
        )
    # The runner's capture times, for the line index; without them, the time of receipt.
    times = ingest.parse_capture_times(capture_times, span) or None
    return ingest.append(
        db,
        KNOWN_TOKENS,
        run_id,
        token,
        span.start,
        decoded,
        times,
        ends_log=ends_log,
        max_log_bytes=settings.max_log_bytes,
    )


@router.post(
    "/{run_id}/started",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}},
)
def report_started(run_id: uuid.UUID, body: Started, token: Bearer, db: DbDep) -> None:
    """The runner has started the child (run token): where, and the terminal it has."""
    terminal = (
        (body.term_cols, body.term_rows)
        if body.term_cols is not None and body.term_rows is not None
        else None
    )
    with db.write() as session:
        ingest.authorize(session, run_id, token)
        runs.mark_running(session, run_id, body.host, body.pid, terminal)


@router.post("/{run_id}/heartbeat", responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}})
def report_heartbeat(run_id: uuid.UUID, body: Heartbeat, token: Bearer, db: DbDep) -> HeartbeatOut:
    """The runner is alive (run token); answers whether a cancel was asked for."""
    with db.write() as session:
        ingest.authorize(session, run_id, token)
        if "error" in body.model_fields_set:
            runs.note_error(session, run_id, body.error)
        return HeartbeatOut(cancel_requested=runs.heartbeat(session, run_id))


@router.post(
    "/{run_id}/finish",
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 409: {"model": Mismatch}},
)
def finish_run(run_id: uuid.UUID, body: Finish, token: Bearer, db: DbDep) -> RunOut:
    """Record the end (run token), once the log holds exactly ``size`` bytes (409 with the
    stored size otherwise). After it the token no longer works."""
    with db.write() as session:
        run = ingest.authorize(session, run_id, token, allow_ended=True)
        ingest.finish(session, run, RunStatus(body.status), body.exit_code, body.error, body.size)
    # As a local runner does after the end; a thread, so the answer does not wait for it.
    threading.Thread(
        target=compact_ended, args=(db, run_id, 0, body.size), name="compact", daemon=True
    ).start()
    with db.read() as session:
        return RunOut.from_view(runs.view(session, run_id))
