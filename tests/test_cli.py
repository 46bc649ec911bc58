"""The ``trainlog`` command as a user runs it: a real process, a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import PROGRAMS
from tests.programs.emit import expected_output


def trainlog(
    database_url: str, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "TRAINLOG_DATABASE_URL": database_url}
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
