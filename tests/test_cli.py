"""The ``trainlog`` command as a user runs it: a real process, a real database."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta, timezone
from pathlib import Path

import alembic.command
import pytest
from alembic.config import Config
from sqlalchemy import update

from tests.helpers import (
    PROGRAMS,
    free_port,
    server_env,
    start_server,
    stop_server,
)
from tests.programs.emit import expected_output
from trainlog import runs, store
from trainlog.cli import driver, listing
from trainlog.db import Database, make_engine
from trainlog.models import ExperimentRun, RunSource, RunStatus, RunTag, utcnow
from trainlog.revision import MIGRATIONS_DIR, schema_head

KOLKATA = timezone(timedelta(hours=5, minutes=30))


def trainlog(
    database_url: str, *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "TRAINLOG_DATABASE_URL": database_url, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "trainlog", *args], env=env, capture_output=True, timeout=timeout
    )


def run_id_from(stderr: bytes) -> str:
    line = next(line for line in stderr.decode().splitlines() if line.startswith("trainlog: run "))
    return line.removeprefix("trainlog: run ")


def test_run_echoes_captures_and_exits_with_the_childs_code(
    database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "c.json"
    config.write_text('{"exit_code": 5}')
    result = trainlog(
        database_url,
        "run",
        "--no-pty",
        "--",
        sys.executable,
        str(PROGRAMS / "emit.py"),
        str(config),
    )
    assert result.returncode == 5
    assert result.stdout == expected_output()  # echoed to the user's terminal unchanged
    run_id = run_id_from(result.stderr)

    tail = trainlog(database_url, "tail", run_id)
    assert tail.returncode == 0 and tail.stdout == expected_output()
    partial = trainlog(database_url, "tail", run_id, "--offset", "10")
    assert partial.stdout == expected_output()[10:]

    listing = trainlog(database_url, "ls")
    assert listing.returncode == 0
    assert run_id in listing.stdout.decode() and "failed" in listing.stdout.decode()


def start_cli_run(database_url: str, script: str) -> tuple[subprocess.Popen[bytes], str]:
    """``trainlog run`` of a Python script, and its run id once it has one."""
    env = {**os.environ, "TRAINLOG_DATABASE_URL": database_url}
    run = subprocess.Popen(
        [sys.executable, "-m", "trainlog", "run", "--no-pty", "--", sys.executable, "-c", script],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert run.stderr is not None
    return run, run.stderr.readline().decode().strip().removeprefix("trainlog: run ")


def test_tail_follow_writes_until_the_run_ends(database_url: str) -> None:
    script = "import time\nfor i in range(5):\n    print(f'line {i}', flush=True); time.sleep(0.2)"
    run, run_id = start_cli_run(database_url, script)
    follow = trainlog(database_url, "tail", "--follow", run_id)
    assert run.wait(30) == 0
    assert follow.stdout == b"".join(f"line {i}\n".encode() for i in range(5))


def test_errors_are_messages_not_tracebacks(database_url: str) -> None:
    missing = trainlog(database_url, "run", "--", "/no/such/program")
    assert missing.returncode == 127
    assert b"could not start '/no/such/program'" in missing.stdout
    nothing = trainlog(database_url, "run")
    assert nothing.returncode == 2 and b"nothing to run" in nothing.stderr
    unknown = trainlog(database_url, "tail", "00000000-0000-0000-0000-000000000000")
    assert unknown.returncode == 1 and b"not found" in unknown.stderr
    malformed = trainlog(database_url, "tail", "nope")
    assert malformed.returncode == 2 and b"is not a run id" in malformed.stderr
    for result in (missing, nothing, unknown, malformed):
        assert b"Traceback" not in result.stderr


def test_a_sweeps_first_starts_all_run(database_url: str, tmp_path: Path) -> None:
    """Eight `trainlog run` and a server start at once on a database nobody has used yet."""
    env = {**os.environ, "TRAINLOG_DATABASE_URL": database_url}
    sweep = [
        subprocess.Popen(
            [sys.executable, "-m", "trainlog", "run", "--no-pty", "--", "echo", f"run {i}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(8)
    ]
    # Nine processes starting at once on two shared cores: give the server time.
    server = start_server(server_env(database_url, tmp_path), tmp_path, timeout=120)
    try:
        results = [run.communicate(timeout=120) for run in sweep]
        for i, (run, (out, err)) in enumerate(zip(sweep, results, strict=True)):
            assert run.returncode == 0 and out == f"run {i}\n".encode(), err.decode()
        with server.client() as client:
            stored = client.get("/api/runs").json()["runs"]
        assert sorted(run["command"][-1] for run in stored) == [f"run {i}" for i in range(8)]
    finally:
        stop_server(server)


def unreachable_url() -> str:
    # Nothing listens on a port just found free; the password must show in no message.
    return f"postgresql://postgres:{SECRET}@127.0.0.1:{free_port()}/test"


SECRET = "not-for-your-eyes"


def test_run_waits_for_the_database_then_gives_up_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    env = {**os.environ, "TRAINLOG_DATABASE_URL": unreachable_url(), "TRAINLOG_START_TIMEOUT": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "trainlog", "run", "--", "touch", str(marker)],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1 and not marker.exists()
    last = result.stderr.decode().splitlines()[-1]
    assert last.startswith("trainlog: cannot use the database at postgresql://postgres:***@")
    assert "(gave up after 1 s)" in last and "Connection refused" in last
    assert b"Traceback" not in result.stderr and SECRET.encode() not in result.stderr


def test_an_unreachable_database_is_one_line_for_serve_ls_and_tail() -> None:
    url = unreachable_url()
    for args in (
        ["serve", "--port", "1"],
        ["ls"],
        ["tail", "00000000-0000-0000-0000-000000000000"],
    ):
        result = trainlog(url, *args)
        assert result.returncode == 1, args
        assert result.stderr.decode().count("\n") == 1 and result.stdout == b"", result.stderr
        assert result.stderr.startswith(b"trainlog: cannot use the database at postgresql://")
        assert SECRET.encode() not in result.stderr


def test_a_database_trainlog_does_not_keep_runs_in_is_one_line() -> None:
    # SQLAlchemy knows MySQL (its driver is not installed here): refused by name, no traceback.
    for args in (["serve", "--port", "1"], ["ls"], ["run", "--", "true"]):
        result = trainlog("mysql://root@127.0.0.1/test", *args, env={"TRAINLOG_START_TIMEOUT": "0"})
        assert result.returncode == 1, args
        assert result.stderr.decode().splitlines()[-1] == (
            "trainlog: cannot use the database at mysql://root@127.0.0.1/test"
            + (" (gave up after 0 s)" if args[0] == "run" else "")
            + ": trainlog keeps its data in SQLite (sqlite:///PATH) or PostgreSQL "
            "(postgresql://...), not mysql"
        ), args
        assert b"Traceback" not in result.stderr


def test_tail_into_a_reader_that_leaves_stops_quietly(database_url: str) -> None:
    # 10 MB: far more than a pipe holds, so tail is still writing when its reader goes.
    script = "import sys; sys.stdout.write('line\\n' * 2_000_000)"
    run = trainlog(database_url, "run", "--no-pty", "--", sys.executable, "-c", script)
    env = {**os.environ, "TRAINLOG_DATABASE_URL": database_url}
    # `trainlog tail ID | head -1`: the reader takes one line of the 1 MiB log and goes.
    tail = subprocess.Popen(
        [sys.executable, "-m", "trainlog", "tail", run_id_from(run.stderr)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None and tail.stderr is not None
    assert tail.stdout.readline() == b"line\n"
    tail.stdout.close()
    assert tail.wait(60) == 128 + signal.SIGPIPE
    assert tail.stderr.read() == b""


def test_ls_shows_local_time_and_refuses_a_negative_limit(database_url: str, db: Database) -> None:
    run_id = run_id_from(trainlog(database_url, "run", "--", "true").stderr)
    with db.read() as session:
        started = runs.get(session, uuid.UUID(run_id)).started_at
    assert started is not None
    with_tz = {"TZ": "Asia/Kolkata"}  # UTC+05:30 all year
    listing = trainlog(database_url, "ls", env=with_tz).stdout.decode()
    assert "STARTED (IST)" in listing.splitlines()[0]
    assert f"{started.astimezone(KOLKATA):%Y-%m-%d %H:%M:%S}" in listing
    for bad in ("-1", "0", "x"):
        refused = trainlog(database_url, "ls", "--limit", bad)
        assert refused.returncode == 2 and b"not a positive whole number" in refused.stderr


def test_the_default_database_is_the_users_own_wherever_trainlog_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRAINLOG_DATABASE_URL"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()

    def trainlog_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
        command = [sys.executable, "-m", "trainlog", *args]
        return subprocess.run(command, env=env, cwd=cwd, capture_output=True, timeout=60)

    run_id = run_id_from(trainlog_in(here, "run", "--", "true").stderr)
    assert run_id in trainlog_in(there, "ls").stdout.decode()
    assert (tmp_path / "data" / "trainlog" / "trainlog.db").is_file()
    assert list(here.iterdir()) == [] and list(there.iterdir()) == []


def test_tail_follow_is_woken_by_new_bytes_not_a_poll(database_url: str, tmp_path: Path) -> None:
    # The child writes a line, then another once told to; with a poll every 10 minutes, the
    # follower can only see the second line (and the end) in time by being woken.
    go = tmp_path / "go"
    script = (
        "import os, time\n"
        "print('first', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "print('second', flush=True)\n"
    )
    run, run_id = start_cli_run(database_url, script)
    follow = subprocess.Popen(
        [sys.executable, "-m", "trainlog", "tail", "--follow", run_id],
        env={**os.environ, "TRAINLOG_DATABASE_URL": database_url, "TRAINLOG_POLL_INTERVAL": "600"},
        stdout=subprocess.PIPE,
    )
    assert follow.stdout is not None
    assert follow.stdout.readline() == b"first\n"
    go.touch()
    try:
        rest, _ = follow.communicate(timeout=60)
    finally:
        follow.kill()
    assert rest == b"second\n" and follow.returncode == 0 and run.wait(30) == 0


def imported_by(
    database_url: str, *args: str
) -> tuple[subprocess.CompletedProcess[bytes], set[str]]:
    """``trainlog ARGS`` as a process, and every module it imported (``python -X importtime``)."""
    env = {**os.environ, "TRAINLOG_DATABASE_URL": database_url}
    argv = [sys.executable, "-X", "importtime", "-m", "trainlog", *args]
    result = subprocess.run(argv, env=env, capture_output=True, timeout=60)
    return result, _modules_in(result.stderr)


def _modules_in(importtime: bytes) -> set[str]:
    lines = importtime.decode().splitlines()
    return {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:")}


def packages(modules: set[str]) -> set[str]:
    return {module.split(".")[0] for module in modules}


# What takes longer to import than `trainlog ls` may take in all (docs/benchmarks.md, cli).
HEAVY = {"sqlalchemy", "alembic", "pydantic", "pydantic_settings"}


def test_help_loads_the_parser_and_the_standard_library_only(tmp_path: Path) -> None:
    result, modules = imported_by(f"sqlite:///{tmp_path}/t.db", "--help")
    assert result.returncode == 0 and b"list runs, newest first" in result.stdout
    bare = _modules_in(
        subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True
        ).stderr
    )
    assert packages(modules - bare) - set(sys.stdlib_module_names) == {"trainlog"}
    commands = {"common", "serve", "run", "tail", "ls", "rm", "gc"}
    ours = {"trainlog", "trainlog.cli", *(f"trainlog.cli.{name}" for name in commands)}
    assert {module for module in modules if module.startswith("trainlog")} == ours


def test_ls_of_a_current_database_loads_neither_sqlalchemy_nor_pydantic(database_url: str) -> None:
    # A database nobody has used: ls makes its schema (SQLAlchemy, Alembic) and lists nothing.
    first, modules = imported_by(database_url, "ls")
    assert first.returncode == 0, first.stderr.decode()
    assert len(first.stdout.decode().splitlines()) == 1 and "alembic" in packages(modules)
    run_id = run_id_from(trainlog(database_url, "run", "--", "true").stderr)
    listing, modules = imported_by(database_url, "ls")
    assert listing.returncode == 0 and run_id in listing.stdout.decode()
    assert packages(modules) & HEAVY == set()


def test_ls_brings_a_schema_behind_its_head_up_to_date(database_url: str) -> None:
    versions = (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py")
    revisions = sorted(path.name.split("_", 1)[0] for path in versions)
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            alembic.command.upgrade(config, revisions[-2])
        result = trainlog(database_url, "ls")
        assert result.returncode == 0, result.stderr.decode()
        with engine.connect() as connection:
            version = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert version.scalar() == schema_head() == revisions[-1]
    finally:
        engine.dispose()


def _varied_runs(db: Database) -> None:
    """Runs of every status, configs, tags, names with LIKE's wildcards, one deleted, and
    three created at the same moment (ordered by id then)."""
    kinds = [
        ("a.yaml", "baseline", {"team": "vision", "seed": "1"}, RunStatus.SUCCEEDED),
        ("a.yaml", "50%_done/x", {"team": "vision"}, RunStatus.FAILED),
        (None, "lr_sweep", {"team": "nlp", "seed": "1"}, None),
        ("b.yaml", "LR sweep 2", {}, RunStatus.RUNNING),
        ("b.yaml", None, {"seed": "1"}, RunStatus.CANCELLED),
        (None, "gone", {"team": "vision"}, RunStatus.LOST),
    ]
    made: list[uuid.UUID] = []
    with db.write() as session:
        for round_ in range(3):
            for config, name, tags, status in kinds:
                argv = ["python", "train.py", f"--round={round_}"]
                run = runs.create(session, argv, config, RunSource.CLI, name=name, tags=tags)
                made.append(run.id)
                session.flush()  # the log's row, before its bytes
                store.append(session, run.id, 0, b"x\n" * (round_ * 700))
                if status is not None:
                    runs.mark_running(session, run.id, "host", 1, (80, 24))
                if status is not None and status.is_active is False:
                    runs.finish(session, run.id, status, 0 if status == RunStatus.SUCCEEDED else 1)
        runs.begin_delete(session, made[5])
        same = made[6:9]
        moment = utcnow()
        session.execute(
            update(ExperimentRun).where(ExperimentRun.id.in_(same)).values(created_at=moment)
        )
        session.execute(update(RunTag).where(RunTag.run_id.in_(same)).values(created_at=moment))


LIST_FILTERS = [
    listing.Filters(),
    listing.Filters(statuses=("succeeded",)),
    listing.Filters(statuses=("failed", "queued")),
    listing.Filters(config="a.yaml"),
    listing.Filters(tags=(("team", "vision"),)),
    listing.Filters(tags=(("team", "vision"), ("seed", "1"))),
    listing.Filters(tags=(("team", "nobody"),)),
    listing.Filters(q="50%"),
    listing.Filters(q="_"),
    listing.Filters(q="Lr"),
    listing.Filters(statuses=("failed",), q="x"),
    listing.Filters(q="LR_"),
    listing.Filters(q="/x"),
    listing.Filters(q="sweep"),
    listing.Filters(statuses=("succeeded", "failed"), tags=(("seed", "1"),), q="round=1"),
]


def test_ls_lists_what_the_api_lists_for_every_filter(database_url: str, db: Database) -> None:
    _varied_runs(db)
    connection = driver.connect(database_url)
    matched: list[int] = []
    try:
        for filters in LIST_FILTERS:
            for limit in (1, 2, 100):
                shown = _ls_pages(connection, filters, limit)
                assert shown == _api_pages(db, filters, limit), (filters, limit)
            matched.append(len(shown[0]))
    finally:
        connection.close()
    # Not vacuous: each filter keeps what it should (`_` and `LR_` only literally).
    assert matched == [17, 3, 6, 6, 8, 3, 0, 3, 6, 6, 3, 3, 3, 6, 1]


Shown = tuple[object, ...]


def _ls_pages(
    connection: driver.DriverConnection, filters: listing.Filters, limit: int
) -> list[list[Shown]]:
    pages: list[list[Shown]] = []
    after: listing.Cursor | None = None
    while True:
        page, after = listing.read_page(connection, filters, limit, after)
        pages.append([dataclasses.astuple(run) for run in page])
        if after is None:
            return pages


def _api_pages(db: Database, filters: listing.Filters, limit: int) -> list[list[Shown]]:
    api_filter = runs.RunFilter(
        statuses=tuple(RunStatus(s) for s in filters.statuses),
        config=filters.config,
        tags=tuple(filters.tags),
        q=filters.q,
    )
    pages: list[list[Shown]] = []
    after: runs.Cursor | None = None
    while True:
        with db.read() as session:
            page = runs.page(session, api_filter, limit, after)
        pages.append([_as_shown(view) for view in page.views])
        after = page.next_cursor
        if after is None:
            return pages


def _as_shown(view: runs.RunView) -> Shown:
    run = view.run
    fields = (run.status, run.exit_code, run.started_at, run.finished_at, run.name, run.config)
    return (str(run.id), *fields, run.command, view.log_size)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_postgres_scheme_url_is_postgresql(database_url: str) -> None:
    # postgres:// (as Heroku and others write it) is the same database as postgresql://.
    url = database_url.replace("postgresql://", "postgres://", 1)
    result = trainlog(url, "run", "--no-pty", "--", "echo", "hi")
    assert result.returncode == 0 and result.stdout == b"hi\n", result.stderr
