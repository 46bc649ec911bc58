"""Fixtures: a real database (SQLite and PostgreSQL) and a real trainlog server."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy.exc import OperationalError

from tests.helpers import Server, server_env, start_server, stop_server
from trainlog.db import Database, migrate

# Each test names its database; one that forgets still never reaches the user's own default
# database (platformdirs puts it under XDG_DATA_HOME), nor does any process it starts.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="trainlog-tests-data-")
# Live metric extraction (on by default) starts a follower process beside every run; only
# the tests about metrics turn it on (the `metrics_on` fixture), so the rest of the suite
# does not pay a process per run.
os.environ["TRAINLOG_METRICS"] = "0"

PG_URL = os.environ.get("TRAINLOG_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"


# Fixtures that stop something every test on the machine shares: a test using one is marked
# `serial`, and make test runs those alone, after the parallel (xdist) run of the rest.
SHARED_SERVICE_FIXTURES = {"postgres_outage"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SHARED_SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.serial)


@pytest.fixture
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs started by the test (servers, `trainlog run`, runners) extract metrics live."""
    monkeypatch.setenv("TRAINLOG_METRICS", "1")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sqlalchemy.Engine]:
    # Pre-ping: the fault tests restart PostgreSQL, which kills pooled connections.
    engine = sqlalchemy.create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://"), pool_pre_ping=True
    )
    try:
        engine.connect().close()
    except OperationalError as exc:
        engine.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: set TRAINLOG_TEST_DATABASE_URL")
    _trigram_extension_in_public(engine)
    yield engine
    engine.dispose()


def _trigram_extension_in_public(engine: sqlalchemy.Engine) -> None:
    """pg_trgm lives in public, not in a test's schema. A migration's CREATE EXTENSION puts
    it in the first schema of its search path: in a test's fresh schema, whose DROP ... CASCADE
    would then take the extension and every other test's trigram index with it (a deadlock
    when tests run side by side)."""
    with engine.begin() as connection:
        # Tests start side by side (xdist workers): one at a time here.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(8146091)")
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        connection.exec_driver_sql("ALTER EXTENSION pg_trgm SET SCHEMA public")


@pytest.fixture
def pg_schema_url(pg_admin: sqlalchemy.Engine) -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"trainlog_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    # A runner may still be compacting its finished run's log (it does so after recording the
    # end, which is all a test waits for); if the drop deadlocks with it, try again.
    for attempt in range(10):
        try:
            with pg_admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            return
        except OperationalError:
            if attempt == 9:
                raise
            time.sleep(0.5)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/trainlog.db"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.connect(database_url)
    migrate(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "configs"
    directory.mkdir()
    return directory


@pytest.fixture
def server(database_url: str, config_dir: Path, tmp_path: Path) -> Iterator[Server]:
    """A real ``trainlog serve`` (uvicorn) whose command runs tests/programs/emit.py."""
    running = start_server(server_env(database_url, config_dir), tmp_path)
    yield running
    stop_server(running)
