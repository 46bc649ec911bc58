"""``python -m trainlog.runner RUN_ID``: the process the server starts for each run."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import uuid
from types import FrameType

from trainlog.db import Database
from trainlog.runner.service import Runner
from trainlog.settings import get_settings


def _stop_on_signals(runner: Runner, grace: float) -> None:
    """A runner told to stop takes the child's whole group with it (SIGKILL after ``grace``),
    records the run as cancelled, and stores the output up to the end."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        runner.interrupt(signum)
        timer = threading.Timer(grace, runner.interrupt, args=(signal.SIGKILL,))
        timer.daemon = True
        timer.start()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="trainlog-runner %(levelname)s %(message)s")
    if len(argv) != 1:
        print("usage: python -m trainlog.runner RUN_ID", file=sys.stderr)
        return 2
    settings = get_settings()
    db = Database.connect(settings.database_url)
    try:
        runner = Runner(db, settings, uuid.UUID(argv[0]))
        _stop_on_signals(runner, settings.cancel_grace)
        runner.execute()
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
