"""Wake-ups: telling servers that a run's log grew, so viewers need not wait for a poll.

Notifications are only hints: whoever is woken re-reads the store, and polling continues as
the fallback, so a lost or spurious wake-up costs latency, never bytes.

- PostgreSQL: every append (and a run's end) does ``pg_notify`` in its own transaction, so
  the notice goes out at commit; each server process LISTENs on one dedicated connection.
- SQLite: another process's commit changes ``PRAGMA data_version``; one thread per server
  process checks it every few milliseconds while anyone is watching.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from trainlog.db import normalize_url

log = logging.getLogger(__name__)

CHANNEL = "trainlog_log"
_NOTIFY = text("SELECT pg_notify(:channel, :run)")
SQLITE_CHECK_SECONDS = 0.001

OnChange = Callable[[uuid.UUID | None], None]


def notice(run_id: uuid.UUID) -> dict[str, str]:
    """The parameters of a wake-up for run_id's viewers (``pg_notify(:channel, :run)``)."""
    return {"channel": CHANNEL, "run": str(run_id)}


def announce(session: Session, run_id: uuid.UUID) -> None:
    """Queue a wake-up for run_id's viewers; it is sent when the transaction commits."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(_NOTIFY, notice(run_id))


class Listener:
    """A daemon thread that calls on_change for every change it hears of, until stopped."""

    def __init__(self, on_change: OnChange, is_wanted: Callable[[], bool]) -> None:
        self._on_change = on_change
        self._is_wanted = is_wanted
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                self._listen()
                delay = 0.1
            except Exception as exc:  # the database went away: polling covers us meanwhile
                log.warning("wake-up listener: %s; retrying in %.1fs", type(exc).__name__, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)

    def _listen(self) -> None:
        raise NotImplementedError


class PostgresListener(Listener):
    def __init__(self, url: URL, on_change: OnChange, is_wanted: Callable[[], bool]) -> None:
        super().__init__(on_change, is_wanted)
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _listen(self) -> None:
        import psycopg  # here, not at the top: the CLI on SQLite never needs it

        with psycopg.connect(self._conninfo, autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            # A reconnect may have missed notices: wake everyone once.
            self._on_change(None)
            while not self._stop.is_set():
                for notice in connection.notifies(timeout=1.0):
                    self._on_change(_parse_run_id(notice.payload))


class SqliteListener(Listener):
    def __init__(self, path: str, on_change: OnChange, is_wanted: Callable[[], bool]) -> None:
        super().__init__(on_change, is_wanted)
        self._path = path

    def _listen(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            last = connection.execute("PRAGMA data_version").fetchone()[0]
            while not self._stop.is_set():
                if not self._is_wanted():
                    self._stop.wait(0.05)
                    continue
                version = connection.execute("PRAGMA data_version").fetchone()[0]
                if version != last:
                    last = version
                    self._on_change(None)
                time.sleep(SQLITE_CHECK_SECONDS)
        finally:
            connection.close()


def _parse_run_id(payload: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(payload)
    except ValueError:
        return None


def make_listener(
    database_url: str, on_change: OnChange, is_wanted: Callable[[], bool]
) -> Listener | None:
    url = normalize_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresListener(url, on_change, is_wanted)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return SqliteListener(url.database, on_change, is_wanted)
    return None


class RunWaker:
    """Waits for news of one run in a process that follows it alone (``trainlog tail -f``):
    woken by the same signals as the server's streams, with polling as the fallback."""

    def __init__(
        self, database_url: str, run_id: uuid.UUID, only_while_waiting: bool = False
    ) -> None:
        """``only_while_waiting``: SQLite's change counter is looked at only while ``wait``
        waits (a change made meanwhile still wakes the next wait, up to 50 ms into it). The
        metric follower's looks every millisecond, while it stood aside for a flood, cost that
        flood's capture: 0.93 of its throughput against 1.04 without them (docs/benchmarks.md)."""
        self._run_id = run_id
        self._news = threading.Event()
        self._wanted = not only_while_waiting
        self._only_while_waiting = only_while_waiting
        self._listener = make_listener(database_url, self._on_change, lambda: self._wanted)
        if self._listener is not None:
            self._listener.start()

    def _on_change(self, run_id: uuid.UUID | None) -> None:
        if run_id is None or run_id == self._run_id:
            self._news.set()

    def wait(self, timeout: float) -> None:
        """Until there may be news (or timeout). What was committed before it returns is
        seen by the next read: the flag is cleared only after the wait."""
        self._wanted = True
        self._news.wait(timeout)
        self._wanted = not self._only_while_waiting
        self._news.clear()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
