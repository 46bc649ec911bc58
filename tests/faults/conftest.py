"""Fault fixtures: servers with fault-friendly timings, processes to kill, PostgreSQL to stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy

from tests.helpers import Server, server_env, start_server, stop_server, wait_for

PG_CLUSTER = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main"]

StartServer = Callable[..., Server]


def fault_env(database_url: str, config_dir: Path, program: str = "emit.py") -> dict[str, str]:
    return server_env(
        database_url,
        config_dir,
        program,
        # Above the runner's drain (up to 4 s without heartbeats after the child exits while a
        # descendant holds the output open), below the default, to keep the tests short.
        TRAINLOG_RUNNER_LOST_AFTER="6",
        TRAINLOG_BUFFER_BYTES=str(1024 * 1024),
    )


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers with start(env, port=None); all are stopped (SIGKILL if need be) after."""
    started: list[Server] = []

    def start(env: dict[str, str], port: int | None = None) -> Server:
        server = start_server(env, tmp_path, port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server, signal.SIGKILL)
    # Runners outlive servers by design; let them finish their last writes (or end them) before
    # the database is dropped under them.
    urls = {server.env["TRAINLOG_DATABASE_URL"] for server in started}
    runners = [pid for url in urls for pid in _runners_of(url)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in runners):
        time.sleep(0.1)
    for pid in runners:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def _runners_of(database_url: str) -> list[int]:
    marker = f"TRAINLOG_DATABASE_URL={database_url}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"trainlog.runner" in cmdline and marker in environ:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for a parent to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" not in state.split()[1]


def read_pids(pidfile: Path) -> list[int]:
    def written() -> list[int] | None:
        try:
            pids: list[int] = json.loads(pidfile.read_text())
        except (OSError, ValueError):
            return None
        return pids

    return wait_for(written, timeout=20)


@pytest.fixture
def kill_leftovers() -> Iterator[list[int]]:
    """Pids a test spawned indirectly; whatever still runs at the end is killed."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def runner_pid(server: Server, run_id: str) -> int:
    """The runner process of a run (python -m trainlog.runner RUN_ID), found via /proc."""

    def find() -> int | None:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"trainlog.runner" in cmdline and run_id.encode() in cmdline:
                    return int(entry.name)
        return None

    return wait_for(find, timeout=20)


@pytest.fixture
def postgres_outage(pg_admin: sqlalchemy.Engine) -> Iterator[Callable[[float], None]]:
    """Stop PostgreSQL for a while, then start it; it is started again whatever happens.

    This cuts every connection on the machine, other people's tests' too: keep it short.
    """

    def outage(seconds: float) -> None:
        subprocess.run([*PG_CLUSTER, "stop", "-m", "fast"], check=True, timeout=60)
        try:
            time.sleep(seconds)
        finally:
            subprocess.run([*PG_CLUSTER, "start"], check=True, timeout=60)
            # The shared admin engine's pooled connections died with the server.
            pg_admin.dispose()

    yield outage
    if b"online" not in subprocess.run(["pg_lsclusters"], capture_output=True).stdout:
        subprocess.run([*PG_CLUSTER, "start"], check=False, timeout=60)
