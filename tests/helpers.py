"""Test helpers: a real server process, an SSE client, waiting without fixed sleeps."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from trainlog import runs, store
from trainlog.db import Database
from trainlog.models import RunSource

T = TypeVar("T")


# Servers listen on ports below Linux's ephemeral range (32768-60999), where the kernel never
# puts an outgoing connection: a test that restarts a server on its port after a kill -9
# cannot find the port taken meanwhile by some client's connection. Each xdist worker takes
# its own slice of the range, so two workers never pick the same port.
TEST_PORTS = range(10_000, 20_000)


def _worker_ports() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    size = len(TEST_PORTS) // count
    start = TEST_PORTS.start + int(worker) * size
    return range(start, start + size)


def free_port() -> int:
    ports = _worker_ports()
    # Not the module's generator, which hypothesis seeds alike in every process.
    for port in random.SystemRandom().sample(ports, len(ports)):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # another process's (a concurrent test run's, or anyone's)
            return port
    raise AssertionError(f"no free port in {ports}")


def wait_for(check: Callable[[], T | None], timeout: float = 20.0, every: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)


PROGRAMS = Path(__file__).parent / "programs"


def server_env(
    database_url: str, config_dir: Path, program: Path | str = "emit.py", **overrides: str
) -> dict[str, str]:
    """Settings for a test server whose command runs ``program`` on the config, fast timings,
    and a pipe: tests compare the child's exact bytes (a pty turns "\n" into "\r\n")."""
    return {
        "TRAINLOG_DATABASE_URL": database_url,
        "TRAINLOG_CONFIG_DIR": str(config_dir),
        "TRAINLOG_TRAIN_COMMAND": f"python {PROGRAMS / program} {{config}}",
        "TRAINLOG_POLL_INTERVAL": "0.05",
        "TRAINLOG_HEARTBEAT_INTERVAL": "1",
        "TRAINLOG_CANCEL_GRACE": "1",
        "TRAINLOG_RUNNER_HEARTBEAT_INTERVAL": "0.5",
        "TRAINLOG_PTY": "0",
        **overrides,
    }


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    workdir: Path
    log_path: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def new_run(db: Database) -> uuid.UUID:
    """A run record to store bytes under (its command is never run)."""
    with db.write() as session:
        return runs.create(session, ["true"], None, RunSource.CLI).id


def new_log(db: Database, pieces: list[bytes]) -> tuple[uuid.UUID, bytes]:
    """A new run whose log is ``pieces``, one chunk each, written in one transaction."""
    run_id = new_run(db)
    offset = 0
    with db.write() as session:
        for piece in pieces:
            offset = store.append(session, run_id, offset, piece)
    return run_id, b"".join(pieces)


def start_server(
    env: dict[str, str], workdir: Path, port: int | None = None, timeout: float = 30
) -> Server:
    port = port or free_port()
    full_env = {**os.environ, **env}
    log_path = workdir / f"server-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "trainlog", "serve", "--port", str(port)],
        env=full_env,
        cwd=workdir,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process, env, workdir, log_path)

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log_path.read_text()}")
        try:
            return httpx.get(f"{server.url}/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=timeout)
    return server


def stop_server(server: Server, sig: int = signal.SIGTERM) -> None:
    if server.process.poll() is None:
        server.process.send_signal(sig)
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def write_config(config_dir: Path, name: str, **values: Any) -> str:
    (config_dir / name).write_text(json.dumps(values))
    return name


@dataclass
class SseEvent:
    event: str
    data: dict[str, Any]
    id: str | None = None


def parse_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    """Events from text/event-stream lines (comments skipped)."""
    event, data, event_id = "message", [], None
    for line in lines:
        if line == "":
            if data:
                yield SseEvent(event, json.loads("\n".join(data)), event_id)
            event, data, event_id = "message", [], None
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value


def sse_events(body: str | bytes) -> list[SseEvent]:
    """The events of a whole text/event-stream body (or of frames joined together)."""
    text = body.decode() if isinstance(body, bytes) else body
    return list(parse_sse(iter(text.split("\n"))))


@dataclass
class StreamResult:
    """What an SSE client saw: the log bytes, the ids, the done payload (if any)."""

    data: bytearray = field(default_factory=bytearray)
    ids: list[int] = field(default_factory=list)
    done: dict[str, Any] | None = None
    heartbeats: int = 0


def read_stream(
    client: httpx.Client,
    run_id: str,
    *,
    offset: int | None = None,
    last_event_id: str | None = None,
    stop_after_bytes: int | None = None,
    result: StreamResult | None = None,
) -> StreamResult:
    """Read the SSE stream until ``done`` (or until ``stop_after_bytes``, then disconnect)."""
    result = result or StreamResult()
    start = int(last_event_id) if last_event_id is not None else (offset or 0)
    received = 0
    params = {} if offset is None else {"offset": offset}
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    url = f"/api/runs/{run_id}/logs/stream"
    with client.stream("GET", url, params=params, headers=headers) as response:
        assert response.status_code == 200, response.read()
        for event in parse_sse(response.iter_lines()):
            if event.event == "log":
                chunk = base64.b64decode(event.data["chunk"])
                received += len(chunk)
                result.data += chunk
                assert event.id == str(start + received), "id must be the offset after the chunk"
                result.ids.append(int(event.id))
                if stop_after_bytes is not None and len(result.data) >= stop_after_bytes:
                    return result
            elif event.event == "heartbeat":
                result.heartbeats += 1
            elif event.event == "done":
                result.done = event.data
                return result
    return result


def start_run(client: httpx.Client, config: str) -> dict[str, Any]:
    response = client.post("/api/runs", json={"config": config})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def wait_until_ended(client: httpx.Client, run_id: str, timeout: float = 60) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        run: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
        return run if run["status"] not in ("queued", "running") else None

    return wait_for(ended, timeout=timeout)
