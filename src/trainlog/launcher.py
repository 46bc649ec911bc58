"""Starting a run's runner as a process of its own, detached from the server."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid

from trainlog.reaper import RUN_ID_ENV
from trainlog.settings import Settings


def launch_runner(settings: Settings, run_id: uuid.UUID) -> subprocess.Popen[bytes]:
    """Start ``python -m trainlog.runner RUN_ID`` in a session of its own.

    The runner is nobody's child in spirit: stopping or restarting the server leaves it and
    its training running. The runner gets this server's settings, whatever their source.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "trainlog.runner", str(run_id)],
        env={**settings.runner_env(), RUN_ID_ENV: str(run_id)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    # Reap it when it ends so it does not linger as a zombie of a long-lived server.
    threading.Thread(target=process.wait, name=f"reap-runner-{run_id}", daemon=True).start()
    return process
