"""The live follower ends by itself: once all is extracted, or when its run is gone."""

from __future__ import annotations

import uuid

from tests.helpers import new_run
from trainlog import runs, store
from trainlog.db import Database
from trainlog.metrics.follower import follow
from trainlog.metrics.patterns import Rules
from trainlog.metrics.store import extraction_complete, open_cursor, series_points
from trainlog.models import RunStatus


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
