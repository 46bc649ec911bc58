"""The live follower: woken by the log's growth; it ends by itself, once all is extracted or
when its run is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.helpers import new_run, wait_for
from trainlog import runs, store
from trainlog.db import Database
from trainlog.metrics import follower as follower_module
from trainlog.metrics import store as metrics_store
from trainlog.metrics.follower import follow
from trainlog.metrics.patterns import Rules
from trainlog.metrics.store import extraction_complete, open_cursor, series_points
from trainlog.models import RunStatus
from trainlog.notify import RunWaker
from trainlog.reaper import METRIC_FOLLOWER_NAME, RUN_ID_ENV, run_processes


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


def test_an_ended_runs_rest_is_extracted_without_watching_for_a_flood(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ended run's log grows no more: its passes follow each other without the look for
    growth (which cost 50 ms a 1 MiB pass, ~51 s a GiB, before the metrics were complete).
    That look made a minute long here, any pass that still made it would show."""
    monkeypatch.setattr(follower_module, "LULL_SECONDS", 60.0)
    monkeypatch.setattr(metrics_store, "PASS_BYTES", 1024)  # a pass per KiB: several passes
    run_id = new_run(db)
    lines = 200
    with db.write() as session:
        open_cursor(session, run_id, Rules())
        store.append(session, run_id, 0, b"".join(b"step %d loss=0.5\n" % i for i in range(lines)))
        runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)
    # A daemon: should the test fail, the follower (waiting a minute a pass) is left behind.
    follower = threading.Thread(target=follow, args=(db, run_id, 50), daemon=True)
    follower.start()
    follower.join(timeout=30)
    assert not follower.is_alive()
    assert points(db, run_id) == lines


def test_it_ends_when_its_run_is_gone(db: Database) -> None:
    follow(db, uuid.uuid4(), 50)  # returns instead of looking for ever


def test_a_live_runs_points_are_stored_when_its_log_grows_not_at_the_next_poll(
    db: Database, database_url: str
) -> None:
    """Woken by each append (as `trainlog tail --follow` is): with a poll of a minute, each
    line's point is still stored long before the poll would have looked."""
    # live_follower ends the run on leaving and checks that its end woke the follower too,
    # and that it ended.
    with live_follower(db, database_url) as (run_id, size):
        for step in range(3):
            time.sleep(0.2)  # the follower is waiting again
            with db.write() as session:
                size[0] = store.append(
                    session, run_id, size[0], f"step {step} loss={step}\n".encode()
                )

            def stored(step: int = step) -> bool:
                with db.read() as session:
                    return len(series_points(session, run_id, "loss")) == step + 1

            wait_for(stored, timeout=30)  # not the minute's poll


LINE = b"step 1 | loss 0.5 | lr 3e-4 | grad_norm 1.0\n"
FLOOD_PIECE = LINE * (16 * 1024 // len(LINE))
FLOOD_EVERY = 0.02


@pytest.fixture
def flood_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Growth looked at over half a second, and a flood being one append in it: so that the
    appending thread's stalls on a loaded test machine are not taken for the flood's end."""
    monkeypatch.setattr(follower_module, "LULL_SECONDS", 0.5)
    monkeypatch.setattr(follower_module, "FLOOD_BYTES_PER_SECOND", len(FLOOD_PIECE))


def points(db: Database, run_id: uuid.UUID) -> int:
    with db.read() as session:
        return len(series_points(session, run_id, "loss"))


@contextmanager
def live_follower(db: Database, database_url: str) -> Iterator[tuple[uuid.UUID, list[int]]]:
    """A live run with a woken follower; yields the run and its log's size (a list to update).
    The run is ended, and the follower's end awaited, on leaving."""
    run_id = new_run(db)
    with db.write() as session:
        open_cursor(session, run_id, Rules())
        runs.mark_running(session, run_id, socket.gethostname(), os.getpid())
    waker = RunWaker(database_url, run_id, only_while_waiting=True)
    thread = threading.Thread(target=follow, args=(db, run_id, 50, waker, 60.0), daemon=True)
    thread.start()
    size = [0]
    try:
        yield run_id, size
        with db.write() as session:
            runs.finish(session, run_id, RunStatus.SUCCEEDED, 0)
        thread.join(timeout=60)
        assert not thread.is_alive()
    finally:
        waker.close()


def flood(
    db: Database, run_id: uuid.UUID, size: list[int], seconds: float, until: Callable[[], bool]
) -> None:
    """Append a flood for ``seconds``, or until ``until()`` says so."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        with db.write() as session:
            size[0] = store.append(session, run_id, size[0], FLOOD_PIECE)
        time.sleep(FLOOD_EVERY)


def test_it_stands_aside_while_the_log_floods_and_extracts_it_all_after(
    db: Database, database_url: str, flood_looks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood's capture needs the machine: while the log grows faster than a training log
    does, nothing is extracted; once it stops growing, everything is."""
    monkeypatch.setattr(follower_module, "FLOOD_DEFER_SECONDS", 30.0)
    with live_follower(db, database_url) as (run_id, size):
        flood(db, run_id, size, 2.0, until=lambda: points(db, run_id) > 0)
        assert points(db, run_id) == 0
        lines = size[0] // len(LINE)
        wait_for(lambda: points(db, run_id) == lines, timeout=60)


def test_a_flood_longer_than_the_deferral_is_still_charted_as_it_goes(
    db: Database, database_url: str, flood_looks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follower_module, "FLOOD_DEFER_SECONDS", 1.0)
    with live_follower(db, database_url) as (run_id, size):
        flood(db, run_id, size, 30.0, until=lambda: points(db, run_id) > 0)
        assert points(db, run_id) > 0


def test_ending_a_runs_processes_spares_its_metric_follower() -> None:
    """The follower is forked from the runner, so it may carry the run id; a cancel must not
    end it (it ends by itself once the run's metrics are extracted)."""
    run_id = uuid.uuid4()
    env = {**os.environ, RUN_ID_ENV: str(run_id)}
    rename = (
        "import ctypes, sys, time; "
        f"ctypes.CDLL(None).prctl(15, {METRIC_FOLLOWER_NAME.encode()!r}, 0, 0, 0); "
        "print(flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    named = subprocess.Popen([sys.executable, "-c", rename], env=env, stdout=subprocess.PIPE)
    try:
        assert named.stdout is not None and named.stdout.readline() == b"\n"  # renamed
        assert run_processes(run_id) == [child.pid]
    finally:
        child.kill()
        named.kill()
        child.wait()
        named.wait()


def test_a_waker_that_looks_only_while_waiting_still_sees_what_came_meanwhile(
    db: Database, database_url: str
) -> None:
    """The follower's waker does not look while it extracts or stands aside; an append made
    then still wakes its next wait at once, and so does one made during the wait."""
    run_id = new_run(db)
    waker = RunWaker(database_url, run_id, only_while_waiting=True)
    try:
        time.sleep(0.3)  # the listener is up, not looking
        with db.write() as session:
            size = store.append(session, run_id, 0, b"loss=1\n")
        time.sleep(0.3)
        began = time.monotonic()
        waker.wait(30.0)
        assert time.monotonic() - began < 5
        appender = threading.Timer(0.3, lambda: store_more(db, run_id, size))
        appender.start()
        began = time.monotonic()
        waker.wait(30.0)
        assert time.monotonic() - began < 5
        appender.join()
    finally:
        waker.close()


def store_more(db: Database, run_id: uuid.UUID, offset: int) -> None:
    with db.write() as session:
        store.append(session, run_id, offset, b"loss=2\n")
