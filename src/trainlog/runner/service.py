"""The runner: one process per run that starts the child, captures it and records the end.

The same code serves runs started by the server (``python -m trainlog.runner RUN_ID``, its own
process so a server restart never touches the run) and ``trainlog run -- CMD`` in a shell,
writing the database directly or, with ``--server``, a trainlog server over HTTP: its writes
go through a LogSink (runner/sink.py), every guarantee stays here.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import threading
from functools import partial
from types import FrameType
from typing import BinaryIO, Generic

from trainlog.metrics.patterns import Rules
from trainlog.models import RunStatus
from trainlog.reaper import end_run_processes
from trainlog.runner.buffer import SpillBuffer
from trainlog.runner.capture import LogCapture
from trainlog.runner.process import child_env, signal_group, spawn, terminate_group
from trainlog.runner.pump import start_pump
from trainlog.runner.retry import RETRIED, Refused, until_done
from trainlog.runner.sink import LogSink, Prepared
from trainlog.runner.terminal import TerminalSize, open_terminal
from trainlog.settings import Settings

log = logging.getLogger(__name__)

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

# After the child exits, how long its descendants may keep the output open before they are
# killed; their bytes written until then are still captured.
DRAIN_SECONDS = 2.0
# How long the pump may take to exit once its pipe has ended.
PUMP_EXIT_SECONDS = 1.0


def outcome_status(returncode: int, cancelled: bool) -> RunStatus:
    if cancelled:
        return RunStatus.CANCELLED
    return RunStatus.SUCCEEDED if returncode == 0 else RunStatus.FAILED


class Runner(Generic[Prepared]):
    def __init__(
        self,
        sink: LogSink[Prepared],
        settings: Settings,
        echo: BinaryIO | None = None,
        metric_rules: Rules | None = None,
    ) -> None:
        self._sink = sink
        self._settings = settings
        self.run_id = sink.run_id
        self._echo = echo
        self._metric_rules = metric_rules or settings.metric_rules()
        self._child: subprocess.Popen[bytes] | None = None
        self._pump: subprocess.Popen[bytes] | None = None
        self._cancelled = threading.Event()
        self._reporting = threading.Lock()  # heartbeats and the end, one at a time
        # A write the server refused for good (see _give_up).
        self._refused: Refused | None = None

    def stop_on_signals(self) -> None:
        """SIGINT, SIGTERM or SIGHUP to this process go to the child's whole group, then SIGKILL
        after the cancel grace period; the run is recorded as cancelled with its output up to
        the end. Call from the main thread (Python handles signals there)."""

        def stop(signum: int, _frame: FrameType | None) -> None:
            self.interrupt(signum)
            timer = threading.Timer(
                self._settings.cancel_grace, self.interrupt, args=(signal.SIGKILL,)
            )
            timer.daemon = True
            timer.start()

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, stop)

    def interrupt(self, signum: int) -> None:
        """Pass a signal the runner received on to the child's whole group (``trainlog run``)."""
        self._cancelled.set()
        if self._child is not None:
            signal_group(self._child.pid, signum)

    def execute(self) -> int | None:
        """Run the child to the end; return its exit code (negative: killed by that signal).
        Raises Refused when the server refuses a write for good (see _give_up)."""
        argv = self._sink.command()
        read_fd, write_fd, terminal = self._open_output()
        try:
            return self._capture(argv, read_fd, write_fd, terminal)
        finally:
            self._stop_pump()

    def _capture(
        self, argv: list[str], read_fd: int, write_fd: int, terminal: TerminalSize | None
    ) -> int | None:
        host, pid = socket.gethostname(), os.getpid()
        until_done(partial(self._sink.mark_running, host, pid, terminal), "mark running")
        if self._settings.metrics:
            until_done(
                partial(self._sink.follow_metrics, self._metric_rules),
                "start metric extraction",
            )
        try:
            env = child_env(os.environ, terminal)
            self._child = spawn(argv, write_fd, env, terminal=terminal is not None)
        except OSError as exc:
            os.close(read_fd)
            self._fail_to_start(argv, exc)
            return None
        finally:
            # The child has its own copy; while this one is open, the output never ends (a
            # pipe's EOF, the pty's EIO that ends the pump).
            os.close(write_fd)
        settings = self._settings
        capture = LogCapture(
            self._sink,
            read_fd,
            SpillBuffer(settings.buffer_bytes, settings.spill_dir),
            settings.max_log_bytes,
            self._echo,
            on_refused=self._give_up,
        )
        capture.start()
        compactor = self._sink.compactor(lambda: capture.stored)
        if compactor is not None:
            compactor.start()
        # Heartbeats go on until the end is recorded, not only while the child runs: after
        # an outage the runner may still be storing a backlog long after the child exited,
        # and a silent runner would be judged lost (and its processes ended) meanwhile.
        recorded = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(self._child, recorded), name="heartbeat", daemon=True
        )
        heartbeat.start()
        # Blocks in waitpid, so the exit is seen at once (Popen.wait with a timeout polls).
        returncode = self._child.wait()
        if self._cancelled.is_set():
            # Descendants that left the child's process group (setsid) are not reached by the
            # group's signal; they are found by the run id they inherited.
            end_run_processes(self.run_id, self._settings.cancel_grace)
        output_ended = self._drain(capture, self._child.pid)
        try:
            size = capture.wait_stored()
            if self._refused is not None:
                raise self._refused
            status = outcome_status(returncode, self._cancelled.is_set())
            # A pump still copying (a descendant holds the pty) has not failed; it is stopped
            # later.
            error = self._pump_failure() if output_ended else None
            until_done(
                partial(self._record_end, recorded, status, returncode, error, size), "finish"
            )
        finally:
            # Recorded, or given up on: no heartbeat after this.
            recorded.set()
            heartbeat.join()
        # After the end is recorded, so viewers get `done` without waiting for it.
        if compactor is not None:
            compactor.finish()
        return returncode

    def _open_output(self) -> tuple[int, int, TerminalSize | None]:
        """(read end, child's end, terminal size or None for a pipe) for the child's output.

        Capture always reads a pipe: the child's own, or the one the PTY pump fills.
        """
        if self._settings.pty:
            size = TerminalSize(self._settings.term_cols, self._settings.term_rows)
            try:
                read_fd, slave = self._open_pumped_terminal(size)
            except OSError as exc:
                # A container without /dev/pts, or out of ptys: a pipe still captures it all.
                log.warning("no pseudo-terminal (%s); capturing through a pipe", exc)
            else:
                return read_fd, slave, size
        read_fd, write_fd = _big_pipe()
        return read_fd, write_fd, None

    def _open_pumped_terminal(self, size: TerminalSize) -> tuple[int, int]:
        """(read end of the pump's pipe, pty slave for the child)."""
        master, slave = open_terminal(size)
        try:
            read_fd, write_fd = _big_pipe()
        except OSError:
            _close(master, slave)
            raise
        try:
            self._pump = start_pump(master, write_fd)
        except OSError:
            _close(read_fd, slave)
            raise
        finally:
            # The pump's copies are the only ones: the pty ends when the child's side closes.
            _close(master, write_fd)
        return read_fd, slave

    def _pump_failure(self) -> str | None:
        """Why the run lost its terminal, if the pump ended other than with the pty.
        Call once its pipe has ended."""
        if self._pump is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            # Its pipe has ended, so it is exiting, if not gone already.
            self._pump.wait(PUMP_EXIT_SECONDS)
        code = self._pump.returncode
        if not code:
            return None
        message = (
            f"the PTY pump (pid {self._pump.pid}) ended before the run ({_how_ended(code)}): "
            "the child lost its terminal, as when a terminal window closes; what it wrote "
            "after that is lost"
        )
        log.warning("%s", message)
        return message

    def _stop_pump(self) -> None:
        """End the pump if a lingering descendant still holds the pty, and reap it."""
        if self._pump is not None:
            self._pump.kill()
            self._pump.wait()

    def _heartbeat(self, child: subprocess.Popen[bytes], recorded: threading.Event) -> None:
        """Report alive every interval until the end is recorded; act on a cancel asked for
        through the database (or the server) while the child runs."""
        while True:
            with self._reporting:
                if recorded.is_set():
                    return
                try:
                    cancel_requested = self._sink.heartbeat()
                except RETRIED as exc:
                    log.warning("heartbeat failed: %s", type(exc).__name__)
                    cancel_requested = False
                except Refused as exc:
                    self._give_up(exc)
                    return
            if cancel_requested:
                self._stop_child(child)
            if recorded.wait(self._settings.runner_heartbeat_interval):
                return

    def _give_up(self, refused: Refused) -> None:
        """The server refused a write for good: the run cannot be recorded, so the child is
        stopped as on a cancel (what it writes until it ends is still echoed) and execute
        raises ``refused`` instead of recording the end."""
        if self._refused is None:
            self._refused = refused
        if self._child is not None:
            self._stop_child(self._child)

    def _stop_child(self, child: subprocess.Popen[bytes]) -> None:
        """SIGTERM the child's group, SIGKILL after the cancel grace period, unless done."""
        if child.returncode is None and not self._cancelled.is_set():
            self._cancelled.set()
            threading.Thread(
                target=terminate_group,
                args=(child, self._settings.cancel_grace),
                name="cancel",
                daemon=True,
            ).start()

    def _record_end(
        self,
        recorded: threading.Event,
        status: RunStatus,
        exit_code: int,
        error: str | None,
        size: int,
    ) -> None:
        # Not beside a heartbeat: one sent after the end would find the run's token spent.
        with self._reporting:
            self._sink.finish(status, exit_code, error, size)
            recorded.set()

    def _drain(self, capture: LogCapture[Prepared], pgid: int) -> bool:
        """Wait for the output to end; whether it did (False: given up on a descendant)."""
        if capture.wait_for_eof(DRAIN_SECONDS):
            return True
        signal_group(pgid, signal.SIGKILL)
        if capture.wait_for_eof(DRAIN_SECONDS):
            return True
        capture.stop_reading()
        return False

    def _fail_to_start(self, argv: list[str], exc: OSError) -> None:
        message = f"could not start {argv[0]!r}: {exc.strerror or exc}"
        notice = f"[trainlog] {message}\r\n".encode()
        prepared = self._sink.prepare(0, notice, None, ends_log=False)
        until_done(partial(self._sink.append, prepared, False), "append")
        until_done(
            partial(self._sink.finish, RunStatus.FAILED, None, message, len(notice)), "finish"
        )
        if self._echo is not None:
            self._echo.write(notice)
            self._echo.flush()


def _how_ended(returncode: int) -> str:
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:  # a real-time signal has no name of its own
        return f"killed by signal {-returncode}"


def _big_pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):
        # A bigger pipe (1 MiB, Linux's default cap) lets a flooding child write on while
        # the reader hands a batch over.
        fcntl.fcntl(write_fd, F_SETPIPE_SZ, 1024 * 1024)
    return read_fd, write_fd


def _close(*fds: int) -> None:
    for fd in fds:
        os.close(fd)
