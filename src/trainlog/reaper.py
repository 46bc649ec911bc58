"""Ending what is left of a run on this machine once nobody is capturing it.

Every process of a run carries ``TRAINLOG_RUN_ID`` in its environment: the runner gets it
from the launcher (or ``trainlog run`` sets it before starting the child) and the child and
its descendants inherit it. That finds them all, even ones that left the child's process
group or session, once the runner that knew their pids is gone. A process that starts
itself with a cleared environment is the one thing this cannot find.

The run's metric follower is spared: it is forked from the runner, so it may carry the id
too, and it ends by itself once the run's metrics are extracted (docs/metrics.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

RUN_ID_ENV = "TRAINLOG_RUN_ID"
# The follower's process name (Linux keeps 15 characters): metrics/follower.py.
METRIC_FOLLOWER_NAME = "trainlog-metric"
_PROC = Path("/proc")


def run_processes(run_id: uuid.UUID) -> list[int]:
    """Pids on this machine (as far as /proc shows) whose environment names run_id."""
    marker = f"{RUN_ID_ENV}={run_id}".encode()
    found = []
    for entry in _PROC.iterdir() if _PROC.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if marker in environ.split(b"\0") and not _is_metric_follower(entry):
            found.append(int(entry.name))
    return found


def _is_metric_follower(entry: Path) -> bool:
    try:
        return (entry / "comm").read_text().rstrip("\n") == METRIC_FOLLOWER_NAME
    except OSError:
        return False


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def end_run_processes(run_id: uuid.UUID, grace: float) -> int:
    """SIGTERM every process of the run, SIGKILL what is left after ``grace``; return how many
    there were."""
    pids = run_processes(run_id)
    if not pids:
        return 0
    log.warning("run %s: ending %d unobserved processes %s", run_id, len(pids), pids)
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and run_processes(run_id):
        time.sleep(0.1)
    # Looked up again rather than reusing pids: one may have exited and its pid been reused.
    _signal_all(run_processes(run_id), signal.SIGKILL)
    return len(pids)
