"""The database through its driver alone (sqlite3, psycopg), for ``trainlog ls``.

Importing SQLAlchemy takes about 0.4 s on the 2-core machine the benchmarks run on: all that
``ls`` may take (docs/benchmarks.md). So when the URL names a SQLite file or a PostgreSQL
database and its schema is at the head already, ``ls`` reads through the driver alone.
Otherwise (a first use, a schema to migrate, a URL only SQLAlchemy knows) it goes through
trainlog.db, which creates and migrates, and reads through that engine's driver connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from trainlog.cli import common
from trainlog.revision import schema_head

# SQLAlchemy's spellings of a SQLite file (``sqlite:///`` + the path, percent-decoded) and of
# PostgreSQL through psycopg 3; libpq reads the rest of such a URL as SQLAlchemy passes it on.
_SQLITE_FILE = ("sqlite:///", "sqlite+pysqlite:///")
_POSTGRESQL = ("postgresql://", "postgres://", "postgresql+psycopg://")
# As trainlog.db waits for a writer's lock (PRAGMA busy_timeout).
_SQLITE_BUSY_SECONDS = 30


@dataclass(frozen=True)
class DriverConnection:
    """A DB-API connection, its SQL dialect and its driver's error class."""

    connection: Any
    dialect: str  # "sqlite" or "postgresql"
    error: type[Exception]
    close: Callable[[], None]

    @property
    def mark(self) -> str:
        """The driver's placeholder for a parameter."""
        return "?" if self.dialect == "sqlite" else "%s"


def connect(database_url: str) -> DriverConnection:
    """A connection to a current schema; a CliError when the database cannot be reached."""
    direct = _direct(database_url)
    if direct is not None:
        if _at_head(direct):
            return direct
        direct.close()
    return _through_sqlalchemy(database_url)


def _direct(database_url: str) -> DriverConnection | None:
    """The driver's own connection, or None when the URL is not one it takes as it is, or is
    a SQLite file not made yet (trainlog.db creates it, and its folder)."""
    if database_url.startswith(_SQLITE_FILE) and "?" not in database_url:
        import sqlite3

        path = unquote(database_url.split(":///", 1)[1])
        if path in ("", ":memory:") or not os.path.isfile(path):
            return None
        try:
            connection = sqlite3.connect(path, timeout=_SQLITE_BUSY_SECONDS)
        except sqlite3.Error as exc:
            raise common.database_error(database_url, exc) from None
        # Each read its own snapshot, as trainlog.db's connections have it.
        connection.isolation_level = None
        return DriverConnection(connection, "sqlite", sqlite3.Error, connection.close)
    if database_url.startswith(_POSTGRESQL):
        import psycopg

        conninfo = "postgresql://" + database_url.split("://", 1)[1]
        try:
            pg = psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise common.database_error(database_url, exc) from None
        return DriverConnection(pg, "postgresql", psycopg.Error, pg.close)
    return None


def _at_head(db: DriverConnection) -> bool:
    try:
        cursor = db.connection.execute("SELECT version_num FROM alembic_version")
        row = cursor.fetchone()
    except db.error:
        return False  # no schema yet
    return row is not None and row[0] == schema_head()


def _through_sqlalchemy(database_url: str) -> DriverConnection:
    db = common.connect(database_url)
    dialect = db.engine.dialect
    if dialect.driver not in ("pysqlite", "psycopg"):
        db.dispose()
        raise common.CliError(f"trainlog ls reads through sqlite3 or psycopg, not {dialect.driver}")
    pooled = db.engine.raw_connection()

    def close() -> None:
        pooled.close()
        db.dispose()

    return DriverConnection(
        pooled.driver_connection, dialect.name, dialect.loaded_dbapi.Error, close
    )
