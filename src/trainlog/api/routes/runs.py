from __future__ import annotations

import hashlib
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, HTTPException, Query, Response, status

from trainlog import provenance, retention, runs
from trainlog.api.deps import DbDep, SettingsDep
from trainlog.api.schemas import ErrorOut, RunCreate, RunListOut, RunOut
from trainlog.configs import resolve_config
from trainlog.launcher import launch_runner
from trainlog.models import RunSource, RunStatus
from trainlog.tags import parse_tag

log = logging.getLogger(__name__)

router = APIRouter(prefix="/runs", tags=["runs"])


def _utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get(
    "",
    response_model=RunListOut,
    responses={304: {"description": "unchanged since If-None-Match"}, 422: {"model": ErrorOut}},
)
def list_runs(
    db: DbDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    status_: Annotated[list[RunStatus], Query(alias="status")] = [],  # noqa: B006 (FastAPI copies it)
    config: Annotated[str | None, Query(max_length=255)] = None,
    tag: Annotated[list[str], Query(description="key:value, repeatable")] = [],  # noqa: B006
    q: Annotated[
        str | None, Query(max_length=255, description="in name, config or command")
    ] = None,
    since: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> RunListOut | Response:
    """Runs matching every filter given, newest first, a page at a time.

    Answers carry an ETag: a client that sends it back as If-None-Match gets 304 and no body
    while the page is unchanged (how the runs page follows status changes cheaply), and a
    Server-Timing header with the time spent finding and rendering the page.
    """
    started = time.perf_counter()
    try:
        filters = runs.RunFilter(
            statuses=tuple(status_),
            config=config,
            tags=tuple(parse_tag(text) for text in tag),
            q=q,
            since=_utc(since),
            until=_utc(until),
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    after = runs.Cursor.decode(cursor) if cursor else None
    with db.read() as session:
        page = RunListOut.from_page(runs.page(session, filters, limit, after))
    etag = '"' + hashlib.blake2b(page.model_dump_json().encode(), digest_size=12).hexdigest() + '"'
    headers = {
        "ETag": etag,
        "Server-Timing": f"list;dur={(time.perf_counter() - started) * 1000:.1f}",
    }
    if if_none_match == etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    response.headers.update(headers)
    return page


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
def start_run(body: RunCreate, db: DbDep, settings: SettingsDep) -> RunOut:
    """Start the server's training command on a config from the config directory."""
    argv = settings.train_argv(resolve_config(settings.config_dir, body.config))
    # The runner starts in this process's working directory, on this machine.
    origin = provenance.gather()
    with db.write() as session:
        run = runs.create(
            session,
            argv,
            body.config,
            RunSource.SERVER,
            max_active=settings.max_active_runs,
            name=body.name,
            tags=body.tags,
            provenance=origin,
        )
    try:
        launch_runner(settings, run.id)
    except OSError as exc:
        log.exception("could not start the runner for %s", run.id)
        with db.write() as session:
            runs.finish(session, run.id, RunStatus.FAILED, None, error="could not start runner")
        raise HTTPException(500, f"could not start the runner: {exc.strerror}") from exc
    with db.read() as session:
        return RunOut.from_view(runs.view(session, run.id))


@router.get("/{run_id}", responses={404: {"model": ErrorOut}})
def get_run(run_id: uuid.UUID, db: DbDep) -> RunOut:
    with db.read() as session:
        return RunOut.from_view(runs.view(session, run_id))


@router.post(
    "/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
def cancel_run(run_id: uuid.UUID, db: DbDep) -> RunOut:
    """Ask the run's runner to end the child's whole process group (SIGTERM, then SIGKILL)."""
    with db.write() as session:
        runs.request_cancel(session, run_id)
    with db.read() as session:
        return RunOut.from_view(runs.view(session, run_id))


@router.delete(
    "/{run_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
)
async def delete_run(run_id: uuid.UUID, db: DbDep) -> Response:
    """Delete a finished run, its log and everything derived from it (an active run: 409).

    Answers once the rows are gone; a large log goes in short batches meanwhile.
    """
    await to_thread.run_sync(retention.delete_run, db, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
