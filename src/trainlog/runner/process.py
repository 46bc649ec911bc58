"""The child process: started in a process group of its own, ended with all its descendants."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from trainlog.reaper import RUN_ID_ENV
from trainlog.runner.terminal import TerminalSize, take_controlling_terminal, terminal_env

# trainlog's own settings (the database URL with its password, the API token) stay with the
# runner: a trainer that prints its environment would otherwise put them in its log.
SETTINGS_PREFIX = "TRAINLOG_"


def child_env(base: Mapping[str, str], terminal: TerminalSize | None) -> dict[str, str]:
    """``base`` without trainlog's settings, keeping the run id (the reaper's mark) and every
    variable of the user's own."""
    env = {
        name: value
        for name, value in base.items()
        # Any case: settings are read from the environment whatever the case of their names.
        if not name.upper().startswith(SETTINGS_PREFIX) or name == RUN_ID_ENV
    }
    # Unbuffered so a Python trainer's prints reach the pipe as they happen, not in 8 KiB lumps.
    env["PYTHONUNBUFFERED"] = "1"
    if terminal is not None:
        env.update(terminal_env(terminal))
    return env


def spawn(
    argv: Sequence[str], output_fd: int, env: Mapping[str, str], *, terminal: bool
) -> subprocess.Popen[bytes]:
    """Start argv with stdout and stderr both on output_fd (one stream, in the order written).

    stdin is /dev/null in both modes: nothing reaches the child from outside. The child leads
    a new session, so its whole process tree can be signalled as one group and it outlives the
    server. With ``terminal``, output_fd is a pty slave that becomes the session's controlling
    terminal.
    """
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=output_fd,
        stderr=output_fd,
        env=dict(env),
        start_new_session=True,
        preexec_fn=take_controlling_terminal if terminal else None,
        close_fds=True,
    )


def signal_group(pgid: int, signum: int) -> bool:
    """Send signum to the group; False when nothing is left in it."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    return signal_group(pgid, 0)


def terminate_group(child: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's whole group, then SIGKILL whatever is still there after ``grace``."""
    pgid = child.pid
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if child.poll() is not None and not group_alive(pgid):
            return
        time.sleep(0.05)
    signal_group(pgid, signal.SIGKILL)
