"""A live run's metric extraction: ``python -m trainlog.metrics.follower RUN_ID``.

The runner starts it once the run is marked running. It is a process of its own, niced,
rather than a thread of the runner: extraction is Python regex work at a few MB/s, and in the
runner it would hold the GIL that the capture threads need back after every read (one busy
thread there once made a 64 MiB flood take 84 s instead of 0.6 s). On its own it takes only
CPU that capture leaves: under a flood it falls behind and catches up afterwards; otherwise
it is woken by each append (``notify.RunWaker``, as ``trainlog tail --follow`` is) and keeps up
within a pass of it. It ends once the run has ended and everything is extracted. If it dies,
nothing is lost: the cursor is in the database, and the API extracts an ended run's rest on
first use.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid

from sqlalchemy.exc import SQLAlchemyError

from trainlog.db import Database
from trainlog.metrics.store import catch_up, extraction_complete
from trainlog.notify import RunWaker
from trainlog.reaper import RUN_ID_ENV
from trainlog.runs import RunNotFound
from trainlog.settings import Settings, get_settings
from trainlog.store import UnknownLog

log = logging.getLogger(__name__)

# How often new bytes are looked at without a wake-up (TRAINLOG_WAKEUPS=0, or one lost): a
# printed metric is charted within about this, inside the second the chart may lag.
FOLLOW_SECONDS = 0.25
NICENESS = 10
# A database that stays unreachable (or a schema dropped under it) this long ends the follower.
GIVE_UP_SECONDS = 60.0


def start_follower(settings: Settings, run_id: uuid.UUID) -> subprocess.Popen[bytes]:
    # Not marked with the run id: ending the run's processes (a cancel) must not end it.
    env = {k: v for k, v in settings.runner_env().items() if k != RUN_ID_ENV}
    return subprocess.Popen(
        [sys.executable, "-m", "trainlog.metrics.follower", str(run_id)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


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
            catch_up(db, run_id, max_series)
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


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="trainlog-metrics %(levelname)s %(message)s")
    os.nice(NICENESS)
    settings = get_settings()
    run_id = uuid.UUID(argv[0])
    db = Database.connect(settings.database_url)
    waker = RunWaker(settings.database_url, run_id) if settings.wakeups else None
    try:
        # Woken, a second's poll is only the fallback for a wake-up lost.
        follow(db, run_id, settings.max_metric_series, waker, 1.0 if waker else FOLLOW_SECONDS)
    finally:
        if waker is not None:
            waker.close()
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
