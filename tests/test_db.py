"""The database layer against real databases (no mocks): which errors mean a full disk, and
pooled connections that died while idle."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

import trainlog.db
from trainlog.db import MIGRATIONS_DIR, Database, is_disk_full, make_engine, schema_head


def _error_of(engine: sqlalchemy.Engine, *statements: str) -> SQLAlchemyError:
    with pytest.raises(SQLAlchemyError) as caught, engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)
    return caught.value


def test_sqlite_full_is_disk_full_and_other_errors_are_not(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/full.db")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (data BLOB)")
    # A file that may not grow past its page limit fails with SQLITE_FULL, as on a full disk.
    full = _error_of(
        engine,
        "PRAGMA max_page_count = 16",
        "INSERT INTO t VALUES (zeroblob(1000000))",
    )
    assert "full" in str(full)
    assert is_disk_full(full)
    assert not is_disk_full(_error_of(engine, "INSERT INTO missing VALUES (1)"))
    engine.dispose()


def test_postgresql_disk_full_is_disk_full_and_other_errors_are_not(
    pg_admin: sqlalchemy.Engine,
) -> None:
    # SQLSTATE 53100 as PostgreSQL sends it when it cannot extend a file (the fault test in
    # tests/faults/test_outages.py fills a real tablespace).
    full = _error_of(pg_admin, "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'disk_full'; END $$")
    assert is_disk_full(full)
    assert not is_disk_full(_error_of(pg_admin, "SELECT 1 / 0"))
    assert not is_disk_full(SQLAlchemyError("not from a database"))


def test_a_postgresql_connection_that_died_while_idle_is_replaced_unnoticed(
    pg_admin: sqlalchemy.Engine, pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As after a PostgreSQL restart: the pooled connection's server process is gone.
    monkeypatch.setattr(trainlog.db, "IDLE_PING_SECONDS", 0.05)
    db = Database.connect(pg_schema_url)
    with db.read() as session:
        backend = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with pg_admin.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    time.sleep(0.1)
    with db.read() as session:
        assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != backend
    db.dispose()


def test_a_delete_connection_that_cannot_restore_its_settings_keeps_the_deletes_error(
    tmp_path: Path,
) -> None:
    """Database.deleting() puts the connection's PRAGMAs back afterwards. When that fails
    too, the delete's own error is the one raised, and the connection, its settings unknown,
    never goes back to the pool."""
    db = Database.connect(f"sqlite:///{tmp_path}/t.db")

    def settings_refused(action: int, name: str | None, value: str | None, *_: object) -> int:
        # SQLite refuses setting this PRAGMA ("not authorized"), as it would any statement
        # on a connection gone bad; reading it stays allowed.
        refused = action == sqlite3.SQLITE_PRAGMA and name == "wal_autocheckpoint" and value
        return sqlite3.SQLITE_DENY if refused else sqlite3.SQLITE_OK

    def pooled_setting() -> object:
        with db.engine.connect() as connection:
            return connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()

    # A delete that went well: the failure to put the settings back is the error.
    with (
        pytest.raises(sqlite3.DatabaseError, match="not authorized"),
        db.deleting() as connection,
    ):
        connection.connection.driver_connection.set_authorizer(settings_refused)
    assert pooled_setting() == trainlog.db.AUTOCHECKPOINT_PAGES
    # A delete that failed: its own error.
    with (
        pytest.raises(SQLAlchemyError, match="no such table: missing"),
        db.deleting() as connection,
    ):
        connection.connection.driver_connection.set_authorizer(settings_refused)
        connection.exec_driver_sql("DELETE FROM missing")
    assert pooled_setting() == trainlog.db.AUTOCHECKPOINT_PAGES
    db.dispose()


def test_schema_head_is_the_newest_migration() -> None:
    # A start that finds schema_head() in alembic_version skips the migrations: it must be the
    # head Alembic would upgrade to, or a new migration would never run.
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_heads() == [schema_head()]
