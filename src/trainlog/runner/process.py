"""The child process: started in a process group of its own, ended with all its descendants."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence


def child_env(base: Mapping[str, str]) -> dict[str, str]:
    # Unbuffered so a Python trainer's prints reach the pipe as they happen, not in 8 KiB lumps.
    return {**base, "PYTHONUNBUFFERED": "1"}


def spawn(argv: Sequence[str], output_fd: int, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start argv with stdout and stderr both on output_fd (one stream, in the order written).

    stdin is /dev/null: nothing reaches the child from outside. The child leads a new session,
    so its whole process tree can be signalled as one group and it outlives the server.
    """
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=output_fd,
        stderr=output_fd,
        env=dict(env),
        start_new_session=True,
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
