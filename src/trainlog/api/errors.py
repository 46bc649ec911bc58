"""Domain errors as JSON answers; nothing unexpected leaks a stack trace to a client."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from trainlog.configs import ConfigRejected
from trainlog.ingest import (
    BadIngestRequest,
    FinalSizeMismatch,
    IngestRefused,
    LogMismatch,
    OverLogLimit,
    UnsupportedEncoding,
)
from trainlog.metrics.stream import BadMetricResumePoint
from trainlog.offsets import RangeNotSatisfiable
from trainlog.runs import BadCursor, RunIsActive, RunNotActive, RunNotFound, TooManyActiveRuns
from trainlog.stream import BadResumePoint

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[Exception], int] = {
    RunNotFound: 404,
    TooManyActiveRuns: 409,
    RunNotActive: 409,
    RunIsActive: 409,
    BadCursor: 422,
    ConfigRejected: 422,
    BadResumePoint: 422,
    BadMetricResumePoint: 422,
    IngestRefused: 403,
    OverLogLimit: 413,
    BadIngestRequest: 400,
    UnsupportedEncoding: 415,
}


def install(app: FastAPI) -> None:
    for error_type, status in STATUS_BY_ERROR.items():
        app.add_exception_handler(error_type, _answer_with(status))
    app.add_exception_handler(RangeNotSatisfiable, _range_not_satisfiable)
    app.add_exception_handler(LogMismatch, _log_mismatch)
    app.add_exception_handler(FinalSizeMismatch, _final_size_mismatch)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)


def _answer_with(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handler


async def _range_not_satisfiable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc)},
        status_code=416,
        headers={"Content-Range": f"bytes */{getattr(request.state, 'log_size', '*')}"},
    )


async def _log_mismatch(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LogMismatch)
    # The stored size in the body and as the Range the server holds, for the runner to resend
    # from (Content-Range */SIZE as RFC 9110 has a 416 say it).
    headers = {"Content-Range": f"bytes */{exc.size}"}
    if exc.size:
        headers["Range"] = f"bytes=0-{exc.size - 1}"
    return JSONResponse({"detail": str(exc), "size": exc.size}, status_code=416, headers=headers)


async def _final_size_mismatch(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FinalSizeMismatch)
    return JSONResponse({"detail": str(exc), "size": exc.size}, status_code=409)


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # An outage (or a database locked past its busy timeout) is temporary: say so, and when to
    # come back, rather than answer 500 as if the request were at fault.
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the database is unavailable; try again shortly"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    # Starlette answers from outside every middleware here, NoStoreForApi's too: say it again.
    return JSONResponse(
        {"detail": "internal server error"},
        status_code=500,
        headers={"Cache-Control": "no-store"},
    )
