"""``python -m trainlog.runner RUN_ID``: the process the server starts for each run."""

from __future__ import annotations

import logging
import sys
import uuid

from trainlog.db import Database
from trainlog.metrics.follower import fork_follower
from trainlog.runner.service import Runner
from trainlog.runner.sink import DatabaseSink
from trainlog.settings import get_settings


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="trainlog-runner %(levelname)s %(message)s")
    if len(argv) != 1:
        print("usage: python -m trainlog.runner RUN_ID", file=sys.stderr)
        return 2
    settings = get_settings()
    # Forked first: before this process has a database connection or a thread.
    follower = fork_follower(settings) if settings.metrics else None
    db = Database.connect(settings.database_url)
    try:
        runner = Runner(DatabaseSink(db, uuid.UUID(argv[0]), follower), settings)
        runner.stop_on_signals()
        runner.execute()
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
