"""Where a runner's writes go: the database directly, or a trainlog server over HTTP.

The runner's guarantees (the child never blocked, memory then a spill file, nothing lost or
doubled, heartbeats, cancel, the end recorded after the last byte) live in the runner and
LogCapture; a sink only carries out one write per call. A write that may succeed later
raises one of ``retry.RETRIED`` and is retried with the runner's one backoff policy, so
every write must be idempotent: appends name their offset.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from trainlog import runs, store
from trainlog.db import Database, is_disk_full
from trainlog.lineindex import Times
from trainlog.models import RunStatus
from trainlog.runner.compactor import Compactor
from trainlog.runner.terminal import TerminalSize

if TYPE_CHECKING:
    from trainlog.metrics.follower import PendingFollower
    from trainlog.metrics.patterns import Rules

log = logging.getLogger(__name__)

# An append cut and made ready by prepare(), before it is sent (and perhaps resent).
Prepared = TypeVar("Prepared")


def disk_full_note(held: int) -> str:
    return f"the database's disk is full; the runner is holding {held} bytes of output and retrying"


class LogSink(Protocol[Prepared]):
    run_id: uuid.UUID

    def command(self) -> list[str]:
        """The run's command line."""
        ...

    def mark_running(self, host: str, pid: int, terminal: TerminalSize | None) -> None: ...

    def prepare(self, offset: int, data: bytes, times: Times, ends_log: bool) -> Prepared:
        """An append of ``data`` at ``offset``, read from the child at ``times`` (see
        lineindex.Times), made ready before any transaction or request; ``ends_log`` as
        append will be told."""
        ...

    def append(self, prepared: Prepared, ends_log: bool) -> int:
        """Store a prepared append (``ends_log``: it carries the log-limit notice, so the run
        is marked truncated with it); the log's new size."""
        ...

    def append_failed(self, exc: Exception, held: int) -> None:
        """An append failed while ``held`` bytes wait: tell the run why, if that helps.
        Must not raise."""
        ...

    def note_loss(self, message: str) -> None:
        """Record on the run that output was lost."""
        ...

    def heartbeat(self) -> bool:
        """Report that the runner is alive; whether a cancel was asked for."""
        ...

    def finish(
        self, status: RunStatus, exit_code: int | None, error: str | None, size: int
    ) -> None:
        """Record the end; ``size`` bytes are stored, the last of them before this."""
        ...

    def compactor(self, stored: Callable[[], int]) -> Compactor | None:
        """What compacts the log while the run goes on, if the runner does it."""
        ...

    def follow_metrics(self, rules: Rules) -> None:
        """Have the run's metrics extracted by ``rules`` as it goes, if the runner does it."""
        ...


class DatabaseSink:
    """The runner writes the database itself (``TRAINLOG_DATABASE_URL``); ``follower``, forked
    before ``db`` was first used (metrics/follower.py), extracts the run's metrics live."""

    def __init__(
        self, db: Database, run_id: uuid.UUID, follower: PendingFollower | None = None
    ) -> None:
        self._db = db
        self.run_id = run_id
        self._follower = follower
        # What the run's error goes back to when a disk-full note is withdrawn.
        self._loss_note: str | None = None
        self._disk_full_noted = False

    def command(self) -> list[str]:
        with self._db.read() as session:
            return list(runs.get(session, self.run_id).command)

    def mark_running(self, host: str, pid: int, terminal: TerminalSize | None) -> None:
        with self._db.write() as session:
            runs.mark_running(session, self.run_id, host, pid, terminal)

    def prepare(
        self, offset: int, data: bytes, times: Times, ends_log: bool
    ) -> store.EncodedAppend:
        return store.encode_append(self.run_id, offset, data, times)

    def append(self, prepared: store.EncodedAppend, ends_log: bool) -> int:
        size = self._append(prepared, ends_log)
        self._disk_full_noted = False
        return size

    def _append(self, prepared: store.EncodedAppend, ends_log: bool) -> int:
        if not (ends_log or self._disk_full_noted):
            size = store.append_at_once(self._db, prepared)
            if size is not None:
                return size
        with self._db.write() as session:
            size = store.append_encoded(session, prepared)
            if ends_log:
                # With the notice, so no reader sees one without the other.
                runs.mark_truncated(session, self.run_id)
            if self._disk_full_noted:
                # With the bytes, so no reader sees them stored and the run still saying they
                # are held; the error goes back to what it was (a loss, if there was one).
                runs.note_error(session, self.run_id, self._loss_note)
            return size

    def append_failed(self, exc: Exception, held: int) -> None:
        """Tell the run why its log stopped growing, when the database's disk is full.

        One try per failed append: a small update often fits where the append did not, and if
        it does not, the next failure tries again. The child never waits on it: the reader
        goes on filling the buffer.
        """
        if not (isinstance(exc, SQLAlchemyError) and is_disk_full(exc)):
            return
        # Before the try: a note whose commit answer was lost must be withdrawn too.
        self._disk_full_noted = True
        try:
            with self._db.write() as session:
                runs.note_error(session, self.run_id, disk_full_note(held))
        except SQLAlchemyError as note_exc:
            log.warning("could not note the full disk on the run: %s", type(note_exc).__name__)

    def note_loss(self, message: str) -> None:
        with self._db.write() as session:
            runs.note_error(session, self.run_id, message)
        self._loss_note = message

    def heartbeat(self) -> bool:
        with self._db.write() as session:
            return runs.heartbeat(session, self.run_id)

    def finish(
        self, status: RunStatus, exit_code: int | None, error: str | None, size: int
    ) -> None:
        with self._db.write() as session:
            runs.finish(session, self.run_id, status, exit_code, error)

    def compactor(self, stored: Callable[[], int]) -> Compactor | None:
        return Compactor(self._db, self.run_id, stored)

    def follow_metrics(self, rules: Rules) -> None:
        from trainlog.metrics.store import open_cursor

        with self._db.write() as session:
            open_cursor(session, self.run_id, rules)
        # It ends on its own once the run has ended and everything is extracted. Without one
        # (a runner built in-process), the API extracts the run on first use once it ends.
        if self._follower is not None:
            self._follower.start(self.run_id)
