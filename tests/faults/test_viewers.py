"""Viewers across a server shutdown, and viewers that never read."""

from __future__ import annotations

import base64
import contextlib
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.faults.conftest import StartServer, fault_env
from tests.helpers import (
    parse_sse,
    read_stream,
    start_run,
    wait_until_ended,
    write_config,
)
from tests.programs.emit import expected_output


def test_sigterm_ends_open_streams_cleanly_and_they_resume(
    servers: StartServer, tmp_path: Path, config_dir: Path
) -> None:
    env = fault_env(f"sqlite:///{tmp_path}/t.db", config_dir)
    server = servers(env)
    config = write_config(config_dir, "long.json", delay=0.1, repeat=2)
    expected = expected_output(repeat=2)
    received, ids, lines = bytearray(), [], []
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        with client.stream("GET", f"/api/runs/{run_id}/logs/stream") as response:
            for line in response.iter_lines():  # a cut stream would raise here
                lines.append(line)
                if line.startswith("id: ") and len(ids) == 0:
                    ids.append(int(line[4:]))
                    server.process.send_signal(signal.SIGTERM)
        assert "retry: 1000" in lines  # ended by the server, with a hint to come back soon
    server.process.wait(timeout=10)
    restarted = servers(env, port=server.port)
    with restarted.client() as client:
        events = list(parse_sse(iter(lines)))
        for event in events:
            if event.event == "log":
                received += base64.b64decode(event.data["chunk"])
        last = [event.id for event in events if event.id][-1]
        rest = read_stream(client, run_id, last_event_id=last)
        assert bytes(received + rest.data) == expected


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _open_sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            count += fd.readlink().name.startswith("socket:")
    return count


@contextlib.contextmanager
def _clients_that_never_read(port: int, run_id: str, count: int) -> Iterator[None]:
    """``count`` connections that ask for the run's stream with a tiny receive window and never
    read a byte; closed on the way out."""
    request = f"GET /api/runs/{run_id}/logs/stream HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(request)
        yield
    finally:
        for sock in sockets:
            sock.close()


def test_clients_that_stop_reading_hold_bounded_memory_and_are_dropped_quietly(
    servers: StartServer, tmp_path: Path, config_dir: Path
) -> None:
    clients, log_repeats = 50, 12
    env = {**fault_env(f"sqlite:///{tmp_path}/t.db", config_dir), "TRAINLOG_SEND_TIMEOUT": "3"}
    server = servers(env)
    # A log far bigger than the kernel buffers for a connection (4 MiB here), so every
    # stream's sends block for good.
    config = write_config(config_dir, "huge.json", repeat=log_repeats)
    expected = expected_output(repeat=log_repeats)
    with server.client() as client:
        run_id = start_run(client, config)["id"]
        wait_until_ended(client, run_id)
        before = _rss(server.process.pid)
        with _clients_that_never_read(server.port, run_id, clients):
            # While their sends are blocked, another viewer gets the whole log: they hold up
            # nobody. (This replaces a test with 200 clients whose log fit in kernel buffers,
            # so none of its streams ever blocked.)
            with httpx.Client(base_url=server.url, timeout=30) as other:
                assert read_stream(other, run_id).data == expected
            peak = _rss(server.process.pid) - before
            log = ""
            deadline = time.monotonic() + 20
            while log.count("dropping an SSE client") < clients and time.monotonic() < deadline:
                peak = max(peak, _rss(server.process.pid) - before)
                time.sleep(0.1)
                log = server.log_path.read_text()
            # Said once per client, at info level: a client that stops reading is no error of
            # the server's (uvicorn's "returned without completing response" is left out).
            assert log.count("dropping an SSE client that read nothing for 3.0s") == clients
            assert "ERROR" not in log and "Traceback" not in log, log[-3000:]
            # Each holds one read of the log (1 MiB) and an event or two, whatever the log's
            # size (~3.6 MiB measured): a stream that held what it could not send would hold
            # the whole log, 16 MiB of events.
            assert peak < clients * 5 * 2**20, peak / 2**20
            assert read_stream(client, run_id).data == expected  # and others are served
