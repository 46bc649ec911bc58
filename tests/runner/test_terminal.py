"""Runs under a pseudo-terminal: real libraries draw as in a terminal, nothing is lost."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    PROGRAMS,
    Server,
    server_env,
    start_run,
    start_server,
    stop_server,
    wait_for,
    wait_until_ended,
)
from tests.programs.emit import expected_output
from tests.runner.test_runner import create_run, emit_run, stored_log
from tests.test_cli import run_id_from, trainlog
from trainlog import runs
from trainlog.db import Database
from trainlog.plaintext import plain_text
from trainlog.reaper import RUN_ID_ENV
from trainlog.runner import service
from trainlog.runner.process import spawn
from trainlog.runner.service import Runner
from trainlog.runner.sink import DatabaseSink
from trainlog.runner.terminal import TerminalSize, open_terminal
from trainlog.settings import Settings

PTY = Settings(runner_heartbeat_interval=0.1, pty=True, term_cols=120, term_rows=40)
PIPE = PTY.model_copy(update={"pty": False})
FANCY = PROGRAMS / "fancy.py"


@pytest.fixture(autouse=True)
def neutral_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No colour or width overrides from whoever runs the tests."""
    for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "CLICOLOR"):
        monkeypatch.delenv(name, raising=False)


def facts(log: bytes, name: str) -> dict[str, Any]:
    line = next(line for line in log.splitlines() if line.startswith(name.encode() + b" "))
    parsed: dict[str, Any] = json.loads(line.split(b" ", 1)[1])
    return parsed


def plain(log: bytes) -> list[str]:
    return b"".join(plain_text([log])).decode().splitlines()


def bar_lines(text: list[str]) -> list[str]:
    return [line for line in text if line.startswith("epoch ")]


def fancy_run(db: Database, settings: Settings) -> tuple[uuid.UUID, bytes]:
    run_id = create_run(db, [sys.executable, str(FANCY)])
    assert Runner(DatabaseSink(db, run_id), settings).execute() == 0
    return run_id, stored_log(db, run_id)


def test_under_a_pty_libraries_draw_as_in_a_terminal(db: Database) -> None:
    run_id, log = fancy_run(db, PTY)
    child = facts(log, "facts")
    assert child == {
        "stdin": False,  # input is never a channel
        "stdout": True,
        "stderr": True,
        "dev_tty": True,  # it is the controlling terminal
        "size": [120, 40],
        "ttyname": child["ttyname"],
        "term": "xterm-256color",
    }
    assert facts(log, "grandchild") == child  # the same terminal

    assert b"\x1b[32mINFO\x1b[0m:" in log  # uvicorn's (click's) coloured log level
    assert b"\x1b[32m0.91" in log and b"\x1b[31m0.27" in log  # rich's table cells
    assert b"\x1b[2K" in log  # rich's live progress redraws
    assert b"\x1b[32mfinished" in log  # click.secho
    assert log.count(b"\n") == log.count(b"\r\n")  # the line discipline's ONLCR

    text = plain(log)
    bars = bar_lines(text)
    assert [bar.split(":")[0] for bar in bars] == ["epoch 1", "epoch 2"]
    # tqdm fills the terminal's width (leaving the last column, to never wrap).
    assert all(len(bar) == 119 and "100%" in bar for bar in bars)
    table = [line for line in text if line.startswith(("┏", "│", "└"))]
    assert len(table) == 4 and {len(line) for line in table} == {120}
    with db.read() as session:
        run = runs.get(session, run_id)
        assert (run.pty, run.term_cols, run.term_rows) == (True, 120, 40)


def test_through_a_pipe_the_same_program_draws_for_a_pipe(db: Database) -> None:
    run_id, log = fancy_run(db, PIPE)
    child = facts(log, "facts")
    assert not any(child[name] for name in ("stdin", "stdout", "stderr", "dev_tty"))
    assert child["size"] is None
    assert b"\x1b" not in log and b"\r\n" not in log
    bars = bar_lines(plain(log))
    assert len(bars) == 2 and all("|██████████|" in bar for bar in bars)  # tqdm's 10 columns
    with db.read() as session:
        run = runs.get(session, run_id)
        assert (run.pty, run.term_cols, run.term_rows) == (False, None, None)


def test_no_byte_is_lost_when_the_child_exits(db: Database, tmp_path: Path) -> None:
    # Several MiB written right up to the exit, every byte value among them.
    run_id = emit_run(db, tmp_path, repeat=3, exit_code=4)
    assert Runner(DatabaseSink(db, run_id), PTY).execute() == 4
    assert stored_log(db, run_id) == expected_output(repeat=3).replace(b"\n", b"\r\n")


def test_output_of_grandchildren_that_the_child_waits_for_is_captured(db: Database) -> None:
    # One os.write per line, so lines of processes writing at once cannot interleave.
    worker = "import os, sys; os.write(1, f'worker {sys.argv[1]} {os.isatty(1)}\\n'.encode())"
    script = f"""
import os, subprocess, sys
workers = [subprocess.Popen([sys.executable, "-c", {worker!r}, str(i)]) for i in range(3)]
os.write(1, b"waiting\\n")
sys.exit(sum(worker.wait() for worker in workers))
"""
    run_id = create_run(db, [sys.executable, "-c", script])
    assert Runner(DatabaseSink(db, run_id), PTY).execute() == 0
    lines = sorted(stored_log(db, run_id).split(b"\r\n"))
    assert lines == [b"", b"waiting", b"worker 0 True", b"worker 1 True", b"worker 2 True"]


@pytest.mark.parametrize("ignores_sighup", [False, True])
def test_a_grandchild_outliving_the_child_is_hung_up_as_in_a_terminal(
    db: Database, tmp_path: Path, ignores_sighup: bool
) -> None:
    # The child is the terminal's controlling process: when it exits, its foreground group
    # gets SIGHUP, as when a terminal window closes. A nohup'ed grandchild goes on writing.
    ready = tmp_path / "ready"
    # Set either way: an ignored SIGHUP is inherited (a test run under nohup would pass it on).
    disposition = "signal.SIG_IGN" if ignores_sighup else "signal.SIG_DFL"
    grandchild = f"""
import os, pathlib, signal, time
signal.signal(signal.SIGHUP, {disposition})
pathlib.Path({str(ready)!r}).touch()
time.sleep(0.3)
os.write(1, b"from grandchild\\n")
"""
    script = f"""
import os, pathlib, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", {grandchild!r}])
while not pathlib.Path({str(ready)!r}).exists():
    time.sleep(0.01)
os.write(1, b"child done\\n")
"""
    run_id = create_run(db, [sys.executable, "-c", script])
    assert Runner(DatabaseSink(db, run_id), PTY).execute() == 0
    expected = b"child done\r\nfrom grandchild\r\n" if ignores_sighup else b"child done\r\n"
    assert stored_log(db, run_id) == expected


def test_without_a_pty_the_runner_captures_through_a_pipe(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pty() -> tuple[int, int]:
        raise OSError(2, "No such file or directory", "/dev/ptmx")

    monkeypatch.setattr(os, "openpty", no_pty)
    run_id = create_run(db, [sys.executable, "-c", "print('through a pipe')"])
    assert Runner(DatabaseSink(db, run_id), PTY).execute() == 0
    assert stored_log(db, run_id) == b"through a pipe\n"
    with db.read() as session:
        assert runs.get(session, run_id).pty is False


def ptys_and_pipes() -> list[str]:
    """What this process's open descriptors that are ptys or pipes point at."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
    return sorted(t for t in targets if t.startswith(("/dev/pt", "pipe:")))


def test_without_a_pump_the_runner_captures_through_a_pipe_and_leaks_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pump(master: int, out: int) -> subprocess.Popen[bytes]:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(service, "start_pump", no_pump)
    open_before = ptys_and_pipes()
    run_id = create_run(db, [sys.executable, "-c", "print('through a pipe')"])
    assert Runner(DatabaseSink(db, run_id), PTY).execute() == 0
    assert stored_log(db, run_id) == b"through a pipe\n"
    with db.read() as session:
        assert runs.get(session, run_id).pty is False
    assert ptys_and_pipes() == open_before  # the pty and the pump's pipe were closed


def read_until(fd: int, marker: bytes, timeout: float = 10) -> bytes:
    seen = b""
    while marker not in seen:
        readable, _, _ = select.select([fd], [], [], timeout)
        assert readable, f"no {marker!r} in {seen!r}"
        seen += os.read(fd, 4096)
    return seen


def test_resizing_the_terminal_signals_the_child() -> None:
    script = (
        "import os, signal, sys, time\n"
        "def winch(*_):\n"
        "    print('resized to %dx%d' % tuple(os.get_terminal_size(1)), flush=True)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGWINCH, winch)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    master, slave = open_terminal(TerminalSize(120, 40))
    child = spawn([sys.executable, "-c", script], slave, dict(os.environ), terminal=True)
    os.close(slave)
    try:
        read_until(master, b"ready")
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        read_until(master, b"resized to 80x24")
        assert child.wait(10) == 0
    finally:
        child.kill()
        child.wait()
        os.close(master)


@pytest.fixture
def pty_server(database_url: str, config_dir: Path, tmp_path: Path) -> Iterator[Server]:
    env = server_env(
        database_url,
        config_dir,
        FANCY,
        TRAINLOG_PTY="1",
        TRAINLOG_TERM_COLS="100",
        TRAINLOG_TERM_ROWS="30",
    )
    running = start_server(env, tmp_path)
    yield running
    stop_server(running)


def test_a_server_run_under_a_pty_and_its_text_export(pty_server: Server, config_dir: Path) -> None:
    (config_dir / "fancy.yaml").write_text("{}")
    with pty_server.client() as client:
        run_id = start_run(client, "fancy.yaml")["id"]
        run = wait_until_ended(client, run_id)
        assert run["status"] == "succeeded"
        assert (run["pty"], run["term_cols"], run["term_rows"]) == (True, 100, 30)
        raw = client.get(f"/api/runs/{run_id}/logs/raw").content
        assert facts(raw, "facts")["size"] == [100, 30] and facts(raw, "facts")["stdout"]

        response = client.get(f"/api/runs/{run_id}/logs/text")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert f'filename="trainlog-{run_id}.txt"' in response.headers["content-disposition"]
        assert response.text.splitlines() == plain(raw)
        assert "\x1b" not in response.text and "\r" not in response.text
        assert [len(bar) for bar in bar_lines(response.text.splitlines())] == [99, 99]

        missing = client.get(f"/api/runs/{uuid.uuid4()}/logs/text")
        assert missing.status_code == 404


def test_trainlog_run_uses_a_pty_and_tail_plain_renders_it(database_url: str) -> None:
    result = trainlog(database_url, "run", "--", sys.executable, str(FANCY))
    assert result.returncode == 0
    assert facts(result.stdout, "facts")["stdout"] is True  # echoed as captured
    run_id = run_id_from(result.stderr)
    tail = trainlog(database_url, "tail", "--plain", run_id)
    assert tail.returncode == 0
    assert tail.stdout.decode().splitlines() == plain(result.stdout)
    piped = trainlog(database_url, "run", "--no-pty", "--", sys.executable, str(FANCY))
    assert facts(piped.stdout, "facts")["stdout"] is False


def test_stdin_is_never_the_terminal(db: Database) -> None:
    script = "import sys; print(repr(sys.stdin.read()), sys.stdin.isatty())"
    run_id = create_run(db, [sys.executable, "-c", script])
    assert Runner(DatabaseSink(db, run_id), PTY).execute() == 0
    assert stored_log(db, run_id) == b"'' False\r\n"


def test_pty_size_reaches_programs_that_ask_the_terminal(db: Database) -> None:
    # stty asks the terminal itself (TIOCGWINSZ), not the environment; stdin is not it.
    run_id = create_run(db, ["sh", "-c", "stty size < /dev/tty"])
    settings = PTY.model_copy(update={"term_cols": 132, "term_rows": 50})
    assert Runner(DatabaseSink(db, run_id), settings).execute() == 0
    assert stored_log(db, run_id) == b"50 132\r\n"


def test_the_child_holds_only_its_standard_descriptors(db: Database) -> None:
    # Not the master, nor the runner's: 0, 1, 2, and 3 is the one listing them.
    script = "import os; print(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))"
    run_id = create_run(db, [sys.executable, "-c", script])
    assert Runner(DatabaseSink(db, run_id), PTY).execute() == 0
    assert stored_log(db, run_id) == b"[0, 1, 2, 3]\r\n"


def pumps_of_this_process() -> list[int]:
    """Live PTY pumps started by this (the test) process, the runner's parent here."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, NotADirectoryError):
            continue
        state, parent_pid = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent_pid) == os.getpid() and b"pump.py" in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def test_a_cancelled_runs_last_words_are_kept(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A grandchild deaf to SIGTERM and SIGHUP says goodbye a while after the cancel has ended
    # the child. Ending the run's processes (found by the run id in their environment) must
    # leave the pump be, or that goodbye would be lost.
    ready = tmp_path / "ready"
    grandchild = f"""
import os, pathlib, signal, time
for signum in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, signal.SIG_IGN)
parent = os.getppid()
pathlib.Path({str(ready)!r}).touch()
while os.getppid() == parent:
    time.sleep(0.01)
time.sleep(0.5)
os.write(1, b"bye\\n")
"""
    script = f"""
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", {grandchild!r}])
time.sleep(60)
"""
    run_id = create_run(db, [sys.executable, "-c", script])
    monkeypatch.setenv(RUN_ID_ENV, str(run_id))  # as the launcher and `trainlog run` set it
    runner = Runner(DatabaseSink(db, run_id), PTY)
    finished = threading.Thread(target=runner.execute)
    finished.start()
    wait_for(ready.exists)
    runner.interrupt(signal.SIGTERM)
    finished.join(30)
    assert stored_log(db, run_id) == b"bye\r\n"


def test_the_pump_ends_with_the_run_when_a_descendant_keeps_the_pty(
    db: Database, tmp_path: Path
) -> None:
    # A grandchild in a session of its own, deaf to SIGHUP, keeps the pty open and writing:
    # the runner gives up on it after the drain, and leaves no pump behind.
    pid_file = tmp_path / "grandchild"
    grandchild = f"""
import os, pathlib, signal, time
signal.signal(signal.SIGHUP, signal.SIG_IGN)
os.setsid()
pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))
while True:
    os.write(1, b"still here\\n")
    time.sleep(0.05)
"""
    script = f"""
import pathlib, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", {grandchild!r}])
while not pathlib.Path({str(pid_file)!r}).exists():
    time.sleep(0.01)
print("child done", flush=True)
"""
    run_id = create_run(db, [sys.executable, "-c", script])
    try:
        assert Runner(DatabaseSink(db, run_id), PTY).execute() == 0
        log = stored_log(db, run_id)
        assert b"child done\r\n" in log and log.count(b"still here\r\n") >= 2
        assert pumps_of_this_process() == []
    finally:
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_killed_pump_ends_the_run_saying_why(db: Database) -> None:
    # The pump is the pty's only reader: killed from outside, the terminal closes under the
    # child (SIGHUP), and the run must say so rather than look like the child's own failure.
    script = "import time; print('before', flush=True); time.sleep(60)"
    run_id = create_run(db, [sys.executable, "-c", script])
    runner = Runner(DatabaseSink(db, run_id), PTY)
    finished = threading.Thread(target=runner.execute)
    finished.start()
    wait_for(lambda: stored_log(db, run_id) == b"before\r\n")
    [pump] = pumps_of_this_process()
    os.kill(pump, signal.SIGKILL)
    finished.join(30)
    assert not finished.is_alive()
    with db.read() as session:
        run = runs.get(session, run_id)
    assert (run.status, run.exit_code) == (runs.RunStatus.FAILED, -signal.SIGHUP)
    assert run.error is not None and f"PTY pump (pid {pump})" in run.error
    assert "killed by SIGKILL" in run.error
    assert stored_log(db, run_id) == b"before\r\n"
