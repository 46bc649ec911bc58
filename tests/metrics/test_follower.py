"""The live follower: woken by the log's growth; it ends by itself, once all is extracted or
when its run is gone."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from tests.helpers import new_run, wait_for
from trainlog import runs, store
from trainlog.db import Database
from trainlog.metrics.follower import follow
from trainlog.metrics.patterns import Rules
from trainlog.metrics.store import extraction_complete, open_cursor, series_points
from trainlog.models import RunStatus
from trainlog.notify import RunWaker


def test_it_ends_once_the_run_has_ended_and_all_is_extracted(db: Database) -> None:
    run_id = new_run(db)
    with db.write() as session:
        open_cursor(session, run_id, Rules())
        store.append(session, run_id, 0, b"loss=0.5\nloss=0.25")
        runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)
    follow(db, run_id, 50)
    with db.read() as session:
        assert extraction_complete(session, run_id)
        assert [p["value"] for p in series_points(session, run_id, "loss")] == [0.5, 0.25]


def test_it_ends_when_its_run_is_gone(db: Database) -> None:
    follow(db, uuid.uuid4(), 50)  # returns instead of looking for ever


def test_a_live_runs_points_are_stored_when_its_log_grows_not_at_the_next_poll(
    db: Database, database_url: str
) -> None:
    """Woken by each append (as `trainlog tail --follow` is): with a poll of a minute, each
    line's point is still stored long before the poll would have looked."""
    run_id = new_run(db)
    with db.write() as session:
        open_cursor(session, run_id, Rules())
        runs.mark_running(session, run_id, socket.gethostname(), os.getpid())
    waker = RunWaker(database_url, run_id)
    # A daemon: should the test fail, the follower (of a run that never ends) is left behind.
    follower = threading.Thread(target=follow, args=(db, run_id, 50, waker, 60.0), daemon=True)
    follower.start()
    try:
        offset = 0
        for step in range(3):
            time.sleep(0.2)  # the follower is waiting again
            with db.write() as session:
                offset = store.append(
                    session, run_id, offset, f"step {step} loss={step}\n".encode()
                )

            def stored(step: int = step) -> bool:
                with db.read() as session:
                    return len(series_points(session, run_id, "loss")) == step + 1

            wait_for(stored, timeout=30)  # not the minute's poll
        with db.write() as session:
            runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)
        follower.join(timeout=30)
        assert not follower.is_alive()  # the run's end woke it too, and it ended
    finally:
        waker.close()
