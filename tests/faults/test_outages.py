"""The database goes away or stalls mid-run: the child is drained throughout and the log ends
up exactly the child's output."""

from __future__ import annotations

import base64
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.faults.conftest import StartServer, fault_env
from tests.helpers import (
    StreamResult,
    parse_sse,
    start_run,
    wait_for,
    wait_until_ended,
    write_config,
)
from tests.programs.emit import expected_output
from tests.programs.noise import expected_noise
from trainlog.db import WAL_SIZE_LIMIT


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


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_down_mid_run_loses_and_repeats_nothing(
    servers: StartServer,
    database_url: str,
    config_dir: Path,
    postgres_outage: Callable[[float], None],
) -> None:
    server = servers(fault_env(database_url, config_dir))
    # About 10 s of output, 1 MiB per repeat: the outage lands in the middle, and the backlog
    # outgrows the 1 MiB memory buffer, so it spills to disk.
    config = write_config(config_dir, "long.json", delay=0.02, repeat=20)
    expected = expected_output(repeat=20)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        viewer, seen = StreamResult(), []
        follower = threading.Thread(target=_follow, args=(client, run_id, viewer, seen))
        follower.start()
        wait_for(lambda: len(viewer.data) > 100_000)
        postgres_outage(6)
        follower.join(timeout=60)
        run = wait_until_ended(client, run_id, timeout=60)
    assert run["status"] == "succeeded" and run["exit_code"] == 0
    assert run["log_size"] == len(expected)
    assert bytes(viewer.data) == expected
    assert viewer.done == {"exit_code": 0, "final_size": len(expected)}
    # The stream open through the outage was never cut or answered with an error: it said
    # it was reconnecting, waited, and went on.
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


@pytest.fixture
def tiny_disk(tmp_path: Path) -> object:
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)])
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root) to fill a disk for real")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


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
    head, notice, tail = log.partition(b"\r\n[trainlog] ")
    assert notice and b"bytes of output lost" in tail and b"No space left on device" in tail
    # What was buffered and spilled before the disk filled is there, in order; then the
    # notice with the exact count of what was dropped; then the rest, once there was room.
    assert expected.startswith(head)
    lost = int(tail.split(b" ", 1)[0])
    assert lost > 0
    rest = tail.split(b"\r\n", 1)[1]
    assert len(head) + lost + len(rest) == len(expected)
    assert expected.endswith(rest)
