"""The runner with a real child process, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

from tests.helpers import PROGRAMS, wait_for
from tests.programs.emit import expected_output
from trainlog import logread, runs, store
from trainlog.db import Database
from trainlog.models import ChunkCodec, LogChunk, RunSource
from trainlog.runner.service import Runner
from trainlog.runner.sink import DatabaseSink
from trainlog.settings import Settings

# A pipe: these tests compare exact bytes (a pty would turn "\n" into "\r\n").
SETTINGS = Settings(cancel_grace=0.5, runner_heartbeat_interval=0.1, pty=False)


def create_run(db: Database, argv: list[str]) -> uuid.UUID:
    with db.write() as session:
        return runs.create(session, argv, None, RunSource.CLI).id


def stored_log(db: Database, run_id: uuid.UUID) -> bytes:
    with db.read() as session:
        size = store.log_size(session, run_id)
    return b"".join(logread.iter_bytes(db, run_id, 0, size))


def emit_run(db: Database, tmp_path: Path, **config: object) -> uuid.UUID:
    config_path = tmp_path / "emit.json"
    config_path.write_text(json.dumps(config))
    return create_run(db, [sys.executable, str(PROGRAMS / "emit.py"), str(config_path)])


def test_every_byte_is_stored_and_echoed_unchanged(db: Database, tmp_path: Path) -> None:
    run_id = emit_run(db, tmp_path, exit_code=3, delay=0.01)
    echo = io.BytesIO()
    assert Runner(DatabaseSink(db, run_id), SETTINGS, echo=echo).execute() == 3
    assert stored_log(db, run_id) == expected_output()
    assert echo.getvalue() == expected_output()
    with db.read() as session:
        run = runs.get(session, run_id)
        assert (run.status, run.exit_code) == ("failed", 3)
        assert run.started_at is not None and run.finished_at is not None


def test_a_flood_of_output_is_stored_whole(db: Database, tmp_path: Path) -> None:
    run_id = emit_run(db, tmp_path, repeat=20)
    assert Runner(DatabaseSink(db, run_id), SETTINGS).execute() == 0
    assert stored_log(db, run_id) == expected_output(repeat=20)


def test_a_finished_log_is_compacted_and_reads_back_the_same(db: Database) -> None:
    script = "for i in range(20000): print(f'step {i}: loss=0.5 acc=0.9', flush=True)"
    run_id = create_run(db, [sys.executable, "-c", script])
    assert Runner(DatabaseSink(db, run_id), SETTINGS).execute() == 0
    expected = b"".join(f"step {i}: loss=0.5 acc=0.9\n".encode() for i in range(20000))
    assert stored_log(db, run_id) == expected
    with db.read() as session:
        chunks = session.query(LogChunk).filter_by(run_id=run_id).all()
    assert len(chunks) == 1 and chunks[0].codec == ChunkCodec.ZSTD
    assert len(chunks[0].data) < len(expected) / 5


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancel_kills_a_child_that_ignores_sigterm_and_its_children(
    db: Database, tmp_path: Path
) -> None:
    grandchild_pid_file = tmp_path / "grandchild.pid"
    script = f"""
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open({str(grandchild_pid_file)!r}, "w").write(str(worker.pid))
print("started", flush=True)
time.sleep(600)
"""
    run_id = create_run(db, [sys.executable, "-c", script])
    runner = Runner(DatabaseSink(db, run_id), SETTINGS)
    result: list[int | None] = []
    thread = threading.Thread(target=lambda: result.append(runner.execute()))
    thread.start()
    wait_for(lambda: grandchild_pid_file.exists() and grandchild_pid_file.read_text())
    grandchild = int(grandchild_pid_file.read_text())
    with db.write() as session:
        runs.request_cancel(session, run_id)
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert result == [-9]  # SIGTERM was ignored, so SIGKILL after the grace period
    wait_for(lambda: not pid_alive(grandchild), timeout=5)
    with db.read() as session:
        assert runs.get(session, run_id).status == "cancelled"
    assert stored_log(db, run_id) == b"started\n"


def test_a_command_that_cannot_start_fails_with_a_message(db: Database) -> None:
    run_id = create_run(db, ["/nonexistent/train"])
    assert Runner(DatabaseSink(db, run_id), SETTINGS).execute() is None
    with db.read() as session:
        run = runs.get(session, run_id)
        assert run.status == "failed" and run.exit_code is None
        assert "could not start '/nonexistent/train'" in (run.error or "")
    assert b"could not start" in stored_log(db, run_id)


def test_output_left_by_a_lingering_grandchild_is_captured(db: Database) -> None:
    script = (
        "import subprocess, sys;"
        "subprocess.Popen([sys.executable, '-c', "
        "'import time; time.sleep(0.3); print(\"from grandchild\", flush=True)']);"
        "print('parent done', flush=True)"
    )
    run_id = create_run(db, [sys.executable, "-c", script])
    started = time.monotonic()
    assert Runner(DatabaseSink(db, run_id), SETTINGS).execute() == 0
    assert stored_log(db, run_id) == b"parent done\nfrom grandchild\n"
    assert time.monotonic() - started < 10


def test_heartbeats_are_recorded(db: Database, tmp_path: Path) -> None:
    release = tmp_path / "release"
    script = f"import os, time\nwhile not os.path.exists({str(release)!r}): time.sleep(0.05)"
    run_id = create_run(db, [sys.executable, "-c", script])
    runner = threading.Thread(target=Runner(DatabaseSink(db, run_id), SETTINGS).execute)
    runner.start()
    seen: set[object] = set()

    def beating() -> bool:
        with db.read() as session:
            run = runs.get(session, run_id)
        if run.heartbeat_at is None:
            return False  # still queued
        assert run.runner_pid == os.getpid()
        seen.add(run.heartbeat_at)
        # mark_running's, the first of the supervising loop's, then periodic ones (every 0.1 s).
        return len(seen) >= 4

    try:
        wait_for(beating)
    finally:
        release.touch()
        runner.join(30)


def test_each_lines_time_is_when_the_runner_read_it(db: Database) -> None:
    # The child stamps each line with its own clock as it writes it, quiet lines then a
    # burst; the runner's reader stamps them as they arrive.
    script = (
        "import sys, time\n"
        "for i in range(30):\n"
        "    sys.stdout.write(f'{time.time():.6f} quiet {i}\\n'); sys.stdout.flush()\n"
        "    time.sleep(0.02)\n"
        "for i in range(3000):\n"
        "    sys.stdout.write(f'{time.time():.6f} burst {i}\\n')\n"
    )
    run_id = create_run(db, [sys.executable, "-c", script])
    Runner(DatabaseSink(db, run_id), SETTINGS).execute()
    window = logread.lines_window(db, run_id, 1, None, 10_000)
    lines = window.data.splitlines()
    assert len(lines) == len(window.times) == 3030 == window.totals.lines
    times = [t for t in window.times if t is not None]
    assert len(times) == 3030 and times == sorted(times)
    for line, read_at in zip(lines, times, strict=True):
        written = float(line.split()[0])
        # Read after it was written (to the ms kept), and before the run was over.
        assert written - 0.001 <= read_at <= window.times[-1]
