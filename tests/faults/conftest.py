"""Fault fixtures: servers with fault-friendly timings, processes to kill, PostgreSQL to stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy

from tests.helpers import Server, free_port, server_env, start_server, stop_server, wait_for

PG_CLUSTER = ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main"]

StartServer = Callable[..., Server]


def fault_env(database_url: str, config_dir: Path, program: str = "emit.py") -> dict[str, str]:
    return server_env(
        database_url,
        config_dir,
        program,
        # Below the default (12 s), to keep the lost-runner tests short; well above the
        # heartbeat interval (0.5 s), so a busy test machine does not lose a live runner.
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


class PostgresLink:
    """A TCP relay to PostgreSQL whose link a test can cut: the connections through it are
    reset and new ones refused, as if PostgreSQL went down, for this test's processes only
    (stopping PostgreSQL itself cuts every test's; that test runs alone, in make test-slow)."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = free_port()
        self._relayed: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = self._listen()

    def _listen(self) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return listener

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(self.upstream)
            except OSError:
                return  # the link was cut (or PostgreSQL refused: the client sees a reset)
            with self._lock:
                self._relayed += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def cut(self, seconds: float) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        with self._lock:
            relayed, self._relayed = self._relayed, []
        for sock in relayed:
            with contextlib.suppress(OSError):
                # A reset, not a polite end: what a dead server's clients see.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Shut down before closing: close alone leaves a socket another thread is
                # blocked reading (the relay's _pipe) open and silent, and a client awaiting an
                # answer on it then waits forever (a runner's heartbeat hung so, and the run
                # was judged lost).
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        time.sleep(seconds)
        self._listener = self._listen()

    def url(self, database_url: str) -> str:
        host, port = self.upstream
        return database_url.replace(f"@{host}:{port}/", f"@127.0.0.1:{self.port}/", 1)

    def close(self) -> None:
        self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def postgres_link(pg_admin: sqlalchemy.Engine) -> Iterator[PostgresLink]:
    url = pg_admin.url
    link = PostgresLink(url.host or "127.0.0.1", url.port or 5432)
    yield link
    link.close()
