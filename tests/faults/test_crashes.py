"""kill -9 of the API server or of a runner, a stopped runner, a cancel: the log and the run's
state stay true, and no process of the run is left behind."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.conftest import (
    StartServer,
    alive,
    fault_env,
    read_pids,
    runner_pid,
)
from tests.helpers import read_stream, start_run, wait_for, wait_until_ended, write_config
from tests.programs.emit import expected_output


def test_api_server_killed_mid_run(
    servers: StartServer, database_url: str, config_dir: Path, tmp_path: Path
) -> None:
    env = fault_env(database_url, config_dir)
    # The child outlives the restart: its output takes 3 s, then it waits until told to end
    # (on a busy machine a server takes seconds to start; a fixed wait lost that race).
    stop = tmp_path / "stop"
    config = write_config(
        config_dir, "long.json", delay=0.1, repeat=2, linger=120, stop_when=str(stop), exit_code=5
    )
    expected = expected_output(repeat=2)
    server = servers(env)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        before = read_stream(client, run_id, stop_after_bytes=200)
    server.process.kill()
    server.process.wait()
    port = server.port
    restarted = servers(env, port=port)
    with restarted.client() as client:
        assert client.get(f"/api/runs/{run_id}").json()["status"] == "running"
        wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["log_size"] == len(expected))
        stop.touch()
        after = read_stream(client, run_id, last_event_id=str(before.ids[-1]))
        assert bytes(before.data + after.data) == expected
        assert after.done == {"exit_code": 5, "final_size": len(expected)}


def _family(config_dir: Path, tmp_path: Path, name: str, **values: object) -> tuple[str, Path]:
    pidfile = tmp_path / f"{name}.pids"
    return write_config(config_dir, name, pidfile=str(pidfile), **values), pidfile


def test_runner_killed_the_run_is_lost_and_its_processes_end(
    servers: StartServer,
    database_url: str,
    config_dir: Path,
    tmp_path: Path,
    kill_leftovers: list[int],
) -> None:
    server = servers(fault_env(database_url, config_dir, "family.py"))
    config, pidfile = _family(config_dir, tmp_path, "family.json", children=2)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        pids = read_pids(pidfile)
        kill_leftovers.extend(pids)
        runner = runner_pid(server, run_id)
        kill_leftovers.append(runner)
        read_stream(client, run_id, stop_after_bytes=20)
        killed_at = time.monotonic()
        os.kill(runner, signal.SIGKILL)

        run = wait_until_ended(client, run_id, timeout=15)
        took = time.monotonic() - killed_at
        assert run["status"] == "lost" and run["exit_code"] is None
        assert "runner stopped reporting" in run["error"]
        # Lost after TRAINLOG_RUNNER_LOST_AFTER=6s plus one sweep (and a loaded machine).
        assert took < 10, took
        stream = read_stream(client, run_id)
        assert stream.done == {"exit_code": None, "final_size": run["log_size"]}
        assert stream.data.startswith(b"tick 0\n")
    # Including the worker that left the process group for a session of its own.
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=5)


@pytest.mark.parametrize("how", ["cancel", "sigterm to the runner"])
def test_every_stop_reaches_the_grandchildren(
    how: str,
    servers: StartServer,
    tmp_path: Path,
    config_dir: Path,
    kill_leftovers: list[int],
) -> None:
    server = servers(fault_env(f"sqlite:///{tmp_path}/t.db", config_dir, "family.py"))
    config, pidfile = _family(config_dir, tmp_path, "family.json", children=3)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        pids = read_pids(pidfile)
        kill_leftovers.extend(pids)
        if how == "cancel":
            assert client.post(f"/api/runs/{run_id}/cancel").status_code == 202
        else:
            os.kill(runner_pid(server, run_id), signal.SIGTERM)
        run = wait_until_ended(client, run_id, timeout=15)
        assert run["status"] == "cancelled"
        assert run["exit_code"] == -signal.SIGTERM
    # The last worker left for a session of its own: the run id it inherited finds it.
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=5)
    assert json.loads(pidfile.read_text()) == pids
