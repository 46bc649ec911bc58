"""The database goes away or stalls mid-run: the child is drained throughout and the log ends
up exactly the child's output."""

from __future__ import annotations

import base64
import os
import pwd
import re
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from sqlalchemy.exc import SQLAlchemyError

from tests.faults.conftest import PostgresLink, StartServer, alive, fault_env, runner_pid
from tests.helpers import (
    Server,
    StreamResult,
    parse_sse,
    start_run,
    wait_for,
    wait_until_ended,
    write_config,
)
from tests.programs.emit import expected_output
from tests.programs.noise import MIB, expected_noise
from trainlog.db import WAL_SIZE_LIMIT, Database, migrate


def _follow(client: httpx.Client, run_id: str, result: StreamResult, seen: list[str]) -> None:
    """Read the stream to ``done``, reconnecting with Last-Event-ID as a browser would."""
    while result.done is None:
        headers = {"Last-Event-ID": str(result.ids[-1])} if result.ids else {}
        try:
            with client.stream(
                "GET", f"/api/runs/{run_id}/logs/stream", headers=headers
            ) as response:
                if response.status_code != 200:
                    seen.append(f"http {response.status_code}")
                    time.sleep(0.5)
                    continue
                for event in parse_sse(response.iter_lines()):
                    seen.append(event.event)
                    if event.event == "log":
                        result.data += base64.b64decode(event.data["chunk"])
                        result.ids.append(int(event.id or 0))
                    elif event.event == "done":
                        result.done = event.data
        except httpx.HTTPError as exc:
            seen.append(type(exc).__name__)
            time.sleep(0.5)


def _start_watched(
    server: Server, client: httpx.Client, config: str
) -> tuple[str, int, StreamResult, list[str], threading.Thread]:
    """Start a run and a viewer following it to the end: (run id, runner pid, what the viewer
    got, the events it saw, its thread)."""
    run_id: str = start_run(client, config)["id"]
    runner = runner_pid(server, run_id)
    viewer, seen = StreamResult(), []
    follower = threading.Thread(target=_follow, args=(client, run_id, viewer, seen))
    follower.start()
    return run_id, runner, viewer, seen, follower


def _spilled(runner: int, spill_dir: Path) -> int:
    """Bytes in the runner's spill file now (an unlinked file: found among its descriptors)."""
    total = 0
    try:
        descriptors = list(Path(f"/proc/{runner}/fd").iterdir())
    except OSError:
        return 0  # the runner has ended
    for fd in descriptors:
        try:
            # Only the spill file is in spill_dir (unnamed there: Linux's O_TMPFILE).
            if os.readlink(fd).startswith(f"{spill_dir}/"):
                total += fd.stat().st_size
        except OSError:
            continue  # closed meanwhile
    return total


def _children(pid: int) -> list[int]:
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:
        return []


# About a minute, and PostgreSQL is down for everyone meanwhile: make test-slow runs it.
@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_down_mid_run_loses_and_repeats_nothing(
    servers: StartServer,
    database_url: str,
    config_dir: Path,
    tmp_path: Path,
    postgres_outage: Callable[[float], None],
) -> None:
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    server = servers({**fault_env(database_url, config_dir), "TRAINLOG_SPILL_DIR": str(spill_dir)})
    # About 50 s of output, 1 MiB every 2 s: it goes on through the 30 s outage and after it,
    # and the backlog (~15 MiB) outgrows the 1 MiB memory buffer, so it spills to disk.
    config = write_config(config_dir, "long.json", delay=0.1, repeat=25)
    expected = expected_output(repeat=25)
    with server.client() as client:
        run_id, runner, viewer, seen, follower = _start_watched(server, client, config)
        spilled_peak, sampled = [0], threading.Event()

        def sample_spill() -> None:
            while not sampled.wait(0.2):
                spilled_peak[0] = max(spilled_peak[0], _spilled(runner, spill_dir))

        sampler = threading.Thread(target=sample_spill)
        sampler.start()
        wait_for(lambda: len(viewer.data) > 100_000)
        try:
            postgres_outage(30)
            # The outage fell inside the child's output, not after it: the child still writes.
            children = _children(runner)
            assert children and all(alive(child) for child in children)
        finally:
            sampled.set()
            sampler.join()
        follower.join(timeout=90)
        run = wait_until_ended(client, run_id, timeout=60)
    # The runner held the backlog, in memory and then on disk, and drained the child all along.
    assert spilled_peak[0] > 5 * MIB, spilled_peak
    assert run["status"] == "succeeded" and run["exit_code"] == 0
    assert run["log_size"] == len(expected)
    assert bytes(viewer.data) == expected
    assert viewer.done == {"exit_code": 0, "final_size": len(expected)}
    # The stream open through the outage was never cut or answered with an error: it said
    # it was reconnecting, waited, and went on.
    assert "reconnecting" in seen
    assert set(seen) <= {"log", "heartbeat", "reconnecting", "done"}, sorted(set(seen))


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_unreachable_as_the_child_ends_loses_nothing_and_the_run_is_not_lost(
    servers: StartServer,
    database_url: str,
    config_dir: Path,
    tmp_path: Path,
    postgres_link: PostgresLink,
) -> None:
    # The short form of the outage above, for make test: this test's server and runner lose
    # PostgreSQL (their connections reset, new ones refused) for 4.5 s while the child writes,
    # and the child ends inside the outage. The runner's backed-off append comes ~4 s after
    # PostgreSQL is back, its backlog stored after that: longer than lost_after (3 s), so a
    # runner that stopped reporting when its child ended would be judged lost meanwhile.
    env = fault_env(postgres_link.url(database_url), config_dir)
    server = servers({**env, "TRAINLOG_RUNNER_LOST_AFTER": "3"})
    stop = tmp_path / "stop"
    config = write_config(config_dir, "long.json", delay=0.05, repeat=100, stop_when=str(stop))
    with server.client() as client:
        run_id, runner, viewer, seen, follower = _start_watched(server, client, config)
        wait_for(lambda: len(viewer.data) > 100_000)
        outage = threading.Thread(target=postgres_link.cut, args=(4.5,))
        outage.start()
        time.sleep(0.5)
        # The outage fell inside the child's output: the child still writes...
        children = _children(runner)
        assert children and all(alive(child) for child in children)
        # ...and ends within it (after the repeat it is writing).
        stop.touch()
        wait_for(lambda: not any(alive(child) for child in children), timeout=4)
        assert outage.is_alive()
        outage.join()
        follower.join(timeout=90)
        run = wait_until_ended(client, run_id, timeout=60)
    # What the server and runner said, to tell a lost run from lost bytes if this fails.
    said = server.log_path.read_text(errors="replace")[-4000:]
    assert run["status"] == "succeeded" and run["exit_code"] == 0, (run, said)
    repeats, rest = divmod(run["log_size"], len(expected_output()))
    assert rest == 0 and repeats >= 1, (run, said)
    assert bytes(viewer.data) == expected_output(repeat=repeats)
    assert viewer.done == {"exit_code": 0, "final_size": run["log_size"]}
    assert "reconnecting" in seen
    assert set(seen) <= {"log", "heartbeat", "reconnecting", "done"}, sorted(set(seen))


def test_sqlite_locked_writers_wait_and_the_wal_stays_bounded(
    servers: StartServer, tmp_path: Path, config_dir: Path
) -> None:
    db_path = tmp_path / "busy.db"
    # The held lock stalls heartbeats too; that must not count as a dead runner.
    server = servers(
        {
            **fault_env(f"sqlite:///{db_path}", config_dir, "noise.py"),
            "TRAINLOG_RUNNER_LOST_AFTER": "10",
        }
    )
    # 80 MiB through the WAL, more than its size limit; incompressible, so it stays 80 MiB.
    config = write_config(config_dir, "flood.json", mib=80, delay=0.02)
    expected = expected_noise(80)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["log_size"] > 0)
        locker = sqlite3.connect(db_path, isolation_level=None)
        # A writer holding the lock for 3 s: the runner's appends must wait, not fail.
        locker.execute("BEGIN IMMEDIATE")
        time.sleep(3)
        locker.execute("COMMIT")
        # A long reader: checkpoints cannot recycle the WAL while it holds its snapshot.
        locker.execute("BEGIN")
        locker.execute("SELECT count(*) FROM log_chunks").fetchone()
        wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["log_size"] > 30 * 2**20)
        grown = Path(f"{db_path}-wal").stat().st_size
        locker.execute("COMMIT")
        locker.close()
        run = wait_until_ended(client, run_id, timeout=90)
        assert run["status"] == "succeeded" and run["log_size"] == len(expected)
        assert client.get(f"/api/runs/{run_id}/logs/raw").content == expected
    assert grown > 20 * 2**20  # the reader did hold the WAL back
    assert Path(f"{db_path}-wal").stat().st_size <= WAL_SIZE_LIMIT


def mount_tmpfs(mount: Path, options: str) -> None:
    """A real small file system at ``mount`` (a tmpfs, which needs root), to fill for real."""
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root) to fill a disk for real: {result}")


def unmount(mount: Path) -> None:
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    mount_tmpfs(mount, "size=2m")
    yield mount
    unmount(mount)


def test_disk_full_while_spilling_drops_with_a_notice_and_keeps_serving(
    servers: StartServer, tmp_path: Path, config_dir: Path, tiny_disk: Path
) -> None:
    db_path = tmp_path / "full.db"
    env = {**fault_env(f"sqlite:///{db_path}", config_dir), "TMPDIR": str(tiny_disk)}
    env["TRAINLOG_SPILL_DIR"] = str(tiny_disk)
    # The held lock stalls heartbeats too; that must not count as a dead runner.
    env["TRAINLOG_RUNNER_LOST_AFTER"] = "10"
    server = servers(env)
    other = write_config(config_dir, "other.json")
    flood = write_config(config_dir, "flood.json", repeat=8, delay=0.01)
    expected = expected_output(repeat=8)
    with server.client() as client:
        other_id = start_run(client, other)["id"]
        wait_until_ended(client, other_id)
        run_id = start_run(client, flood)["id"]
        wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["log_size"] > 0)
        locker = sqlite3.connect(db_path, isolation_level=None)
        # The database stalls (held lock) while the child writes 8 MiB in 2 s: 1 MiB fits
        # in memory, 2 MiB on the spill disk, the rest has nowhere to go.
        locker.execute("BEGIN IMMEDIATE")
        time.sleep(3)
        # Meanwhile other runs are still served.
        assert client.get(f"/api/runs/{other_id}/logs/raw").content == expected_output()
        locker.execute("COMMIT")
        locker.close()
        run = wait_until_ended(client, run_id, timeout=60)
        log = client.get(f"/api/runs/{run_id}/logs/raw").content
    assert run["status"] == "succeeded" and run["exit_code"] == 0
    assert "output was lost" in run["error"] and "No space left on device" in run["error"]
    _assert_losses_noticed(log, expected)


_LOSS_NOTICE = re.compile(rb"\r\n\[trainlog\] (\d+) bytes of output lost: ([^\r]*)\r\n")


def _assert_losses_noticed(log: bytes, expected: bytes) -> None:
    """The log is the child's output with each dropped stretch replaced by a notice giving
    its exact size: what was held is there, in order, and nothing is silently missing.

    A busy machine may see more than one: once all that was held is taken (a batch ahead
    takes it), buffering resumes, and if the disk is still full the next bytes are dropped
    again, after their own notice."""
    position, kept = 0, 0
    notices = list(_LOSS_NOTICE.finditer(log))
    assert notices
    for notice in notices:
        assert b"No space left on device" in notice[2]
        piece = log[kept : notice.start()]
        assert expected[position : position + len(piece)] == piece
        lost = int(notice[1])
        assert lost > 0
        position += len(piece) + lost
        kept = notice.end()
    assert expected[position:] == log[kept:]


@dataclass(frozen=True)
class SmallDisk:
    """A database whose log chunks live on a small file system, and a file that fills it."""

    database_url: str
    mount: Path

    def fill(self, leave: int) -> None:
        stat = os.statvfs(self.mount)
        with (self.mount / "filler").open("wb") as filler:
            os.posix_fallocate(filler.fileno(), 0, stat.f_bavail * stat.f_frsize - leave)

    def make_room(self) -> None:
        (self.mount / "filler").unlink()


@pytest.fixture(params=["sqlite", "postgresql"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmallDisk]:
    """SQLite: the whole database on a 16 MiB tmpfs. PostgreSQL: the test schema's log_chunks
    table (its TOAST table, where the chunks' bytes go, moves with it) in a tablespace there.

    Request it before ``servers``, so the servers are gone when the table moves back.
    """
    if request.param == "sqlite":
        mount = tmp_path / "small"
        mount.mkdir()
        mount_tmpfs(mount, "size=16m")
        yield SmallDisk(f"sqlite:///{mount}/trainlog.db", mount)
        unmount(mount)
        return
    url: str = request.getfixturevalue("pg_schema_url")
    admin: sqlalchemy.Engine = request.getfixturevalue("pg_admin")
    # Outside pytest's tmp_path, which PostgreSQL's own user cannot enter.
    mount = Path(tempfile.mkdtemp(prefix="trainlog-tablespace-"))
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no local postgres user to own a tablespace")
    # PostgreSQL wants its tablespace directory to be its own, and private.
    mount_tmpfs(mount, f"size=16m,uid={owner.pw_uid},gid={owner.pw_gid},mode=0700")
    tablespace = f"trainlog_test_{uuid.uuid4().hex[:12]}"
    database = Database.connect(url)
    migrate(database.engine)
    with database.engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    database.dispose()
    ddl = admin.execution_options(isolation_level="AUTOCOMMIT")
    try:
        with ddl.connect() as connection:
            connection.exec_driver_sql(f"CREATE TABLESPACE {tablespace} LOCATION '{mount}'")
    except SQLAlchemyError as exc:
        unmount(mount)
        mount.rmdir()
        pytest.skip(f"PostgreSQL cannot use {mount} as a tablespace (another machine?): {exc}")
    with ddl.connect() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {schema}.log_chunks SET TABLESPACE {tablespace}")
    yield SmallDisk(url, mount)
    with ddl.connect() as connection:
        connection.exec_driver_sql("SET lock_timeout = '20s'")
        connection.exec_driver_sql(f"ALTER TABLE {schema}.log_chunks SET TABLESPACE pg_default")
        connection.exec_driver_sql(f"DROP TABLESPACE {tablespace}")
    unmount(mount)
    mount.rmdir()


DISK_FULL_NOTE = re.compile(
    r"the database's disk is full; the runner is holding (\d+) bytes of output and retrying"
)


def _held(run: dict[str, Any]) -> int | None:
    """The bytes the runner says it holds, if the run's error says the database's disk is full."""
    note = DISK_FULL_NOTE.fullmatch(run["error"] or "")
    return int(note[1]) if note else None


def _disk_full_env(small_disk: SmallDisk, config_dir: Path, spill_dir: Path) -> dict[str, str]:
    env = fault_env(small_disk.database_url, config_dir, "noise.py")
    env["TRAINLOG_SPILL_DIR"] = str(spill_dir)
    # Heartbeats may fail while the disk is full too; that must not count as a dead runner.
    env["TRAINLOG_RUNNER_LOST_AFTER"] = "60"
    return env


def test_database_disk_full_is_noted_on_the_run_and_nothing_is_lost(
    small_disk: SmallDisk, servers: StartServer, tmp_path: Path, config_dir: Path
) -> None:
    # Spills go where there is room: this test is about the database's disk, and loses nothing.
    server = servers(_disk_full_env(small_disk, config_dir, tmp_path))
    other = write_config(config_dir, "other.json", mib=1, seed=1)
    flood = write_config(config_dir, "flood.json", mib=8, delay=0.05)
    expected = expected_noise(8)
    with server.client() as client:
        other_id = start_run(client, other)["id"]
        other_runner = runner_pid(server, other_id)
        wait_until_ended(client, other_id)
        # Its runner compacts the log after the run has ended; the disk fills after that.
        wait_for(lambda: not alive(other_runner))
        small_disk.fill(leave=MIB)
        run_id = start_run(client, flood)["id"]

        def drained_while_full() -> dict[str, Any] | None:
            # The note counts what the runner holds; with what is stored, that is all the
            # child wrote once it has been drained to the end.
            run: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
            held = _held(run)
            return run if held is not None and held + run["log_size"] == len(expected) else None

        run = wait_for(drained_while_full, timeout=20)
        assert run["status"] == "running" and run["log_size"] < len(expected)
        # Meanwhile the server serves other runs.
        assert client.get(f"/api/runs/{other_id}/logs/raw").content == expected_noise(1, seed=1)
        small_disk.make_room()
        run = wait_until_ended(client, run_id, timeout=30)
        log = client.get(f"/api/runs/{run_id}/logs/raw").content
    assert run["status"] == "succeeded" and run["exit_code"] == 0
    # Nothing was lost, so once the bytes were in, the note went.
    assert run["error"] is None
    assert run["log_size"] == len(expected)
    assert log == expected


def test_output_lost_while_the_database_disk_is_full_keeps_the_loss_note(
    small_disk: SmallDisk,
    servers: StartServer,
    tiny_disk: Path,
    config_dir: Path,
) -> None:
    # The spill disk is full too (2 MiB): what the runner cannot hold is dropped.
    server = servers(_disk_full_env(small_disk, config_dir, tiny_disk))
    flood = write_config(config_dir, "flood.json", mib=16, delay=0.02)
    expected = expected_noise(16)
    with server.client() as client:
        small_disk.fill(leave=MIB)
        run_id = start_run(client, flood)["id"]
        runner = runner_pid(server, run_id)
        wait_for(lambda: _held(client.get(f"/api/runs/{run_id}").json()) is not None)
        # The child writes all 16 MiB while the disk is full: at most 1 MiB stored, a 4 MiB
        # batch in hand, 1 MiB in memory, 2 MiB spilled; the rest is lost.
        wait_for(lambda: not _children(runner))
        small_disk.make_room()
        run = wait_until_ended(client, run_id, timeout=30)
        log = client.get(f"/api/runs/{run_id}/logs/raw").content
    assert run["status"] == "succeeded" and run["exit_code"] == 0
    # The disk-full note went with the held bytes; the loss note stays.
    assert run["error"].startswith("output was lost: the runner could not spill them to disk")
    assert "No space left on device" in run["error"]
    _assert_losses_noticed(log, expected)
