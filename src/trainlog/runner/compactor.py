"""The runner's background compaction of its own log while the run goes on."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from trainlog.compaction import compact
from trainlog.db import Database
from trainlog.offsets import MAX_CHUNK_BYTES

log = logging.getLogger(__name__)

COMPACT_EVERY_SECONDS = 2.0
# The newest bytes stay as they were appended: viewers following live read them right away.
LIVE_WINDOW_BYTES = 2 * MAX_CHUNK_BYTES


class Compactor:
    """Compacts bytes well behind the log's end every few seconds, then the rest at the end.

    Compaction is an optimisation: when the database is unreachable it is skipped and tried
    again later, never retried in a way that could hold up capture.
    """

    def __init__(self, db: Database, run_id: uuid.UUID, stored: Callable[[], int]) -> None:
        self._db = db
        self._run_id = run_id
        self._stored = stored
        self._settled = 0  # everything before this offset is compacted already
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="compactor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Stop the periodic pass and compact everything, tail included."""
        self._stop.set()
        self._thread.join()
        compact_ended(self._db, self._run_id, self._settled, self._stored())

    def _loop(self) -> None:
        while not self._stop.wait(COMPACT_EVERY_SECONDS):
            self._pass(self._stored() - LIVE_WINDOW_BYTES)

    def _pass(self, upto: int) -> None:
        if upto <= 0:
            return
        try:
            self._settled = compact(self._db, self._run_id, self._settled, upto)
        except SQLAlchemyError as exc:
            log.warning("compaction skipped: %s", type(exc).__name__)


def compact_ended(db: Database, run_id: uuid.UUID, start: int, size: int) -> None:
    """Compact an ended run's log from ``start`` to its end and give freed space back."""
    try:
        compact(db, run_id, start, size, final=True)
        db.release_free_space()
    except SQLAlchemyError as exc:
        log.warning("compaction skipped: %s", type(exc).__name__)
