"""``trainlog run --server``: a real remote runner (no database access) writing through a real
server, which is killed and restarted under it, cancels it, or loses it."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.faults.conftest import StartServer, fault_env
from tests.helpers import PROGRAMS, Server, free_port, wait_for, wait_until_ended
from tests.programs.emit import expected_output
from trainlog.db import Database
from trainlog.runner.capture import limit_notice

# Waits are generous: this machine is shared, and a loaded one starts processes slowly.
# Counting lines for about 14 s: long enough to outlive a server that is down for 10 s.
COUNT_LINES = (
    "import sys, time\n"
    "for i in range(700):\n"
    "    sys.stdout.write(f'step {i:04d} loss {1 / (i + 1):.6f}\\n'); sys.stdout.flush()\n"
    "    time.sleep(0.02)\n"
)
COUNTED = b"".join(f"step {i:04d} loss {1 / (i + 1):.6f}\n".encode() for i in range(700))


def remote_run(
    server: Server, *command: str, token: str | None = None, **env: str
) -> subprocess.Popen[bytes]:
    """``trainlog run --server`` as a user on a GPU node starts it: no database URL at all."""
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TRAINLOG_") and key != "TRAINLOG_DATABASE_URL"
    }
    full_env.update(
        TRAINLOG_SERVER=server.url,
        TRAINLOG_RUNNER_HEARTBEAT_INTERVAL="0.5",
        TRAINLOG_CANCEL_GRACE="1",
        # Nowhere a database could be: anything that tried to use one would fail.
        TRAINLOG_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        **env,
    )
    if token is not None:
        full_env["TRAINLOG_INGEST_TOKEN"] = token
    return subprocess.Popen(
        [sys.executable, "-m", "trainlog", "run", "--no-pty", "--", *command],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def run_id_of(runner: subprocess.Popen[bytes]) -> str:
    assert runner.stderr is not None
    line = runner.stderr.readline().decode()
    assert line.startswith("trainlog: run "), line
    return line.removeprefix("trainlog: run ").strip()


def test_bytes_exact_end_to_end_and_no_secret_reaches_the_child(
    servers: StartServer, database_url: str, config_dir: Path, tmp_path: Path
) -> None:
    server = servers(fault_env(database_url, config_dir) | {"TRAINLOG_INGEST_TOKEN": "s3cret"})
    config = tmp_path / "c.json"
    config.write_text('{"exit_code": 5}')
    runner = remote_run(
        server, sys.executable, str(PROGRAMS / "emit.py"), str(config), token="s3cret"
    )
    run_id = run_id_of(runner)
    stdout, _ = runner.communicate(timeout=60)
    assert runner.returncode == 5
    assert stdout == expected_output()  # echoed to the user's terminal unchanged
    with server.client() as client:
        run = wait_until_ended(client, run_id)
        assert (run["status"], run["exit_code"]) == ("failed", 5)
        assert run["log_size"] == len(expected_output())
        assert client.get(f"/api/runs/{run_id}/logs/raw").content == expected_output()

    show_env = "import os; print(sorted(os.environ.items()))"
    runner = remote_run(server, sys.executable, "-c", show_env, token="s3cret")
    stdout, _ = runner.communicate(timeout=60)
    assert runner.returncode == 0 and b"TRAINLOG_RUN_ID" in stdout
    # Neither the ingest token, nor the run token (whatever its name), nor the server.
    for secret in (b"s3cret", b"TRAINLOG_INGEST_TOKEN", b"TRAINLOG_SERVER", b"Bearer"):
        assert secret not in stdout


def test_a_flood_sent_ahead_and_compressed_is_the_childs_output(
    servers: StartServer, database_url: str, config_dir: Path, tmp_path: Path
) -> None:
    """A flood goes as compressed PATCHes, each sent while the one before is still being
    stored: some arrive before it and are refused and sent again, and the log is still
    exactly the child's output."""
    server = servers(fault_env(database_url, config_dir))
    config = tmp_path / "c.json"
    config.write_text('{"repeat": 24}')  # 25 MiB, every byte value, as fast as it can
    runner = remote_run(server, sys.executable, str(PROGRAMS / "emit.py"), str(config))
    run_id = run_id_of(runner)
    stdout, stderr = runner.communicate(timeout=120)
    assert runner.returncode == 0, stderr
    assert stdout == expected_output(24)
    with server.client() as client:
        run = wait_until_ended(client, run_id)
        assert (run["status"], run["log_size"]) == ("succeeded", len(stdout))
        assert client.get(f"/api/runs/{run_id}/logs/raw").content == stdout
        assert run["line_count"] == stdout.count(b"\n") + (not stdout.endswith(b"\n"))


def test_a_flood_that_does_not_compress_fits_a_body_limit_of_one_batch(
    servers: StartServer, database_url: str, config_dir: Path
) -> None:
    """Random bytes in 4 MiB batches to a server that takes 4 MiB bodies: compressed, a batch
    would be a little larger than itself and refused (413) on every try; it goes as it is."""
    batch = 4 * 1024 * 1024
    server = servers(
        fault_env(database_url, config_dir) | {"TRAINLOG_INGEST_MAX_BODY_BYTES": str(batch)}
    )
    flood = f"import os, sys; sys.stdout.buffer.write(os.urandom(3 * {batch}))"
    runner = remote_run(server, sys.executable, "-c", flood)
    run_id = run_id_of(runner)
    try:
        stdout, stderr = runner.communicate(timeout=60)
    finally:
        runner.kill()  # one refused for good retries for ever
    assert runner.returncode == 0, stderr
    with server.client() as client:
        run = wait_until_ended(client, run_id)
        assert (run["status"], run["log_size"]) == ("succeeded", len(stdout))
        assert client.get(f"/api/runs/{run_id}/logs/raw").content == stdout


# Which transaction changed what: the log's size, and the run's log_truncated mark.
AUDIT_TRANSACTIONS = (
    "CREATE TABLE audit (seq serial, txid bigint, what text, size bigint)",
    "CREATE FUNCTION audit_size() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO audit (txid, what, size) VALUES (txid_current(), 'size', NEW.size); "
    "RETURN NEW; END $$",
    "CREATE TRIGGER audit_size AFTER UPDATE ON training_logs FOR EACH ROW "
    "WHEN (NEW.size IS DISTINCT FROM OLD.size) EXECUTE FUNCTION audit_size()",
    "CREATE FUNCTION audit_truncated() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO audit (txid, what) VALUES (txid_current(), 'truncated'); "
    "RETURN NEW; END $$",
    "CREATE TRIGGER audit_truncated AFTER UPDATE ON experiment_runs FOR EACH ROW "
    "WHEN (NEW.log_truncated AND NOT OLD.log_truncated) EXECUTE FUNCTION audit_truncated()",
)


# PostgreSQL only: it tells which transaction made each change (txid_current); the runner's
# requests, and the server's ends-log path, are the same on SQLite.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("body_limit", [None, 64 * 1024], ids=["sent-ahead", "in-pieces"])
def test_the_log_limit_notice_is_stored_in_the_transaction_that_marks_the_run_truncated(
    servers: StartServer, database_url: str, config_dir: Path, body_limit: int | None
) -> None:
    """A flood past the log limit: the append that ends with the notice is sent compressed,
    ahead, while the one before is stored (or, past a small body limit, in pieces). Whatever
    the way, no reader ever sees the notice stored and the run not marked truncated, nor
    the reverse: the one transaction that stores the notice marks the run."""
    cap = 2 * 1024 * 1024
    env = fault_env(database_url, config_dir) | {"TRAINLOG_MAX_LOG_BYTES": str(cap)}
    if body_limit is not None:
        env["TRAINLOG_INGEST_MAX_BODY_BYTES"] = str(body_limit)
    server = servers(env)
    db = Database.connect(database_url)
    try:
        with db.engine.begin() as connection:
            for statement in AUDIT_TRANSACTIONS:
                connection.exec_driver_sql(statement)
        flood = "import sys; sys.stdout.buffer.write(b'step 1 loss 0.25\\n' * 500_000)"
        runner = remote_run(server, sys.executable, "-c", flood)
        run_id = run_id_of(runner)
        stdout, stderr = runner.communicate(timeout=60)
        assert runner.returncode == 0, stderr
        notice = limit_notice(cap)
        with server.client() as client:
            run = wait_until_ended(client, run_id)
            assert run["log_truncated"] is True and run["log_size"] == cap
            assert client.get(f"/api/runs/{run_id}/logs/raw").content == (
                stdout[: cap - len(notice)] + notice
            )
        with db.engine.connect() as connection:
            audit = connection.exec_driver_sql(
                "SELECT txid, what, size FROM audit ORDER BY seq"
            ).all()
    finally:
        db.dispose()
    marked = [txid for txid, what, _ in audit if what == "truncated"]
    noticed = [txid for txid, what, size in audit if what == "size" and size == cap]
    assert len(marked) == 1 and marked == noticed, audit


def test_server_killed_and_restarted_10s_later_the_log_is_the_childs_output(
    servers: StartServer, database_url: str, config_dir: Path
) -> None:
    env = fault_env(database_url, config_dir)
    server = servers(env)
    runner = remote_run(server, sys.executable, "-c", COUNT_LINES)
    run_id = run_id_of(runner)
    with server.client() as client:
        wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["log_size"] > 1000, 60)
    server.process.kill()
    server.process.wait()
    time.sleep(10)  # the scenario itself: the server is away this long
    restarted = servers(env, port=server.port)
    stdout, _ = runner.communicate(timeout=90)
    assert runner.returncode == 0 and stdout == COUNTED
    with restarted.client() as client:
        run = wait_until_ended(client, run_id)
        assert (run["status"], run["exit_code"]) == ("succeeded", 0)
        assert client.get(f"/api/runs/{run_id}/logs/raw").content == COUNTED
        # Each line's time is when the runner read it, not when the server got it 10 s on:
        # the lines written while the server was away are as evenly spaced as the rest.
        lines = client.get(f"/api/runs/{run_id}/logs/lines", params={"count": 1000}).json()
        times = lines["times"]
        assert len(times) == 700 and None not in times
        assert max(b - a for a, b in itertools.pairwise(times)) < 2


def test_cancel_on_the_server_reaches_the_remote_child(
    servers: StartServer, database_url: str, config_dir: Path
) -> None:
    server = servers(fault_env(database_url, config_dir))
    trap = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        "    print('stopping cleanly', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('training', flush=True)\n"
        "time.sleep(120)\n"
    )
    runner = remote_run(server, sys.executable, "-c", trap)
    run_id = run_id_of(runner)
    with server.client() as client:
        wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["log_size"] > 0, 60)
        assert client.post(f"/api/runs/{run_id}/cancel").status_code == 202
        stdout, _ = runner.communicate(timeout=30)
        run = wait_until_ended(client, run_id)
        assert run["status"] == "cancelled"
        assert client.get(f"/api/runs/{run_id}/logs/raw").content == stdout
        assert stdout == b"training\nstopping cleanly\n"


def test_a_remote_runner_killed_leaves_its_run_lost(
    servers: StartServer, database_url: str, config_dir: Path
) -> None:
    server = servers(fault_env(database_url, config_dir) | {"TRAINLOG_RUNNER_LOST_AFTER": "2"})
    runner = remote_run(server, sys.executable, "-c", "import time; time.sleep(120)")
    run_id = run_id_of(runner)
    with server.client() as client:
        wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["status"] == "running", 60)
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        run = wait_until_ended(client, run_id)
        assert run["status"] == "lost"


def test_no_server_to_register_with_is_one_line_and_exit_1() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINLOG_")}
    for server in ("http://127.0.0.1:1", "localhost:8000", "http://[bad"):
        result = subprocess.run(
            [sys.executable, "-m", "trainlog", "run", "--server", server, "--", "true"],
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert result.stderr.startswith(f"trainlog: cannot reach {server}".encode())
        assert b"Traceback" not in result.stderr and result.stderr.count(b"\n") == 1


# A request's status from a server without it, or None: the server has it.
Refusal = Callable[[str, str, Message], int | None]


class OlderServer:
    """A trainlog server as an older one (or a proxy before it) answers: ``refuse`` picks
    the requests it lacks, answered with that status and a JSON detail; the rest are the
    real server's answers."""

    def __init__(self, upstream: Server, refuse: Refusal) -> None:
        client = httpx.Client(base_url=upstream.url, timeout=60)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the runner's client expects

            def answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = refuse(self.command, self.path, self.headers)
                if status is None:
                    passed = {
                        name: value
                        for name, value in self.headers.items()
                        if name.lower() not in ("host", "content-length")
                    }
                    real = client.request(self.command, self.path, content=body, headers=passed)
                    status, content = real.status_code, real.content
                else:
                    content = json.dumps({"detail": HTTPStatus(status).phrase}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PATCH = answer

            def log_message(self, *_: object) -> None:
                pass

        self._client = client
        self._http = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.server = dataclasses.replace(
            upstream, url=f"http://127.0.0.1:{self._http.server_port}"
        )

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._client.close()


@pytest.fixture
def older_server(
    servers: StartServer, database_url: str, config_dir: Path
) -> Iterator[Callable[[Refusal], OlderServer]]:
    started: list[OlderServer] = []

    def start(refuse: Refusal) -> OlderServer:
        started.append(OlderServer(servers(fault_env(database_url, config_dir)), refuse))
        return started[-1]

    yield start
    for older in started:
        older.close()


def finish_in_time(runner: subprocess.Popen[bytes], timeout: float = 60) -> tuple[bytes, bytes]:
    try:
        return runner.communicate(timeout=timeout)
    finally:
        runner.kill()  # one that retries for ever


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("method", "action", "status"),
    [("POST", "/started", 404), ("PATCH", "/log", 405), ("POST", "/heartbeat", 404)],
)
def test_a_request_the_server_lacks_ends_the_run_with_one_line_and_exit_1(
    older_server: Callable[[Refusal], OlderServer],
    tmp_path: Path,
    method: str,
    action: str,
    status: int,
) -> None:
    """Retrying cannot make a server take a request it does not know: the runner stops the
    child (at once, rather than let it train unrecorded; without /started, before it
    starts), what the child wrote is on the user's terminal, and the runner ends with one
    line saying why."""
    older = older_server(
        lambda m, path, _: status if m == method and path.endswith(action) else None
    )
    started = tmp_path / "started"
    train = (
        "import pathlib, time\n"
        f"pathlib.Path({str(started)!r}).touch()\n"
        "print('training', flush=True)\n"
        "time.sleep(60)\n"
    )
    runner = remote_run(older.server, sys.executable, "-c", train)
    run_id = run_id_of(runner)
    stdout, stderr = finish_in_time(runner)
    assert runner.returncode == 1, stderr
    assert stderr.startswith(f"trainlog: {older.server.url} refused the run".encode()), stderr
    assert f"{method} /api/runs/{run_id}{action}: {status}".encode() in stderr
    assert stderr.count(b"\n") == 1 and b"Traceback" not in stderr
    if action == "/started":
        assert stdout == b"" and not started.exists()
    elif action == "/log":  # refused once the child's first line was to be stored
        assert stdout == b"training\n"
    else:  # the first heartbeat goes as the child starts: it may not have written yet
        assert b"training\n".startswith(stdout)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_server_that_takes_no_compressed_body_gets_the_output_as_it_is(
    older_server: Callable[[Refusal], OlderServer], tmp_path: Path
) -> None:
    older = older_server(lambda _, __, headers: 415 if headers.get("Content-Encoding") else None)
    config = tmp_path / "c.json"
    config.write_text('{"repeat": 4}')  # 5 MiB as fast as it can: compressed PATCHes
    runner = remote_run(older.server, sys.executable, str(PROGRAMS / "emit.py"), str(config))
    run_id = run_id_of(runner)
    stdout, stderr = finish_in_time(runner)
    assert runner.returncode == 0, stderr
    assert stdout == expected_output(4)
    assert stderr.count(b"takes no compressed output") == 1, stderr
    with older.server.client() as client:
        run = wait_until_ended(client, run_id)
        assert (run["status"], run["log_size"]) == ("succeeded", len(stdout))
        assert client.get(f"/api/runs/{run_id}/logs/raw").content == stdout
