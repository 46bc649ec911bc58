"""One engine per process, sessions per task, and schema migrations on start."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from trainlog.revision import MIGRATIONS_DIR, schema_head

# Any constant works; it only has to be the same in every trainlog process.
_MIGRATION_LOCK_KEY = 7_341_002
WAL_SIZE_LIMIT = 64 * 1024 * 1024
# SQLite's wal_autocheckpoint (its default), and the lower one of a connection that deletes
# (see Database.deleting): about 1 MiB of WAL.
AUTOCHECKPOINT_PAGES = 1000
BACKGROUND_CHECKPOINT_PAGES = 256
# SQLite's primary result code for a full disk (the low byte of its extended codes).
SQLITE_FULL = 13
# PostgreSQL's SQLSTATE disk_full ("could not extend file ...: No space left on device").
PG_DISK_FULL = "53100"
# A pooled PostgreSQL connection idle longer than this is checked before use (see
# _ping_if_idle).
IDLE_PING_SECONDS = 1.0
# PRAGMA auto_vacuum's value for INCREMENTAL.
_INCREMENTAL = 2
# PRAGMA secure_delete's values as it reads them, and as it takes them back.
_SECURE_DELETE = {0: "OFF", 1: "ON", 2: "FAST"}


def normalize_url(database_url: str) -> URL:
    """``postgresql://`` means psycopg 3; SQLite files get their folder created; any other
    database is an ArgumentError (SQLAlchemy knows more, but trainlog's SQL is for these two)."""
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ArgumentError(
            "trainlog keeps its data in SQLite (sqlite:///PATH) or PostgreSQL "
            f"(postgresql://...), not {url.get_backend_name()}"
        )
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return url


def is_disk_full(exc: SQLAlchemyError) -> bool:
    """Whether a database error says the database's own disk is full."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    if isinstance(orig, sqlite3.Error):
        # Errors raised by the sqlite3 module itself (a closed connection) carry no code.
        code: int | None = getattr(orig, "sqlite_errorcode", None)
        return code is not None and code & 0xFF == SQLITE_FULL
    return getattr(orig, "sqlstate", None) == PG_DISK_FULL


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the runner append while servers read; the busy timeout makes a writer wait for
    # another instead of failing; NORMAL sync is durable across process crashes in WAL mode.
    cursor = dbapi_connection.cursor()
    # Takes effect only when the file is new: lets compaction give freed pages back to the
    # file system (see Database.release_free_space) instead of keeping the file at its peak.
    # Only then is it set: on an existing file it waits for the write lock, so every new
    # connection (a viewer's read too) would queue behind a long write.
    if cursor.execute("PRAGMA page_count").fetchone()[0] == 0:
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # A long reader keeps checkpoints from recycling the WAL, which then grows; once it is
    # checkpointed, cut it back to this size instead of keeping the high-water mark for good.
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
    # pysqlite's own transaction handling defers BEGIN; take control so writes start with
    # BEGIN IMMEDIATE (see _begin_immediate) and never fail upgrading a read lock.
    dbapi_connection.isolation_level = None


def _begin_sqlite(connection: Any) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode is not None:  # None: each statement a transaction of its own
        connection.exec_driver_sql(f"BEGIN {mode}")


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Check a connection that sat idle (PostgreSQL may have restarted meanwhile); one in
    steady use goes straight to work.

    pool_pre_ping would check every checkout: a round trip that made each of the runner's
    appends and each tailer read take about 1 ms longer here. Those retry on their own if a
    connection turns out dead; this keeps a web request after a restart from being the one
    that finds out.
    """
    if time.monotonic() - record.info.get("checked_in_at", 0.0) < IDLE_PING_SECONDS:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:  # any failure: the pool drops it and connects afresh
        raise DisconnectionError(str(exc)) from exc


def make_engine(database_url: str) -> Engine:
    url = normalize_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


@dataclass(frozen=True)
class Database:
    """The process's engine and its two kinds of session.

    Write sessions take SQLite's write lock up front (BEGIN IMMEDIATE), so a transaction that
    reads then writes waits for other writers instead of failing; read sessions stay deferred
    so they never queue behind the runner's appends.
    """

    engine: Engine
    reads: sessionmaker[Session]
    writes: sessionmaker[Session]

    @classmethod
    def connect(cls, database_url: str) -> Database:
        engine = make_engine(database_url)
        writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        return cls(
            engine=engine,
            reads=sessionmaker(engine, expire_on_commit=False),
            writes=sessionmaker(writer, expire_on_commit=False),
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.reads() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block succeeds and rolls back when it raises."""
        with self.writes() as session, session.begin():
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection on which every statement is a transaction of its own: one round trip
        where BEGIN, the statement and COMMIT would take three."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            yield connection

    @contextmanager
    def statement_reads(self) -> Iterator[Connection]:
        """A connection for reads that need no transaction around them (each statement sees
        committed data as one snapshot): in autocommit on PostgreSQL, where BEGIN and COMMIT
        are round trips of their own; in a read transaction on SQLite, where they cost nothing
        and leaving autocommit again costs a PRAGMA."""
        if self.engine.dialect.name == "postgresql":
            with self.autocommit() as connection:
                yield connection
        else:
            with self.read() as session:
                yield session.connection()

    @contextmanager
    def deleting(self) -> Iterator[Connection]:
        """A connection for a long delete in short batches that others must not wait for,
        each statement a transaction of its own, whose freed pages are given back after each
        batch (release_free_space on this connection).

        SQLite: no BEGIN, so SQLite takes the write lock and commits inside the one driver
        call that runs the statement, and the thread lets go of Python's GIL for all of it. A
        transaction of several calls also holds the lock while its thread waits for the GIL
        between them (in a busy server process, where deletes run, up to the 5 ms switch
        interval each time), and a writer that found the lock taken sleeps in SQLite's busy
        handler in steps of 1, 2, 5, 10 ms: a 9 ms hold costs it 18. In a file that gives
        pages back (auto_vacuum=INCREMENTAL), freed pages are not overwritten with zeros
        (secure_delete=FAST; this machine's SQLite zeroes them by default): the release
        right after cuts them off the file or moves other pages over them, so the zeros were
        only WAL traffic, copied again by checkpoints. The connection also checkpoints
        (PASSIVE, in the same call, after letting the lock go) whenever the WAL has
        BACKGROUND_CHECKPOINT_PAGES, so the delete never takes it to wal_autocheckpoint, whose
        copy and sync would run in whichever commit crossed it, often another run's append.
        PostgreSQL: autocommit (its deletes wait for nobody's lock but the rows').
        """
        if self.engine.dialect.name != "sqlite":
            with self.autocommit() as connection:
                yield connection
            return
        with self.engine.connect().execution_options(sqlite_begin=None) as connection:
            driver = _driver(connection)
            zeroing = driver.execute("PRAGMA secure_delete").fetchone()[0]
            if driver.execute("PRAGMA auto_vacuum").fetchone()[0] == _INCREMENTAL:
                driver.execute("PRAGMA secure_delete=FAST")
            driver.execute(f"PRAGMA wal_autocheckpoint={BACKGROUND_CHECKPOINT_PAGES}")
            restore = (
                f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}",
                f"PRAGMA secure_delete={_SECURE_DELETE[zeroing]}",
            )
            try:
                yield connection
            except BaseException:
                # The delete's own error is the one to propagate, not one of putting back.
                with suppress(sqlite3.Error):
                    _restore(connection, driver, restore)
                raise
            _restore(connection, driver, restore)

    def release_free_space(
        self, max_pages: int | None = None, connection: Connection | None = None
    ) -> int:
        """Return SQLite's free pages to the file system (all, or ``max_pages`` of them, a
        shorter hold of the write lock), on ``connection`` or one of the pool's (outside a
        transaction); PostgreSQL's autovacuum does its own. The number of free pages that
        could still be returned (0 when none can: auto-vacuum is off)."""
        if self.engine.dialect.name != "sqlite":
            return 0
        with nullcontext(connection) if connection else self.engine.connect() as using:
            # pysqlite steps a statement once, which frees one page; executescript runs it to
            # the end.
            driver = _driver(using)
            count = "" if max_pages is None else f"({int(max_pages)})"
            driver.executescript(f"PRAGMA incremental_vacuum{count};")
            if driver.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
                return 0
            left: int = driver.execute("PRAGMA freelist_count").fetchone()[0]
            return left

    def checkpoint(self) -> None:
        """Copy what SQLite's WAL holds into the database file now, without taking or waiting
        for the write lock (PASSIVE), so that space given back leaves the file now rather than
        at some later checkpoint; PostgreSQL: nothing to do."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as connection:
            # Outside any transaction: on a connection inside one, SQLite refuses to checkpoint.
            _driver(connection).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def dispose(self) -> None:
        self.engine.dispose()


def _restore(connection: Connection, driver: Any, pragmas: tuple[str, ...]) -> None:
    """Put a connection's settings back (on ``driver``, its DB-API connection, which a failed
    statement may have closed) before the pool hands it to others; one whose settings are
    not all back is dropped from the pool instead."""
    try:
        for pragma in pragmas:
            driver.execute(pragma)
    except sqlite3.Error:
        connection.invalidate()
        raise


def _driver(connection: Connection) -> Any:
    """The DB-API connection under a SQLAlchemy one."""
    driver = connection.connection.driver_connection
    assert driver is not None
    return driver


def schema_is_current(engine: Engine) -> bool:
    """Whether the schema is at its head already: then a start skips Alembic, whose import
    takes longer than what a user asked for (`trainlog ls`)."""
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version"))
            return version.scalar() == schema_head()
    except DBAPIError:
        return False  # no schema yet (or no database: migrate says why)


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision; safe when several processes start at once."""
    if schema_is_current(engine):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            connection.commit()
        else:
            # The write lock from the start: a deferred transaction reads the schema first, and
            # when another process has written meanwhile, SQLite refuses its upgrade to a write
            # at once ("database is locked"; the busy timeout does not apply). Taken up front, it
            # is waited for like any writer's, so concurrent first starts migrate one by one.
            connection.execution_options(sqlite_begin="IMMEDIATE")
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        finally:
            if engine.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
                connection.commit()
