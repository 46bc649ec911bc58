"""Retrying the runner's writes through an outage (the database's or the server's), with backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Unavailable(Exception):
    """A write the trainlog server could not take now (down, restarting, unreachable)."""


class Refused(Exception):
    """A write the trainlog server refuses for good (a request it does not know, an older
    server's answer, or one it says is wrong): never retried, the runner gives up."""


# What a failed write raises when trying again later may succeed.
RETRIED = (SQLAlchemyError, Unavailable)


def until_done(
    action: Callable[[], T],
    what: str,
    on_error: Callable[[Exception], None] | None = None,
    give_up_after: float | None = None,
) -> T:
    """Call action until it stops raising RETRIED errors; the runner never drops a write.

    Only safe for idempotent actions: a commit whose answer was lost will be done again.
    ``on_error`` sees each failure before the wait (to tell someone why); it must not raise.
    With ``give_up_after`` (seconds), it gives up that long after the first call: the last
    wait is cut to end then, and the error of the attempt made then is raised.
    """
    attempt = 0
    deadline = None if give_up_after is None else time.monotonic() + give_up_after
    while True:
        try:
            return action()
        except RETRIED as exc:
            if on_error is not None:
                on_error(exc)
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            if deadline is not None:
                if time.monotonic() >= deadline:
                    raise
                delay = min(delay, deadline - time.monotonic())
            log.warning("%s failed (%s); retrying in %.1fs", what, _why(exc), delay)
            attempt += 1
            time.sleep(delay)


def _why(exc: Exception) -> str:
    # A database error's text may hold its URL; the server's answer is ours to show.
    return str(exc) if isinstance(exc, Unavailable) else type(exc).__name__
