"""The server's watch over runners: a run whose runner stops reporting is marked lost, and
whatever is left of it on this machine is ended, so no child trains on with nobody capturing it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from datetime import timedelta

from anyio import to_thread
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from trainlog import runs
from trainlog.db import Database
from trainlog.models import utcnow
from trainlog.reaper import end_run_processes

log = logging.getLogger(__name__)


def sweep(db: Database, lost_after: float, judge: bool) -> list[uuid.UUID]:
    """Mark runs silent for ``lost_after`` seconds as lost; with judge=False only check that
    the database answers."""
    if not judge:
        with db.read() as session:
            session.execute(text("SELECT 1"))
        return []
    with db.write() as session:
        return runs.mark_lost(session, utcnow() - timedelta(seconds=lost_after))


async def watch_runners(db: Database, interval: float, lost_after: float, grace: float) -> None:
    """Sweep every ``interval`` seconds, for as long as the server lives.

    Silence only means death while the database was reachable: after an outage (ours or the
    runner's) a runner needs a moment to report again, so nobody is judged until the database
    has answered for a full ``lost_after``.
    """
    reachable_since = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        judge = time.monotonic() - reachable_since >= lost_after
        try:
            lost = await to_thread.run_sync(sweep, db, lost_after, judge)
        except SQLAlchemyError as exc:
            log.warning("runner watch cannot reach the database: %s", type(exc).__name__)
            reachable_since = time.monotonic()
            continue
        for run_id in lost:
            log.warning("run %s lost: its runner stopped reporting", run_id)
            # A thread, so the grace period before SIGKILL does not hold up the watch.
            threading.Thread(
                target=end_run_processes, args=(run_id, grace), name="reap", daemon=True
            ).start()
