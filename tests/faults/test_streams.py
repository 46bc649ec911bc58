"""Several runs on one stream (``/api/streams``) across a server shutdown, and a client of it
that never reads: the guarantees of a run's own stream hold for the shared one."""

from __future__ import annotations

import base64
import signal
import socket
import time
from pathlib import Path

from tests.faults.conftest import StartServer, fault_env
from tests.helpers import parse_sse, sse_events, start_run, wait_until_ended, write_config
from tests.programs.emit import expected_output


def test_sigterm_ends_a_shared_stream_cleanly_and_each_run_resumes_from_its_offset(
    servers: StartServer, tmp_path: Path, config_dir: Path
) -> None:
    env = {**fault_env(f"sqlite:///{tmp_path}/t.db", config_dir), "TRAINLOG_MAX_ACTIVE_RUNS": "2"}
    server = servers(env)
    expected = expected_output(repeat=2)
    lines: list[str] = []
    with server.client() as client:
        runs = [
            start_run(client, write_config(config_dir, f"long{i}.json", delay=0.1, repeat=2))["id"]
            for i in range(2)
        ]
        params = [("run", f"{run_id}:0") for run_id in runs]
        with client.stream("GET", "/api/streams", params=params) as response:
            for line in response.iter_lines():  # a cut stream would raise here
                lines.append(line)
                if line.startswith("id: ") and sum(x.startswith("id: ") for x in lines) == 1:
                    server.process.send_signal(signal.SIGTERM)
    assert "retry: 1000" in lines  # ended by the server, with a hint to come back soon
    server.process.wait(timeout=10)
    received = {run_id: bytearray() for run_id in runs}
    for event in parse_sse(iter(lines)):
        if event.event == "log":
            received[event.data["run"]] += base64.b64decode(event.data["chunk"])
    restarted = servers(env, port=server.port)
    with restarted.client() as client:
        params = [("run", f"{run_id}:{len(received[run_id])}") for run_id in runs]
        rest = client.get("/api/streams", params=params, timeout=120)
    done = {}
    for event in sse_events(rest.text):
        if event.event == "log":
            received[event.data["run"]] += base64.b64decode(event.data["chunk"])
        elif event.event == "done":
            done[event.data.pop("run")] = event.data
    for run_id in runs:
        assert bytes(received[run_id]) == expected
        assert done[run_id] == {"exit_code": 0, "final_size": len(expected)}


def test_a_shared_stream_that_is_never_read_is_dropped_quietly(
    servers: StartServer, tmp_path: Path, config_dir: Path
) -> None:
    env = {**fault_env(f"sqlite:///{tmp_path}/t.db", config_dir), "TRAINLOG_SEND_TIMEOUT": "2"}
    server = servers(env)
    with server.client() as client:
        # Two logs far bigger than a connection's kernel buffers: the sends block for good.
        runs = []
        for i in range(2):
            runs.append(start_run(client, write_config(config_dir, f"h{i}.json", repeat=6))["id"])
            wait_until_ended(client, runs[-1])
    query = "&".join(f"run={run_id}:0" for run_id in runs)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(f"GET /api/streams?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        deadline = time.monotonic() + 20
        while "dropping an SSE client" not in server.log_path.read_text():
            assert time.monotonic() < deadline, "the stuck client was never dropped"
            time.sleep(0.1)
    log = server.log_path.read_text()
    assert log.count("dropping an SSE client that read nothing for 2.0s") == 1
    assert "ERROR" not in log and "Traceback" not in log, log[-3000:]
