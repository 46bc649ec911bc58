"""A live run's metric extraction, in a process of its own beside the runner.

It is a process, niced, rather than a thread of the runner: extraction is Python regex work
at a few MB/s, and in the runner it would hold the GIL that the capture threads need back
after every read (one busy thread there once made a 64 MiB flood take 84 s instead of 0.6 s).
On its own it takes only CPU that capture leaves: under a flood it falls behind and catches
up afterwards (once the run has ended, pass after pass without a pause); otherwise it is woken
by each append (``notify.RunWaker``, as ``trainlog tail --follow`` is) and keeps up within a
pass of it. It ends once the run has ended and everything is extracted. If it dies, nothing
is lost: the cursor is in the database, and the API extracts an ended run's rest on first use.

It is forked from the runner (``fork_follower``) before the runner opens the database, and
waits until the run is marked running. A fresh interpreter would first spend ~0.6 s of CPU
importing SQLAlchemy and trainlog, and that start-up fell inside the run's first output,
taking a core from capture on a 2-core machine; forked, it has them already.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from functools import partial

from sqlalchemy.exc import SQLAlchemyError

from trainlog import store
from trainlog.db import Database, make_engine
from trainlog.metrics.store import catch_up, extraction_complete, is_live
from trainlog.notify import RunWaker
from trainlog.reaper import METRIC_FOLLOWER_NAME
from trainlog.runs import RunNotFound
from trainlog.settings import Settings
from trainlog.store import UnknownLog

log = logging.getLogger(__name__)

# How often new bytes are looked at without a wake-up (TRAINLOG_WAKEUPS=0, or one lost): a
# printed metric is charted within about this, inside the second the chart may lag.
FOLLOW_SECONDS = 0.25
NICENESS = 10
# A database that stays unreachable (or a schema dropped under it) this long ends the follower.
GIVE_UP_SECONDS = 60.0
# A log that grows faster than this is a flood: capture needs the machine, and extraction (a
# few tens of thousands of points a second) could not keep up with it anyway. A training log
# prints kilobytes a second; a burst (one big print) is not a flood, only growth that goes on.
FLOOD_BYTES_PER_SECOND = 1024 * 1024
# How long the log is watched for growth before each pass.
LULL_SECONDS = 0.05
# After a flood, how long the growth must stay below the flood's rate before a pass: a flood
# has pauses of tens of milliseconds (the runner's commits, SQLite's checkpoints), and a pass
# begun in one took a core, and SQLite's write lock, until the flood's end.
AFTER_FLOOD_SECONDS = 0.5
# During a flood, a pass is still made after this long (or 19 times the last pass's time,
# whichever is longer: at most ~5% of the time extracting), so a long flood's charts move.
FLOOD_DEFER_SECONDS = 2.0
FLOOD_DUTY = 19


def follow(
    db: Database,
    run_id: uuid.UUID,
    max_series: int,
    waker: RunWaker | None = None,
    poll: float = FOLLOW_SECONDS,
) -> None:
    """Extract what is stored whenever ``waker`` says the run's log may have grown (and every
    ``poll`` seconds regardless) until the run has ended and all is done.

    Extraction is derived data: while the database is unreachable a pass is skipped and the
    next one starts from the cursor; after GIVE_UP_SECONDS of failures (or once the run is
    gone) the follower ends, and the API extracts the rest on first use.
    """
    failing_since: float | None = None
    while True:
        try:
            catch_up(db, run_id, max_series, partial(_yield_to_a_flood, db, run_id))
            with db.read() as session:
                if extraction_complete(session, run_id):
                    return
            failing_since = None
        except (RunNotFound, UnknownLog):
            return
        except SQLAlchemyError as exc:
            log.warning("metrics extraction skipped: %s", type(exc).__name__)
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > GIVE_UP_SECONDS:
                return
        if waker is None:
            time.sleep(poll)
        else:
            waker.wait(poll)


def _yield_to_a_flood(db: Database, run_id: uuid.UUID, last_pass: float) -> None:
    """Wait (before a pass) while a live run's log floods, for at most the flood's deferral.

    Niced, the follower still took enough of a 2-core machine from a flood's capture, and on
    SQLite its write transactions held the runner's appends back (a metrics-heavy 64 MiB
    flood was captured 2.7 times slower), so it stands aside until the output slows down.
    """
    with db.read() as session:
        if not is_live(session, run_id):
            # Its log grows no more: nothing to stand aside for. The look for growth cost an
            # ended run 50 ms a 1 MiB pass (~51 s a GiB before its metrics were complete).
            return
        size = store.log_size(session, run_id)
    now = time.monotonic()
    deadline = now + max(FLOOD_DEFER_SECONDS, FLOOD_DUTY * last_pass)
    slow_since, slow_enough = now, LULL_SECONDS
    while time.monotonic() < deadline:
        time.sleep(LULL_SECONDS)
        with db.read() as session:
            grown = store.log_size(session, run_id)
        now = time.monotonic()
        if grown - size >= FLOOD_BYTES_PER_SECOND * LULL_SECONDS:
            slow_since, slow_enough = now, AFTER_FLOOD_SECONDS
        elif now - slow_since >= slow_enough:
            return
        size = grown


class PendingFollower:
    """A forked follower waiting for its run: ``start`` sends it the run id, ``close`` (or
    this process's exit) lets it end without one."""

    def __init__(self, go: int) -> None:
        self._go = go

    def start(self, run_id: uuid.UUID) -> None:
        try:
            os.write(self._go, run_id.bytes)  # 16 bytes: one atomic pipe write
        except OSError as exc:
            # Metrics are derived data: the run goes on, the API extracts them once it ends.
            log.warning("metric follower gone (%s); metrics come on first use", exc)
        finally:
            self.close()

    def close(self) -> None:
        if self._go >= 0:
            os.close(self._go)
            self._go = -1


def fork_follower(settings: Settings) -> PendingFollower | None:
    """Fork the follower of the run this process is about to capture.

    Call before this process opens a database connection or starts a thread: a forked child
    must not share the parent's connections (SQLite's locks, PostgreSQL's sockets), and in a
    process with other threads it could inherit a lock one of them held.
    """
    if threading.active_count() > 1:
        raise RuntimeError("fork_follower must run before any other thread starts")
    try:
        # The driver, imported here once: the follower then connects without importing it.
        make_engine(settings.database_url).dispose()
    except (SQLAlchemyError, ImportError):
        return None  # a database this process cannot use either: its own connect says why
    try:
        wait_end, go = os.pipe()
        pid = os.fork()
    except OSError as exc:
        log.warning("metric follower not started (%s); metrics come on first use", exc)
        return None
    if pid == 0:  # the child
        os.close(go)
        _forked(settings, wait_end)
    os.close(wait_end)
    os.waitpid(pid, 0)  # it forks the follower and exits at once
    return PendingFollower(go)


def _forked(settings: Settings, wait_end: int) -> None:
    code = 1
    try:
        # Named first: from now on, ending the run's processes spares it (reaper.py).
        _name_process(METRIC_FOLLOWER_NAME)
        # A session of its own: a Ctrl-C at `trainlog run`'s terminal does not reach it. Its
        # parent exits now, so the follower is not left a zombie child of the runner.
        os.setsid()
        if os.fork():
            code = 0
            return
        code = _wait_and_follow(settings, wait_end)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        # Not sys.exit: the runner's objects this process inherited (its database engine, its
        # files) must not be finalised here.
        os._exit(code)


def _wait_and_follow(settings: Settings, wait_end: int) -> int:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    os.nice(NICENESS)
    logging.basicConfig(
        level=logging.INFO, format="trainlog-metrics %(levelname)s %(message)s", force=True
    )
    received = b""
    while chunk := os.read(wait_end, 16):
        received += chunk
    if len(received) != 16:
        return 0  # the runner ended before the run was marked running
    run_id = uuid.UUID(bytes=received)
    db = Database.connect(settings.database_url)
    waker = (
        RunWaker(settings.database_url, run_id, only_while_waiting=True)
        if settings.wakeups
        else None
    )
    try:
        # Woken, a second's poll is only the fallback for a wake-up lost.
        follow(db, run_id, settings.max_metric_series, waker, 1.0 if waker else FOLLOW_SECONDS)
    finally:
        if waker is not None:
            waker.close()
        db.dispose()
    return 0


def _name_process(name: str) -> None:
    """Its name in ps and top (and what ending a run's processes spares: reaper.py); its
    command line is still the runner's."""
    prctl = getattr(ctypes.CDLL(None), "prctl", None)
    if prctl is not None:  # Linux
        prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
