"""The runner's extraction of its own run's metrics while the run goes on."""

from __future__ import annotations

import logging
import threading
import uuid

from sqlalchemy.exc import SQLAlchemyError

from trainlog.db import Database
from trainlog.metrics.store import catch_up

log = logging.getLogger(__name__)

# How often new bytes are looked at: a printed metric is charted within about this (plus a
# viewer's poll), well inside the second the chart may lag.
FOLLOW_SECONDS = 0.25


class MetricsFollower:
    """Extracts the stored bytes past the run's cursor every FOLLOW_SECONDS, then the rest
    once the run's end is recorded (an unterminated last line included).

    Extraction is derived data: while the database is unreachable a pass is skipped and the
    next one starts from the cursor, so nothing is lost and capture is never held up.
    """

    def __init__(self, db: Database, run_id: uuid.UUID, max_series: int) -> None:
        self._db = db
        self._run_id = run_id
        self._max_series = max_series
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        self._stop.set()
        self._thread.join()
        self._pass()

    def _loop(self) -> None:
        while not self._stop.wait(FOLLOW_SECONDS):
            self._pass()

    def _pass(self) -> None:
        try:
            catch_up(self._db, self._run_id, self._max_series)
        except SQLAlchemyError as exc:
            log.warning("metrics extraction skipped: %s", type(exc).__name__)
